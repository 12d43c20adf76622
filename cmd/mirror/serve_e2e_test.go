package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// serveProc is a running `mirror serve`.
type serveProc struct {
	host string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu  sync.Mutex
	log bytes.Buffer
}

func (p *serveProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

var serveAddrRE = regexp.MustCompile(`(?:msg=serving .*addr=|"msg":"serving".*"addr":")(127\.0\.0\.1:[0-9]+)`)

// startServe starts the built binary's serve command, listening on a free
// loopback port, and waits until it says where.
func startServe(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	return startMirrorServe(t, env, append([]string{"serve"}, args...)...)
}

// startMirrorServe is startServe with the whole command line (global flags
// before "serve").
func startMirrorServe(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(mirrorBin, args...)
	cmd.Env = append(append(os.Environ(), "IPFS_TELEMETRY=off", "IPFS_PATH="+filepath.Join(t.TempDir(), "no-repo"), "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache"), "MIRROR_SERVE_LISTEN=127.0.0.1:0"), env...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := serveAddrRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("mirror serve stderr:\n%s", p.stderr())
		}
	})
	select {
	case p.host = <-addr:
	case <-p.done:
		t.Fatalf("mirror serve exited %d:\n%s", p.code, p.stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("mirror serve did not start:\n%s", p.stderr())
	}
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *serveProc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("mirror serve did not stop on SIGTERM")
	}
	return p.code
}

