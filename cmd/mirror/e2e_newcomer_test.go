package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// bgProc is a mirror command running in the background.
type bgProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  lockedLog
	errb lockedLog
	code int
}

// startMirror starts the built binary with env added (as mirrorRun does).
func startMirror(t *testing.T, env []string, args ...string) *bgProc {
	t.Helper()
	cmd := exec.Command(mirrorBin, args...)
	cmd.Env = append(append(os.Environ(), "IPFS_TELEMETRY=off", "IPFS_PATH="+filepath.Join(t.TempDir(), "no-repo"), "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache")), env...)
	p := &bgProc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *bgProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("mirror %v did not exit in %s; stderr:\n%s", p.cmd.Args[1:], d, p.errb.String())
	}
	return p.code
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gate blocks registry blob GETs while closed: a slow source.
type gate struct {
	mu     sync.Mutex
	hit    chan struct{} // closed at the first blocked GET
	hitted bool
	opened chan struct{} // closed by release
	open   bool
}

// newGate returns an open gate (close it with reset).
func newGate() *gate {
	g := &gate{}
	g.reset()
	g.release()
	return g
}

// reset closes the gate again.
func (g *gate) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hit, g.hitted, g.opened, g.open = make(chan struct{}), false, make(chan struct{}), false
}

func (g *gate) hits() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hit
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		g.open = true
		close(g.opened)
	}
}

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			g.mu.Lock()
			opened := g.opened
			if !g.open && !g.hitted {
				g.hitted = true
				close(g.hit)
			}
			g.mu.Unlock()
			select {
			case <-opened:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// TestE2EServeEmbeddedShared: `mirror serve` on the embedded node serves
// the node's RPC API and writes $IPFS_PATH/api, so a push and a sync run at
// the same time use it instead of finding the repo locked; stopping serve
// removes the api file; a stale one (serve killed) does not stop the next
// command.
func TestE2EServeEmbeddedShared(t *testing.T) {
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	for i, name := range []string{"one", "two"} {
		img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, uint64(700+i), 200<<10, false)}})
		rig.Push(t, reg.Host+"/shared/"+name+":1.0", img)
	}
	repo := filepath.Join(t.TempDir(), "ipfs")
	env := []string{"IPFS_PATH=" + repo}
	srv := startServe(t, env)
	apiFile := filepath.Join(repo, "api")
	b, err := os.ReadFile(apiFile)
	if err != nil || !strings.HasPrefix(string(b), "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("serve on the embedded node wrote no loopback api file: %q %v", b, err)
	}
	hb, err := os.ReadFile(filepath.Join(repo, "mirror-holder.json"))
	if err != nil || !strings.Contains(string(hb), `"command":"mirror serve"`) {
		t.Fatalf("holder record: %s %v", hb, err)
	}

	dir := t.TempDir()
	list := writeList(t, dir, "version: 1\nimages:\n  - source: "+reg.Host+"/shared/two\n    tags: [\"1.0\"]\n")
	var wg sync.WaitGroup
	var push, syncRes result
	wg.Add(2)
	go func() { defer wg.Done(); push = mirrorRun(t, env, "push", reg.Host+"/shared/one:1.0") }()
	go func() { defer wg.Done(); syncRes = mirrorRun(t, env, "sync", list) }()
	wg.Wait()
	if push.code != 0 || syncRes.code != 0 {
		t.Fatalf("while serve holds the repo: push exit %d: %s\nsync exit %d: %s", push.code, push.stderr, syncRes.code, syncRes.stderr)
	}
	root := push.lastLine()
	lock := readLock(t, filepath.Join(dir, "mirrors.lock"))
	if len(lock.Images) != 1 {
		t.Fatalf("lockfile: %+v", lock.Images)
	}
	// Both landed in serve's node: it serves them.
	for _, c := range []string{root, lock.Images[0].CID} {
		resp := serveReq(t, "HEAD", "http://"+srv.host+"/v2/ipfs/"+c+"/manifests/latest", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("serve: HEAD ipfs/%s: %d", c, resp.StatusCode)
		}
	}
	// And the ipfs CLI uses it too, as it would a daemon's.
	if bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs"); bin != "" {
		cmd := exec.Command(bin, "pin", "ls", "--type=recursive", root)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+repo)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), root) {
			t.Errorf("ipfs pin ls through serve's API: %v\n%s", err, out)
		}
	}

	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	for _, f := range []string{"api", "mirror-holder.json"} {
		if _, err := os.Stat(filepath.Join(repo, f)); err == nil {
			t.Errorf("%s left behind after serve stopped", f)
		}
	}

	// Killed: the api file stays, pointing at a dead port; the next
	// command sees the repo unlocked and uses the embedded node.
	srv = startServe(t, env)
	_ = srv.cmd.Process.Kill()
	<-srv.done
	if _, err := os.Stat(apiFile); err != nil {
		t.Fatalf("no stale api file to test with: %v", err)
	}
	res := mustRun(t, env, "inspect", root)
	if !strings.Contains(res.stdout, root) {
		t.Errorf("inspect after a killed serve: %s", res.stdout)
	}
}

