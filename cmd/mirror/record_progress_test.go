package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestRecordProgress writes the terminal recordings of docs/progress.md:
// push, pull and sync in a 120-column tmux pane (capture-pane), then the
// plain and --json forms. It runs only with MIRROR_RECORD_PROGRESS=FILE.
func TestRecordProgress(t *testing.T) {
	dest := os.Getenv("MIRROR_RECORD_PROGRESS")
	if dest == "" {
		t.Skip("set MIRROR_RECORD_PROGRESS=FILE to record")
	}
	tmux := rig.Tool(t, "", "tmux")
	r := newRig(t)
	rig.Push(t, r.reg.Host+"/demo/app:1.0", rig.MultiPlatform(t, 900, 6<<20))
	// A registry that sends each blob at ~2 MiB/s, to catch the display in flight.
	slow := rig.StartRegistry(t, rig.RegistryOptions{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet {
				w = slowWriter{w}
			}
			h.ServeHTTP(w, req)
		})
	}})
	rig.Push(t, slow.Host+"/demo/big:1.0", rig.MultiPlatform(t, 990, 8<<20))
	rig.Push(t, r.reg.Host+"/demo/tool:2.1", rig.MultiPlatform(t, 950, 3<<20))
	work := t.TempDir()
	list := fmt.Sprintf("version: 1\nimages:\n  - source: %s/demo/app\n    tags: [\"1.0\"]\n  - source: %s/demo/tool\n    tags: [\"2.1\"]\n", r.reg.Host, r.reg.Host)
	if err := os.WriteFile(filepath.Join(work, "mirrors.yaml"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := "mirror-record-" + fmt.Sprint(os.Getpid())
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	env := fmt.Sprintf("env -i PATH=%s:/usr/bin:/bin HOME=%s TERM=xterm IPFS_API=%s IPFS_PATH=%s/ipfs IPFS_TELEMETRY=off PS1='$ ' bash --norc --noprofile", filepath.Dir(mirrorBin), work, r.k.APIAddr, work)
	tm("new-session", "-d", "-s", "rec", "-x", "120", "-y", "80", "-c", work, env)
	defer exec.Command(tmux, "-L", sock, "kill-server").Run()
	n := 0
	var frame string
	run := func(cmd string) string {
		n++
		mark := fmt.Sprintf("__done_%d__", n)
		tm("send-keys", "-t", "rec", "clear; tmux -L "+sock+" clear-history", "Enter")
		time.Sleep(300 * time.Millisecond)
		tm("send-keys", "-t", "rec", cmd+"; echo "+mark, "Enter")
		if strings.Contains(cmd, "/demo/big") {
			time.Sleep(2 * time.Second)
			frame = strings.TrimSpace(tm("capture-pane", "-p", "-J", "-t", "rec"))
		}
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
			out := tm("capture-pane", "-p", "-J", "-t", "rec", "-S", "-")
			if strings.Contains(out, "\n"+mark) {
				out = out[:strings.Index(out, "\n"+mark)]
				return strings.ReplaceAll(strings.TrimSpace(out), work, "~")
			}
		}
		t.Fatalf("%s did not finish", cmd)
		return ""
	}
	reg := r.reg.Host
	var b strings.Builder
	add := func(title, cmd string) string {
		out := run(cmd)
		out = strings.ReplaceAll(out, "; echo __done_"+fmt.Sprint(n)+"__", "")
		fmt.Fprintf(&b, "%s\n\n```console\n%s\n```\n\n", title, out)
		return out
	}
	push := add("`mirror push` on a terminal:", "mirror push "+reg+"/demo/app:1.0")
	lines := strings.Split(push, "\n")
	root := strings.TrimSpace(lines[len(lines)-1])
	add("`mirror push` from a slower registry, the same display caught in flight (blobs in flight redrawn below the finished ones):", "mirror push "+slow.Host+"/demo/big:1.0 >/dev/null")
	fmt.Fprintf(&b, "The frame 2 s in:\n\n```console\n%s\n```\n\n", strings.ReplaceAll(strings.ReplaceAll(frame, "; echo __done_"+fmt.Sprint(n)+"__", ""), work, "~"))
	add("`mirror pull` to an OCI layout:", "mirror pull "+root+" oci:app")
	add("`mirror pull` to a registry:", "mirror --insecure pull "+root+" "+reg+"/demo/copy:1.0")
	add("The same pull again: the registry has every layer:", "mirror --insecure pull "+root+" "+reg+"/demo/copy:1.0")
	add("`mirror sync` (two images; the blob lines name their image):", "mirror sync mirrors.yaml")
	add("Not a terminal (a pipe, a CI log): plain lines:", "mirror pull "+root+" oci:app2 2>&1 | cat")
	add("`--json`: one event per line on stderr (stdout keeps the result):", "mirror --json push "+reg+"/demo/tool:2.1 2>&1 >/dev/null | head -n 4; mirror --json push "+reg+"/demo/tool:2.1 2>&1 >/dev/null | tail -n 3")
	if err := os.WriteFile(dest, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// slowWriter sends at most 32 KiB per 16 ms (~2 MiB/s a blob).
type slowWriter struct{ http.ResponseWriter }

func (s slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 32<<10)
		m, err := s.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(16 * time.Millisecond)
	}
	return n, nil
}