// craneBin finds crane ($MIRROR_CRANE_BIN, PATH, the CI cache), else builds
// it from the module graph once into the temp dir.
func craneBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MIRROR_CRANE_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("crane"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, ".cache", "mirror-ci", "bin", "crane"); serveFileExists(p) {
			return p
		}
	}
	dir := filepath.Join(os.TempDir(), "mirror-e2e-tools")
	p := filepath.Join(dir, "crane-"+serveGGCRVersion(t))
	if serveFileExists(p) {
		return p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Build it in a module of its own: crane's CLI needs modules
	// (cobra) that this module's go.sum does not list.
	mod := t.TempDir()
	tmp := fmt.Sprintf("%s.%d", p, os.Getpid())
	for _, args := range [][]string{
		{"mod", "init", "cranebuild"},
		{"get", "github.com/google/go-containerregistry/cmd/crane@" + serveGGCRVersion(t)},
		{"build", "-o", tmp, "github.com/google/go-containerregistry/cmd/crane"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			if rig.InCI() {
				t.Fatalf("building crane: go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			t.Skipf("crane not found and cannot be built (go %s: %v); set MIRROR_CRANE_BIN", strings.Join(args, " "), err)
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func serveGGCRVersion(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/google/go-containerregistry").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func serveFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tool runs an external client and fails the test on error.
func runTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp, "DOCKER_CONFIG="+tmp, "REGISTRY_AUTH_FILE="+filepath.Join(tmp, "auth.json"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestE2EServe drives the built binary: images mirrored with `mirror sync`
// (registry → IPFS, lockfile), then served by `mirror serve` from the
// lockfile and by CID, and pulled by crane and skopeo, byte-identical.
func TestE2EServe(t *testing.T) {
	r := newRig(t)
	skopeoBin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	crane := craneBin(t)
	idx := rig.MultiPlatform(t, 500, 700<<10)
	rig.Push(t, r.reg.Host+"/test/app:1.0", idx)
	want := rig.SourceBlobs(t, idx)

	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/test/app\n    tags: [\"1.0\"]\n", r.reg.Host))
	lock := filepath.Join(dir, "mirrors.lock")
	mustRun(t, r.env, "sync", list)
	lf := readLock(t, lock)
	if len(lf.Images) != 1 {
		t.Fatalf("lockfile: %+v", lf.Images)
	}
	root := lf.Images[0].CID
	// A second lockfile names the same image as a Docker Hub one.
	hub := filepath.Join(dir, "hub.lock")
	if err := os.WriteFile(hub, []byte(fmt.Sprintf("version: 1\nimages:\n  - source: docker.io/library/app:1.0\n    mode: plain\n    digest: %s\n    platforms: []\n    cid: %s\n", lf.Images[0].Digest, root)), 0o644); err != nil {
		t.Fatal(err)
	}

	p := startServe(t, r.env, "--lock", lock, "--lock", hub)
	base := "http://" + p.host

	// crane, by CID and by lockfile name: the whole index, every layer.
	for _, ref := range []string{p.host + "/ipfs/" + root, p.host + "/docker.io/library/app:1.0", p.host + "/library/app:1.0"} {
		out := filepath.Join(t.TempDir(), "oci")
		runTool(t, crane, "pull", "--format=oci", ref, out)
		sameBlobs(t, "crane pull "+ref, want, rig.LayoutBlobs(t, out))
	}
	// skopeo, url-free by CID.
	out := filepath.Join(t.TempDir(), "oci")
	runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p.host+"/ipfs-nourls/"+root, "oci:"+out+":latest")
	sameBlobs(t, "skopeo ipfs-nourls/<CID>", want, rig.LayoutBlobs(t, out))

	// The source registry's own name, as containerd asks a mirror for it.
	resp := serveReq(t, "GET", base+"/v2/test/app/manifests/1.0?ns="+r.reg.Host, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("?ns=%s: %d %s", r.reg.Host, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// HEAD, Range, errors.
	resp = serveReq(t, "HEAD", base+"/v2/ipfs/"+root+"/manifests/latest", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") == "" || resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		t.Errorf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	var layer string
	var layerBytes []byte
	for d, b := range want {
		if len(b) > 600<<10 {
			layer, layerBytes = d, b
			break
		}
	}
	resp = serveReq(t, "GET", base+"/v2/library/app/blobs/"+layer+"?ns=docker.io", map[string]string{"Range": "bytes=262000-262999"})
	if body := serveBody(t, resp); resp.StatusCode != 206 || !bytes.Equal(body, layerBytes[262000:263000]) {
		t.Errorf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp = serveReq(t, "GET", base+"/v2/library/nginx/manifests/latest?ns=docker.io", nil)
	if body := serveBody(t, resp); resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"NAME_UNKNOWN"`) {
		t.Errorf("unknown name: %d %s", resp.StatusCode, body)
	}
	resp = serveReq(t, "PUT", base+"/v2/ipfs/"+root+"/manifests/latest", nil)
	if body := serveBody(t, resp); resp.StatusCode != 405 || !strings.Contains(string(body), `"code":"UNSUPPORTED"`) {
		t.Errorf("PUT: %d %s", resp.StatusCode, body)
	}

	// --strip-urls from the environment, JSON logs: skopeo through the
	// lockfile name gets every layer, and can copy on to CNCF distribution.
	p2 := startServe(t, append(r.env, "MIRROR_SERVE_STRIP_URLS=true", "MIRROR_SERVE_LOCK="+hub), "--json")
	out = filepath.Join(t.TempDir(), "oci")
	runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p2.host+"/docker.io/library/app:1.0", "oci:"+out+":latest")
	sameBlobs(t, "skopeo --strip-urls library/app:1.0", want, rig.LayoutBlobs(t, out))
	runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+p2.host+"/ipfs/"+root, "docker://"+r.reg.Host+"/copied/app:1.0")
	out = filepath.Join(t.TempDir(), "oci")
	runTool(t, crane, "pull", "--format=oci", r.reg.Host+"/copied/app:1.0", out)
	sameBlobs(t, "re-pushed to distribution", want, rig.LayoutBlobs(t, out))

	// SIGTERM: a graceful exit 0, every request logged.
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	logs := p.stderr()
	if !strings.Contains(logs, "shutting down") || strings.Count(logs, "msg=request") < 10 {
		t.Errorf("log:\n%s", logs)
	}
	if code := p2.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	for _, line := range strings.Split(strings.TrimSpace(p2.stderr()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("--json log line is not JSON: %q", line)
		}
	}
}

// TestE2EServeBadInput: a malformed lockfile is a usage error (exit 2), no
// IPFS node is exit 4, a busy port exit 1.
func TestE2EServeBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.lock")
	if err := os.WriteFile(bad, []byte("version: 1\nimages: [{source: x}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mirrorRun(t, []string{"IPFS_API=/ip4/127.0.0.1/tcp/1"}, "serve", "--listen", "127.0.0.1:0"); r.code != ExitIPFS {
		t.Errorf("no node: exit %d\n%s", r.code, r.stderr)
	}
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	if r := mirrorRun(t, env, "serve", "--listen", "127.0.0.1:0", "--lock", bad); r.code != ExitUsage || !strings.Contains(r.stderr, "bad.lock") {
		t.Errorf("bad lockfile: exit %d\n%s", r.code, r.stderr)
	}
	p := startServe(t, env)
	if r := mirrorRun(t, env, "serve", "--listen", p.host); r.code != ExitFailure || !strings.Contains(r.stderr, "listening on") {
		t.Errorf("busy port: exit %d\n%s", r.code, r.stderr)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

func serveReq(t *testing.T, method, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func serveBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