// TestE2ELockHolder: a command that holds the embedded node without
// serving its API (a push in progress) is named in the lock error another
// command prints, with exit 4.
func TestE2ELockHolder(t *testing.T) {
	g := newGate()
	reg := rig.StartRegistry(t, rig.RegistryOptions{Wrap: g.wrap})
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 710, 100<<10, false)}})
	rig.Push(t, reg.Host+"/held/app:1.0", img)
	g.reset()

	repo := filepath.Join(t.TempDir(), "ipfs")
	env := []string{"IPFS_PATH=" + repo}
	p := startMirror(t, env, "push", reg.Host+"/held/app:1.0")
	select {
	case <-g.hits():
	case <-p.done:
		t.Fatalf("push exited %d before reading a blob: %s", p.code, p.errb.String())
	case <-time.After(60 * time.Second):
		t.Fatal("push never asked for a blob")
	}
	res := mirrorRun(t, env, "inspect", "bafkreih6wtzzl5jfhwsv4byo6t26jlrhtldfnppvuavfklfgmz4xnovjvu")
	want := fmt.Sprintf("held by mirror push (pid %d)", p.cmd.Process.Pid)
	if res.code != ExitIPFS || !strings.Contains(res.stderr, want) {
		t.Errorf("inspect while push holds the repo: exit %d, want %d and %q:\n%s", res.code, ExitIPFS, want, res.stderr)
	}
	g.release()
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("push exit %d: %s", code, p.errb.String())
	}
}

// TestE2EPullInterrupted: SIGINT during a pull exits 130 "interrupted"
// whatever the target, not 4 "content not found: context canceled". The
// embedded node is online with no peers: a CID nobody has is a read that
// never ends.
func TestE2EPullInterrupted(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "ipfs")
	bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	for _, args := range [][]string{
		{"init", "--profile=test", "--empty-repo"},
		{"config", "--json", "Bootstrap", "[]"},
		{"config", "Routing.Type", "none"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ipfs %v: %v\n%s", args, err, out)
		}
	}
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	missing := "bafkreih6wtzzl5jfhwsv4byo6t26jlrhtldfnppvuavfklfgmz4xnovjvu"
	for _, dest := range []string{
		"oci:" + filepath.Join(t.TempDir(), "layout"),
		"docker-archive:" + filepath.Join(t.TempDir(), "image.tar"),
		reg.Host + "/pulled/app:1.0",
	} {
		t.Run(strings.SplitN(dest, ":", 2)[0], func(t *testing.T) {
			holder := filepath.Join(repo, "mirror-holder.json")
			p := startMirror(t, []string{"IPFS_PATH=" + repo}, "--online", "--insecure", "pull", "ipfs://"+missing, dest)
			waitFor(t, "the embedded node to start", 60*time.Second, func() bool {
				_, err := os.Stat(holder)
				return err == nil
			})
			time.Sleep(time.Second)
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			code := p.wait(t, 30*time.Second)
			stderr := strings.TrimSpace(p.errb.String())
			if code != ExitInterrupted || !strings.HasSuffix(stderr, "\nmirror: interrupted") || strings.Contains(stderr, "context canceled") || strings.Contains(stderr, "not found") {
				t.Errorf("SIGINT mid-pull: exit %d, want %d; stderr:\n%s", code, ExitInterrupted, p.errb.String())
			}
			waitFor(t, "the repo to be released", 10*time.Second, func() bool {
				_, err := os.Stat(holder)
				return err != nil
			})
		})
	}
}

