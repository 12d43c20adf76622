package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/internal/ui"
)

// ttyRun runs mirror under a pseudo-terminal (util-linux script) of the
// given width, and returns what the terminal received.
func ttyRun(t *testing.T, env []string, cols int, args ...string) string {
	t.Helper()
	script := rig.Tool(t, "", "script")
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	shell := fmt.Sprintf("stty cols %d rows 50; exec %s %s", cols, mirrorBin, strings.Join(quoted, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qfec", shell, "/dev/null")
	cmd.Env = append(append(os.Environ(), "IPFS_TELEMETRY=off", "IPFS_PATH="+filepath.Join(t.TempDir(), "no-repo"), "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache")), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mirror %s under a terminal: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

var (
	csiUp   = regexp.MustCompile(`^\x1b\[(\d+)A`)
	csiAny  = regexp.MustCompile(`^\x1b\[[0-9;?]*[A-Za-z]`)
	blobRow = regexp.MustCompile(`^(layer|config|manifest|index)-sha256:[0-9a-f]{12,64}: +(added|cached|exists) +\|\++\|  \d`)
)

// screenOf replays the redraws as the terminal shows them in the end.
func screenOf(out string) []string {
	var lines []string
	cur := ""
	for len(out) > 0 {
		if m := csiUp.FindStringSubmatch(out); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			lines = lines[:max(0, len(lines)-n)]
			out = out[len(m[0]):]
			continue
		}
		if m := csiAny.FindString(out); m != "" {
			out = out[len(m):]
			continue
		}
		switch out[0] {
		case '\n':
			lines = append(lines, cur)
			cur = ""
		case '\r':
			cur = ""
		default:
			cur += out[:1]
		}
		out = out[1:]
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// checkScreen asserts per-blob lines with states and the final summary.
func checkScreen(t *testing.T, what, out string, cols int, wantStates ...string) []string {
	t.Helper()
	if !strings.Contains(out, "\x1b[") {
		t.Errorf("%s: no redraw on a terminal:\n%q", what, out)
	}
	screen := screenOf(out)
	states := map[string]int{}
	summary := ""
	for _, l := range screen {
		if n := len([]rune(l)); n >= cols && (blobRow.MatchString(l) || strings.HasPrefix(l, "elapsed: ")) {
			t.Errorf("%s: %d-column line on a %d-column terminal: %q", what, n, cols, l)
		}
		if m := blobRow.FindStringSubmatch(l); m != nil {
			states[m[2]]++
		}
		if strings.HasPrefix(l, "elapsed: ") {
			summary = l
		}
	}
	for _, s := range wantStates {
		if states[s] == 0 {
			t.Errorf("%s: no %q blob line (states %v):\n%s", what, s, states, strings.Join(screen, "\n"))
		}
	}
	if !regexp.MustCompile(`^elapsed: \d+\.\d s  total: [0-9.]+ (B|KiB|MiB) \([0-9.]+ (B|KiB|MiB)/s\)  \d+ blobs?: `).MatchString(summary) {
		t.Errorf("%s: summary line %q:\n%s", what, summary, strings.Join(screen, "\n"))
	}
	if strings.Contains(out, " blobs added, ") {
		t.Errorf("%s: the old counter line is back", what)
	}
	return screen
}

// TestE2EProgress: push, pull and sync draw a line per blob with its state
// and a bar, then elapsed and total, on a terminal; plain lines when
// stderr is not one; JSON lines with --json.
func TestE2EProgress(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	src := r.reg.Host + "/test/progress:v1"
	rig.Push(t, src, rig.MultiPlatform(t, 300, 1200<<10))
	const cols = 160

	out := ttyRun(t, r.env, cols, "push", src)
	screen := checkScreen(t, "push", out, cols, "added", "cached")
	root := ""
	for _, l := range screen {
		if strings.HasPrefix(l, "bafkrei") {
			root = strings.TrimSpace(l)
		}
	}
	if root == "" {
		t.Fatalf("push printed no root CID:\n%s", strings.Join(screen, "\n"))
	}
	t.Logf("push on a terminal:\n%s", strings.Join(screen, "\n"))

	// Pull: to oci: every layer is added; to a registry twice, the second
	// finds every layer there.
	checkScreen(t, "pull oci:", ttyRun(t, r.env, cols, "pull", root, "oci:"+filepath.Join(t.TempDir(), "oci")), cols, "added")
	dst := r.reg.Host + "/test/pulled:v1"
	checkScreen(t, "pull registry", ttyRun(t, r.env, cols, "--insecure", "pull", root, dst), cols, "added")
	again := checkScreen(t, "pull registry again", ttyRun(t, r.env, cols, "--insecure", "pull", root, dst), cols, "exists")
	t.Logf("second pull to a registry:\n%s", strings.Join(again, "\n"))

	// A narrow terminal: nothing wraps.
	narrow := ttyRun(t, r.env, 50, "pull", root, "oci:"+filepath.Join(t.TempDir(), "narrow"))
	for _, l := range screenOf(narrow) {
		if len([]rune(l)) >= 50 && !strings.HasPrefix(l, "pull") {
			t.Errorf("narrow: %q", l)
		}
	}

	// Sync: the blob lines name their image; the image line and summary.
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/test/progress\n    tags: [\"v1\"]\n", r.reg.Host))
	out = ttyRun(t, r.env, cols, "sync", list)
	screen = checkScreen(t, "sync", out, cols, "added")
	if !strings.Contains(strings.Join(screen, "\n"), "new       "+src) || !strings.Contains(strings.Join(screen, "\n"), "  "+src) {
		t.Errorf("sync: no image line or no image on the blob lines:\n%s", strings.Join(screen, "\n"))
	}

	// Not a terminal: plain lines, no controls.
	plainDir := filepath.Join(t.TempDir(), "plain")
	plain := mustRun(t, r.env, "pull", root, "oci:"+plainDir)
	rig.SkopeoReads(t, "oci:"+plainDir)
	if strings.Contains(plain.stderr, "\x1b") || !regexp.MustCompile(`(?m)^added  layer    sha256:[0-9a-f]{64} [0-9.]+ (KiB|MiB)$`).MatchString(plain.stderr) || !regexp.MustCompile(`(?m)^elapsed: .* total: `).MatchString(plain.stderr) {
		t.Errorf("plain pull output:\n%s", plain.stderr)
	}

	// --json: every stderr line is an event; stdout keeps the result.
	js := mustRun(t, r.env, "--json", "push", src)
	types := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(js.stderr))
	for sc.Scan() {
		var e ui.JSONEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--json stderr line %q: %v", sc.Text(), err)
		}
		types[e.Type]++
		if strings.HasPrefix(e.Type, "blob-") && (e.Digest == "" || e.Image == "") {
			t.Errorf("event without digest or image: %s", sc.Text())
		}
	}
	// A new process adds every blob again (IPFS dedups them): blob-done
	// lines, one image-done, one summary.
	if types["blob-done"] == 0 || types["image-done"] != 1 || types["summary"] != 1 {
		t.Errorf("--json events: %v\n%s", types, js.stderr)
	}
	var res struct{ Root string }
	if err := json.Unmarshal([]byte(js.stdout), &res); err != nil || res.Root != root {
		t.Errorf("--json stdout %q: %v", js.stdout, err)
	}
}
