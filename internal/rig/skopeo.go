package rig

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// SkopeoReads has skopeo (containers/image, a client we did not write) read
// an output of ours, so that a layout, archive or registry copy that only
// mirror can read never passes a test:
//
//   - `skopeo inspect --raw REF` parses the top document;
//   - `skopeo inspect REF` (with --override-os/arch/variant for each
//     platform of an index) resolves every platform's manifest and config;
//   - `skopeo copy --all REF dir:D` reads every manifest and blob, each
//     verified by skopeo against its digest;
//   - every file of D named by a digest hashes to that digest, and every
//     layer and config a manifest in D names is there.
//
// It returns D, for the caller's own checks of the blobs. ref is a
// containers/image reference: oci:DIR[:TAG], docker-archive:FILE[:REF] or
// docker://HOST/REPO:TAG (a registry on 127.0.0.1 or localhost is read
// without TLS). Skopeo is found with Tool (MIRROR_SKOPEO_BIN).
func SkopeoReads(t testing.TB, ref string) string {
	t.Helper()
	var tls []string
	if host, ok := strings.CutPrefix(ref, "docker://"); ok && (strings.HasPrefix(host, "127.0.0.1") || strings.HasPrefix(host, "localhost")) {
		tls = []string{"--tls-verify=false"}
	}
	raw := Skopeo(t, append(append([]string{"inspect", "--raw"}, tls...), ref)...)
	var top struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Platform  *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(raw), &top); err != nil {
		t.Fatalf("skopeo inspect --raw %s: not JSON: %v\n%s", ref, err, raw)
	}
	if top.Manifests == nil {
		Skopeo(t, append(append([]string{"inspect"}, tls...), ref)...)
	}
	for _, m := range top.Manifests {
		if p := m.Platform; p != nil && p.OS != "" && p.OS != "unknown" && !strings.Contains(m.MediaType, "index") && !strings.Contains(m.MediaType, "list") {
			args := []string{"--override-os", p.OS, "--override-arch", p.Architecture}
			if p.Variant != "" {
				args = append(args, "--override-variant", p.Variant)
			}
			Skopeo(t, append(append(append(args, "inspect"), tls...), ref)...)
		}
	}
	dir := filepath.Join(t.TempDir(), "skopeo-dir")
	var src []string
	if len(tls) > 0 {
		src = []string{"--src-tls-verify=false"}
	}
	Skopeo(t, append(append([]string{"copy", "--all"}, src...), ref, "dir:"+dir)...)
	checkDirTransport(t, ref, dir)
	return dir
}

var digestName = regexp.MustCompile(`^([0-9a-f]{64})(\.manifest\.json)?$`)

// checkDirTransport checks a skopeo dir: copy: every digest-named file hashes
// to its name, and every blob its manifests name is present.
func checkDirTransport(t testing.TB, ref, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	var manifests [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "manifest.json" {
			manifests = append(manifests, b)
			continue
		}
		m := digestName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != m[1] {
			t.Errorf("skopeo copy %s: %s hashes to sha256:%s", ref, e.Name(), got)
		}
		if m[2] != "" {
			manifests = append(manifests, b)
		} else {
			have["sha256:"+m[1]] = true
		}
	}
	for _, raw := range manifests {
		var doc struct {
			Config *struct {
				Digest string `json:"digest"`
			} `json:"config"`
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Errorf("skopeo copy %s: manifest is not JSON: %v", ref, err)
			continue
		}
		if doc.Config != nil && !have[doc.Config.Digest] {
			t.Errorf("skopeo copy %s: config %s missing from dir:", ref, doc.Config.Digest)
		}
		for _, l := range doc.Layers {
			if !have[l.Digest] {
				t.Errorf("skopeo copy %s: layer %s missing from dir:", ref, l.Digest)
			}
		}
	}
}

// DirBlobs reads the blobs of a skopeo dir: copy by digest (manifests
// excluded).
func DirBlobs(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if m := digestName.FindStringSubmatch(e.Name()); m != nil && m[2] == "" {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out["sha256:"+m[1]] = b
		}
	}
	return out
}

// Skopeo runs skopeo --insecure-policy ARGS (its temporary files in a test
// directory) and returns its stdout; a failure fails the test.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	bin := Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--insecure-policy"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