// TestE2ESyncInterrupted: SIGINT during a sync exits 130 and reports the
// images in flight as interrupted, not "failed … context canceled".
func TestE2ESyncInterrupted(t *testing.T) {
	g := newGate()
	reg := rig.StartRegistry(t, rig.RegistryOptions{Wrap: g.wrap})
	for i := 0; i < 2; i++ {
		img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, uint64(720+i), 100<<10, false)}})
		rig.Push(t, fmt.Sprintf("%s/intr/app%d:1.0", reg.Host, i), img)
	}
	g.reset()
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/intr/app0\n    tags: [\"1.0\"]\n  - source: %s/intr/app1\n    tags: [\"1.0\"]\n", reg.Host, reg.Host))
	repo := filepath.Join(t.TempDir(), "ipfs")
	p := startMirror(t, []string{"IPFS_PATH=" + repo}, "sync", "--json", list)
	select {
	case <-g.hits():
	case <-time.After(60 * time.Second):
		t.Fatalf("sync never asked for a blob: %s", p.errb.String())
	}
	time.Sleep(200 * time.Millisecond)
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	code := p.wait(t, 30*time.Second)
	stderr := p.errb.String()
	if code != ExitInterrupted || strings.Contains(stderr, "context canceled") || !strings.Contains(stderr, "interrupted "+reg.Host+"/intr/app0:1.0") {
		t.Errorf("SIGINT mid-sync: exit %d; stderr:\n%s", code, stderr)
	}
	var rep struct {
		Images []struct{ Status, Error string }
	}
	if err := json.Unmarshal(bytes.TrimSpace([]byte(p.out.String())), &rep); err != nil {
		t.Fatalf("--json report: %v\n%s", err, p.out.String())
	}
	for _, im := range rep.Images {
		if im.Error != "interrupted" {
			t.Errorf("report: %+v", im)
		}
	}
}

// loopbackName is a host name (not localhost, not an IP) that resolves to
// 127.0.0.1 here, or "".
func loopbackName() string {
	names := []string{"vm", "runsc"}
	if h, err := os.Hostname(); err == nil {
		names = append([]string{h}, names...)
	}
	for _, n := range names {
		addrs, err := net.LookupHost(n)
		if err == nil && len(addrs) > 0 && slices.Contains(addrs, "127.0.0.1") {
			return n
		}
	}
	return ""
}

// TestE2EPlainHTTPHint: a plain-HTTP registry named by host name fails
// with a hint to pass --insecure, and works with it.
func TestE2EPlainHTTPHint(t *testing.T) {
	name := loopbackName()
	if name == "" {
		t.Skip("no host name resolves to 127.0.0.1 here")
	}
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 730, 10<<10, false)}})
	rig.Push(t, reg.Host+"/plain/app:1.0", img)
	_, port, _ := net.SplitHostPort(reg.Host)
	src := name + ":" + port + "/plain/app:1.0"
	env := []string{"IPFS_PATH=" + filepath.Join(t.TempDir(), "ipfs")}
	res := mirrorRun(t, env, "push", src)
	if res.code != ExitFailure || !strings.Contains(res.stderr, "server gave HTTP response to HTTPS client") || !strings.Contains(res.stderr, "pass --insecure") {
		t.Errorf("push from a plain-HTTP registry by name: exit %d:\n%s", res.code, res.stderr)
	}
	list := writeList(t, t.TempDir(), "version: 1\nimages:\n  - source: "+name+":"+port+"/plain/app\n    tags: [\"1.0\"]\n")
	res = mirrorRun(t, env, "sync", "--retries", "1", list)
	if !strings.Contains(res.stderr, "pass --insecure") {
		t.Errorf("sync from a plain-HTTP registry by name: no hint:\n%s", res.stderr)
	}
	mustRun(t, env, "--insecure", "push", src)
}

// linesWith counts the lines of s that contain sub.
func linesWith(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// TestE2ESyncAllFailed: when no image of a sync was done (registry down)
// the exit code is the failures' (1), not 3; each error is printed once.
func TestE2ESyncAllFailed(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", rig.FreePort(t))
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 731, 10<<10, false)}})
	rig.Push(t, reg.Host+"/alive/app:1.0", img)
	dir := t.TempDir()
	env := []string{"IPFS_PATH=" + filepath.Join(t.TempDir(), "ipfs")}

	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/down/a\n    tags: [\"1.0\"]\n  - source: %s/down/b\n    tags: [\"1.0\"]\n", dead, dead))
	res := mirrorRun(t, env, "sync", "--retries", "1", list)
	if res.code != ExitFailure || !strings.Contains(res.stderr, "mirror: all 2 images failed\n") {
		t.Errorf("sync, registry down: exit %d (want %d):\n%s", res.code, ExitFailure, res.stderr)
	}
	for _, img := range []string{"/down/a:1.0", "/down/b:1.0"} {
		if n := linesWith(res.stderr, img); n != 1 {
			t.Errorf("the error of %s on %d lines, want one:\n%s", img, n, res.stderr)
		}
	}

	list = writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/down/a\n    tags: [\"1.0\"]\n  - source: %s/alive/app\n    tags: [\"1.0\"]\n", dead, reg.Host))
	res = mirrorRun(t, env, "sync", "--retries", "1", list)
	if res.code != ExitPartial || linesWith(res.stderr, "/down/a:1.0") != 1 || !strings.Contains(res.stderr, "mirror: 1 of 2 images failed; the others were done\n") {
		t.Errorf("sync, one registry down: exit %d (want %d):\n%s", res.code, ExitPartial, res.stderr)
	}
}

// TestE2EInspectPinHandle: inspect of a pin handle names the image it
// holds and shows its tree; a dag-pb CID that is neither exits 4.
func TestE2EInspectPinHandle(t *testing.T) {
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 740, 10<<10, false)}})
	rig.Push(t, reg.Host+"/handle/app:1.0", img)
	env := []string{"IPFS_PATH=" + filepath.Join(t.TempDir(), "ipfs")}
	root := mustRun(t, env, "push", reg.Host+"/handle/app:1.0").lastLine()
	handle := mustRun(t, env, "pin", "--handle", root).lastLine()
	res := mustRun(t, env, "inspect", handle)
	if !strings.Contains(res.stdout, "ipfs://"+handle+" is a pin handle: it holds every blob of ipfs://"+root) || !strings.Contains(res.stdout, "ipfs://"+root+" (root descriptor)") {
		t.Errorf("inspect HANDLE:\n%s", res.stdout)
	}
	var js struct{ Root, PinHandle string }
	mustUnmarshal(t, mustRun(t, env, "--json", "inspect", handle).stdout, &js)
	if js.Root != root || js.PinHandle != handle {
		t.Errorf("inspect --json HANDLE: %+v", js)
	}
	// The empty UnixFS directory (kubo always has it): dag-pb, not a
	// handle.
	res = mirrorRun(t, env, "inspect", "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354")
	if res.code != ExitIPFS {
		t.Errorf("inspect of a directory: exit %d: %s", res.code, res.stderr)
	}
}

func skopeoOut(t *testing.T, args ...string) string {
	t.Helper()
	bin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	out, err := exec.Command(bin, append([]string{"--insecure-policy"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("skopeo %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// indexNames lists a layout's index.json entries as "digest name".
func indexNames(t *testing.T, dir string) []string {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	mustUnmarshal(t, readFile(t, filepath.Join(dir, "index.json")), &idx)
	var out []string
	for _, m := range idx.Manifests {
		out = append(out, m.Digest+" "+m.Annotations["org.opencontainers.image.ref.name"])
	}
	return out
}

// TestE2EPullDestinations: a second pull into an oci: layout replaces the
// entry of its name (untagged: the untagged one), so skopeo reads oci:DIR
// unambiguously; docker-archive: refuses to overwrite without --force; a
// directory that is not a layout, and a path without a transport, are
// usage errors (2) naming the fix.
func TestE2EPullDestinations(t *testing.T) {
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	env := []string{"IPFS_PATH=" + filepath.Join(t.TempDir(), "ipfs")}
	var roots, digests []string
	for i := 0; i < 2; i++ {
		img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, uint64(750+i), 20<<10, false)}})
		src := fmt.Sprintf("%s/dest/app%d:1.0", reg.Host, i)
		rig.Push(t, src, img)
		roots = append(roots, mustRun(t, env, "push", src).lastLine())
	}
	for _, r := range roots {
		var js struct{ Digest string }
		mustUnmarshal(t, mustRun(t, env, "--json", "pull", r, "oci:"+filepath.Join(t.TempDir(), "probe")).stdout, &js)
		digests = append(digests, js.Digest)
	}

	t.Run("oci untagged twice", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "layout")
		mustRun(t, env, "pull", "ipfs://"+roots[0], "oci:"+dir)
		mustRun(t, env, "pull", "ipfs://"+roots[1], "oci:"+dir)
		mustRun(t, env, "pull", "ipfs://"+roots[1], "oci:"+dir)
		if got := indexNames(t, dir); !slices.Equal(got, []string{digests[1] + " "}) {
			t.Errorf("index.json after three untagged pulls: %v, want only %s", got, digests[1])
		}
		raw := skopeoOut(t, "inspect", "--raw", "oci:"+dir)
		if d := digest.FromString(raw).String(); d != digests[1] {
			t.Errorf("skopeo reads oci:DIR as %s, want %s", d, digests[1])
		}
		skopeo(t, "copy", "oci:"+dir, "dir:"+filepath.Join(t.TempDir(), "copy"))
	})
	t.Run("oci tagged", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "layout")
		mustRun(t, env, "pull", roots[0], "oci:"+dir+":v1")
		mustRun(t, env, "pull", roots[0], "oci:"+dir+":v2")
		mustRun(t, env, "pull", roots[1], "oci:"+dir+":v1")
		got := indexNames(t, dir)
		slices.Sort(got)
		want := []string{digests[0] + " v2", digests[1] + " v1"}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("index.json: %v, want %v", got, want)
		}
		if d := digest.FromString(skopeoOut(t, "inspect", "--raw", "oci:"+dir+":v1")).String(); d != digests[1] {
			t.Errorf("skopeo oci:DIR:v1 is %s, want %s", d, digests[1])
		}
	})
	t.Run("docker-archive exists", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "image.tar")
		mustRun(t, env, "pull", roots[0], "docker-archive:"+file)
		before := readFile(t, file)
		res := mirrorRun(t, env, "pull", roots[1], "docker-archive:"+file)
		if res.code != ExitUsage || !strings.Contains(res.stderr, "--force") {
			t.Errorf("pull over an archive: exit %d (want %d): %s", res.code, ExitUsage, res.stderr)
		}
		if readFile(t, file) != before {
			t.Error("the refused pull changed the archive")
		}
		mustRun(t, env, "pull", "--force", roots[1], "docker-archive:"+file)
		skopeoOut(t, "inspect", "docker-archive:"+file)
		if readFile(t, file) == before {
			t.Error("--force did not replace the archive")
		}
	})
	t.Run("not a layout", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := mirrorRun(t, env, "pull", roots[0], "oci:"+dir)
		if res.code != ExitUsage || !strings.Contains(res.stderr, "is not an OCI layout") {
			t.Errorf("pull into a directory that is not a layout: exit %d (want %d): %s", res.code, ExitUsage, res.stderr)
		}
	})
	t.Run("path without transport", func(t *testing.T) {
		for _, dest := range []string{"./out", "../out", "/tmp/out", "out.tar"} {
			res := mirrorRun(t, env, "pull", roots[0], dest)
			if res.code != ExitUsage || !strings.Contains(res.stderr, "write oci:"+dest) {
				t.Errorf("pull CID %s: exit %d (want %d): %s", dest, res.code, ExitUsage, res.stderr)
			}
		}
	})
}

// TestE2EEmbeddedRepoLoopback: a repo the offline embedded node creates
// listens on loopback only once a daemon starts on it.
func TestE2EEmbeddedRepoLoopback(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "ipfs")
	res := mirrorRun(t, []string{"IPFS_PATH=" + repo}, "inspect", "bafkreih6wtzzl5jfhwsv4byo6t26jlrhtldfnppvuavfklfgmz4xnovjvu")
	if res.code != ExitIPFS {
		t.Fatalf("inspect of a missing CID: exit %d: %s", res.code, res.stderr)
	}
	var cfg struct{ Addresses struct{ Swarm []string } }
	mustUnmarshal(t, readFile(t, filepath.Join(repo, "config")), &cfg)
	if len(cfg.Addresses.Swarm) == 0 {
		t.Fatal("no swarm addresses")
	}
	for _, a := range cfg.Addresses.Swarm {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") && !strings.HasPrefix(a, "/ip6/::1/") {
			t.Errorf("swarm address %s is not loopback", a)
		}
	}
	// kubo reads it back so.
	bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	cmd := exec.Command(bin, "config", "Addresses.Swarm")
	cmd.Env = append(os.Environ(), "IPFS_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "0.0.0.0") {
		t.Errorf("ipfs config Addresses.Swarm: %v\n%s", err, out)
	}
}

// mirrorRunIn is mirrorRun in the working directory dir.
func mirrorRunIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(mirrorBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "IPFS_TELEMETRY=off", "IPFS_PATH="+filepath.Join(t.TempDir(), "no-repo"), "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache")), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mirror %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// TestE2EQuickstartWords: the README's first command on a fresh repo
// prints `restored` for each image (a status docs/sync.md lists) and
// `lockfile unchanged` (the words the README uses), and leaves the
// committed lockfile as it is.
func TestE2EQuickstartWords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "quickstart")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(moduleRoot(t), "testdata", "quickstart"))); err != nil {
		t.Fatal(err)
	}
	lock := readFile(t, filepath.Join(dir, "mirrors.lock"))
	env := []string{"IPFS_PATH=" + filepath.Join(t.TempDir(), "ipfs")}
	res := mirrorRunIn(t, dir, env, "sync", "mirrors.yaml")
	if res.code != 0 {
		t.Fatalf("quickstart sync: exit %d:\n%s", res.code, res.stderr)
	}
	restored := 0
	for _, l := range strings.Split(res.stderr, "\n") {
		if strings.HasPrefix(l, "restored ") {
			restored++
		}
	}
	if restored != 2 || !strings.Contains(res.stderr, "; lockfile unchanged\n") {
		t.Errorf("quickstart sync on a fresh repo:\n%s", res.stderr)
	}
	if readFile(t, filepath.Join(dir, "mirrors.lock")) != lock {
		t.Error("the quickstart rewrote the committed lockfile")
	}
	readme := readFile(t, filepath.Join(moduleRoot(t), "README.md"))
	syncDoc := readFile(t, filepath.Join(moduleRoot(t), "docs", "sync.md"))
	if !strings.Contains(readme, "`lockfile unchanged`") || !strings.Contains(readme, "`restored`") || !strings.Contains(syncDoc, "| `restored` |") {
		t.Error("README.md / docs/sync.md do not use the words the quickstart prints (restored, lockfile unchanged)")
	}
}

// TestE2EConfigErrorPlaces: config errors name the file as given on the
// command line and the line of the problem (an unclosed flow sequence is
// on its own line); an unreachable ipfs.api names where the list set it.
func TestE2EConfigErrorPlaces(t *testing.T) {
	dir := t.TempDir()
	env := []string{"IPFS_PATH=" + filepath.Join(t.TempDir(), "ipfs")}
	writeListAs(t, dir, "bad.yaml", "version: 1\nimages:\n  - source: example.com/a\n    tags: [\"1.0\"\n")
	res := mirrorRunIn(t, dir, env, "sync", "bad.yaml")
	if res.code != ExitUsage || !strings.HasPrefix(res.stderr, "mirror: bad.yaml:4: invalid YAML") || strings.Contains(res.stderr, dir) {
		t.Errorf("unclosed [ on line 4: exit %d:\n%s", res.code, res.stderr)
	}
	dead := rig.FreePort(t)
	writeListAs(t, dir, "api.yaml", fmt.Sprintf("version: 1\nipfs:\n  api: /ip4/127.0.0.1/tcp/%d\nimages:\n  - source: example.com/a\n    tags: [\"1.0\"]\n", dead))
	res = mirrorRunIn(t, dir, env, "sync", "api.yaml")
	if res.code != ExitIPFS || !strings.Contains(res.stderr, "ipfs.api at api.yaml:3:8") {
		t.Errorf("unreachable ipfs.api: exit %d:\n%s", res.code, res.stderr)
	}
}

// TestE2EVersionAndHelp: --version works, version prints more than "dev",
// serve --help shows --listen's default, --ipfs-api's help the embedded
// fallback, and docs/sync.md's synopsis names every flag of sync --help.
func TestE2EVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		res := mustRun(t, nil, args...)
		if !strings.HasPrefix(res.stdout, "mirror ") || strings.TrimSpace(res.stdout) == "mirror dev" || !strings.Contains(res.stdout, "go1.") {
			t.Errorf("mirror %s: %q", args[0], res.stdout)
		}
	}
	if res := mustRun(t, nil, "serve", "--help"); !strings.Contains(res.stdout, `--listen="localhost:5050"`) {
		t.Errorf("serve --help shows no default for --listen:\n%s", res.stdout)
	}
	help := mustRun(t, nil, "sync", "--help").stdout
	if !strings.Contains(help, "else an embedded node") {
		t.Errorf("--ipfs-api help does not mention the embedded node:\n%s", help)
	}
	if dl := readFile(t, filepath.Join(moduleRoot(t), "docs", "daemonless.md")); regexp.MustCompile(`\| NO[0-9]`).MatchString(dl) {
		t.Error("docs/daemonless.md: the binary size table has placeholder cells (NO…)")
	}
	doc := readFile(t, filepath.Join(moduleRoot(t), "docs", "sync.md"))
	synopsis := doc[:strings.Index(doc, "## What a run does")]
	own := help[strings.Index(help, "--version"):]
	for _, m := range regexp.MustCompile(`--[a-z-]+`).FindAllString(own, -1) {
		if m != "--version" && m != "--json" && !strings.Contains(synopsis, m) {
			t.Errorf("docs/sync.md's synopsis lacks %s", m)
		}
	}
}
