package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// sixApps pushes 6 images × 2 platforms sharing one base layer per
// platform, as HOST/appN:1.0, and returns their indexes.
func sixApps(t *testing.T, host string, seed uint64) []v1.ImageIndex {
	t.Helper()
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	baseAmd, baseArm := rig.Layer(t, seed, 300<<10, false), rig.Layer(t, seed+1, 300<<10, false)
	var out []v1.ImageIndex
	for i := 0; i < 6; i++ {
		idx := rig.Index(t, false,
			rig.Image(t, rig.ImageSpec{Platform: &amd, Layers: []v1.Layer{baseAmd, rig.Layer(t, seed+100+uint64(i), 100<<10, false)}}),
			rig.Image(t, rig.ImageSpec{Platform: &arm, Layers: []v1.Layer{baseArm, rig.Layer(t, seed+200+uint64(i), 100<<10, false)}}),
		)
		rig.Push(t, fmt.Sprintf("%s/app%d:1.0", host, i), idx)
		out = append(out, idx)
	}
	return out
}

func writeList(t *testing.T, dir, body string) string {
	t.Helper()
	return writeListAs(t, dir, "mirrors.yaml", body)
}

func writeListAs(t *testing.T, dir, file, body string) string {
	t.Helper()
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func appsList(host string, extra string) string {
	var b strings.Builder
	b.WriteString("version: 1\n" + extra + "images:\n")
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "  - source: %s/app%d\n    tags: [\"1.0\"]\n", host, i)
	}
	return b.String()
}

func readLock(t *testing.T, path string) *lockfile.File {
	t.Helper()
	f, err := lockfile.Read(path)
	if err != nil {
		t.Fatalf("lockfile: %v", err)
	}
	return f
}

func TestE2ESyncSharedLayersAndNoop(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	var regCount, ipfsCount rig.Counter
	reg := rig.StartRegistry(t, rig.RegistryOptions{Wrap: regCount.Counting})
	apps := sixApps(t, reg.Host, 1)
	env := []string{"IPFS_API=" + rig.KuboProxy(t, k, &ipfsCount, nil)}
	dir := t.TempDir()
	list := writeList(t, dir, appsList(reg.Host, ""))
	lockPath := filepath.Join(dir, "mirrors.lock")

	regCount.Reset()
	mustRun(t, env, "sync", "--jobs", "4", list)
	lock := readLock(t, lockPath)
	if len(lock.Images) != 6 {
		t.Fatalf("lockfile has %d entries, want 6", len(lock.Images))
	}
	distinct := map[string]bool{}
	for i, e := range lock.Images {
		blobs := checkTree(t, k, e.CID)
		sameBlobs(t, e.Source, rig.SourceBlobs(t, apps[i]), blobs)
		for d := range blobs {
			distinct[d] = true
		}
		if e.Digest != rig.Digest(t, apps[i]).String() {
			t.Errorf("%s: lock digest %s", e.Source, e.Digest)
		}
		// Every CID pulls back.
		out := filepath.Join(t.TempDir(), "oci")
		mustRun(t, env, "pull", e.CID, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
		sameBlobs(t, "pull "+e.Source, rig.SourceBlobs(t, apps[i]), rig.LayoutBlobs(t, out))
	}
	adds := ipfsCount.Get("POST /api/v0/add")
	// 2 shared bases + 12 own layers + 12 configs + 12 manifests + 6 indexes = 44
	// distinct blobs, plus 6 root descriptors.
	if len(distinct) != 44 || adds != len(distinct)+6 {
		t.Errorf("IPFS adds %d, distinct blobs %d (+6 roots): each blob must be added once", adds, len(distinct))
	}
	t.Logf("first run: %d IPFS adds for %d distinct blobs + 6 roots; registry requests %v", adds, len(distinct), regCount.Snapshot())
	before, _ := os.ReadFile(lockPath)

	// Second run: HEADs only.
	regCount.Reset()
	ipfsCount.Reset()
	res := mustRun(t, env, "sync", list)
	after, _ := os.ReadFile(lockPath)
	if !bytes.Equal(before, after) {
		t.Errorf("no-op run changed the lockfile:\n%s\n---\n%s", before, after)
	}
	got := regCount.Snapshot()
	if got["GET manifests"] != 0 || got["GET blobs"] != 0 || got["HEAD manifests"] != 6 || got["GET /v2/"] > 6 || ipfsCount.Get("POST /api/v0/add") != 0 {
		t.Errorf("no-op run: registry %v, IPFS adds %d; want 6 manifest HEADs (and at most one ping per repository) only", got, ipfsCount.Get("POST /api/v0/add"))
	}
	if !strings.Contains(res.stderr, "6 unchanged") {
		t.Errorf("no-op output: %s", res.stderr)
	}
	// Whether the node still holds the 6 roots: one batched pin check.
	if n := ipfsCount.Get("POST /api/v0/pin/ls"); n != 1 {
		t.Errorf("no-op run: %d pin/ls calls, want 1 (batched): %v", n, ipfsCount.Snapshot())
	}
	t.Logf("no-op run: registry requests %v, IPFS calls %v", got, ipfsCount.Snapshot())

	// With immutable tags: no registry request at all.
	list2 := writeListAs(t, dir, "immutable.yaml", appsList(reg.Host, "immutable_tags: '^\\d+\\.\\d+$'\n"))
	regCount.Reset()
	res = mustRun(t, env, "sync", "--lock", lockPath, list2)
	if n := regCount.Total(); n != 0 {
		t.Errorf("immutable tags: %d registry requests %v", n, regCount.Snapshot())
	}
	if !strings.Contains(res.stderr, "6 immutable") {
		t.Errorf("immutable output: %s", res.stderr)
	}

	// --dry-run after a tag moved: the plan says changed, nothing written.
	rig.Push(t, reg.Host+"/app0:1.0", apps[1])
	res = mustRun(t, env, "sync", "--dry-run", list)
	if !strings.Contains(res.stderr, "changed") || !strings.Contains(res.stderr, "dry run") {
		t.Errorf("dry run output: %s", res.stderr)
	}
	if after2, _ := os.ReadFile(lockPath); !bytes.Equal(after2, before) {
		t.Errorf("dry run wrote the lockfile")
	}
	// Removing an entry from the list drops it from the lockfile.
	short := writeListAs(t, dir, "short.yaml", "version: 1\nimages:\n  - source: "+reg.Host+"/app1\n    tags: [\"1.0\"]\n")
	res = mustRun(t, env, "--json", "sync", "--lock", lockPath, short)
	if !strings.Contains(res.stdout, `"status": "removed"`) || len(readLock(t, lockPath).Images) != 1 {
		t.Errorf("removed entries: %s", res.stdout)
	}
}

func TestE2ESyncRepush(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	var dstCount rig.Counter
	dst := rig.StartRegistry(t, rig.RegistryOptions{Wrap: dstCount.Counting})
	apps := sixApps(t, reg.Host, 50)
	env := []string{"IPFS_API=" + k.APIAddr}
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf(`version: 1
images:
  - source: %s/app0
    tags: ["1.0"]
    push: ["%s/mirror/{{.Repo}}:{{.Tag}}-ipfs"]
  - source: %s/app1:1.0
    push: ["%s/other/app1:{{.Tag}}-{{.Mode}}"]
`, reg.Host, dst.Host, reg.Host, dst.Host))
	mustRun(t, env, "sync", list)
	lock := readLock(t, filepath.Join(dir, "mirrors.lock"))
	want := map[string]string{reg.Host + "/app0:1.0": dst.Host + "/mirror/app0:1.0-ipfs", reg.Host + "/app1:1.0": dst.Host + "/other/app1:1.0-plain"}
	for i, e := range lock.Images {
		if len(e.Push) != 1 || e.Push[0].Ref != want[e.Source] {
			t.Fatalf("%s: push %v, want %s", e.Source, e.Push, want[e.Source])
		}
		ref, _ := name.ParseReference(e.Push[0].Ref)
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := idx.Digest(); d.String() != e.Push[0].Digest {
			t.Errorf("%s: registry has %s, lock says %s", e.Push[0].Ref, d, e.Push[0].Digest)
		}
		sameBlobs(t, e.Push[0].Ref, rig.SourceBlobs(t, apps[i]), rig.SourceBlobs(t, idx))
	}
	dstCount.Reset()
	mustRun(t, env, "sync", list)
	if s := dstCount.Snapshot(); s["PUT manifests"] != 0 || s["POST uploads"] != 0 || s["HEAD manifests"] != 2 {
		t.Errorf("re-run wrote to the push registry: %v", s)
	}
}

// faulty serves 500, then 429 with Retry-After: 1, then passes, for the
// manifest of one repository; and corrupts one blob when asked.
type faulty struct {
	mu       sync.Mutex
	flaky    string // path substring
	hits     int
	corrupt  string // blob digest to corrupt
	lastWait time.Time
}

func (f *faulty) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		flaky, corrupt := f.flaky != "" && strings.Contains(r.URL.Path, f.flaky) && strings.Contains(r.URL.Path, "/manifests/"), f.corrupt != "" && strings.HasSuffix(r.URL.Path, "/blobs/"+f.corrupt)
		n := 0
		if flaky {
			f.hits++
			n = f.hits
		}
		f.mu.Unlock()
		switch {
		case flaky && n == 1:
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case flaky && n == 2:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		case corrupt && r.Method == http.MethodGet:
			rec := &captured{header: http.Header{}}
			next.ServeHTTP(rec, r)
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			b := rec.body.Bytes()
			if len(b) > 100 {
				b[100] ^= 0xff
			}
			w.WriteHeader(rec.code)
			_, _ = w.Write(b)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type captured struct {
	header http.Header
	body   bytes.Buffer
	code   int
}

func (c *captured) Header() http.Header         { return c.header }
func (c *captured) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *captured) WriteHeader(code int)        { c.code = code }

func TestE2ESyncFaults(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	f := &faulty{}
	reg := rig.StartRegistry(t, rig.RegistryOptions{Wrap: f.wrap})
	apps := sixApps(t, reg.Host, 500)
	env := []string{"IPFS_API=" + k.APIAddr}

	t.Run("5xx and 429 with Retry-After, then recovery", func(t *testing.T) {
		dir := t.TempDir()
		list := writeList(t, dir, "version: 1\nimages:\n  - source: "+reg.Host+"/app0:1.0\n")
		f.mu.Lock()
		f.flaky, f.hits = "/app0/", 0
		f.mu.Unlock()
		start := time.Now()
		mustRun(t, env, "sync", list)
		if took := time.Since(start); took < time.Second {
			t.Errorf("took %s: Retry-After: 1 not honoured", took)
		}
		f.mu.Lock()
		hits := f.hits
		f.flaky = ""
		f.mu.Unlock()
		if hits < 3 {
			t.Errorf("%d manifest requests: no retries", hits)
		}
		if len(readLock(t, filepath.Join(dir, "mirrors.lock")).Images) != 1 {
			t.Error("image not mirrored after retries")
		}
	})

	t.Run("404 and corrupted blob: the others land, previous entry kept", func(t *testing.T) {
		dir := t.TempDir()
		body := fmt.Sprintf("version: 1\nimages:\n  - source: %s/app1:1.0\n  - source: %s/app2:1.0\n  - source: %s/app3:1.0\n  - source: %s/missing:1.0\n", reg.Host, reg.Host, reg.Host, reg.Host)
		list := writeList(t, dir, body)
		res := mirrorRun(t, env, "sync", list)
		if res.code != ExitPartial || !strings.Contains(res.stderr, "missing:1.0") || !strings.Contains(res.stderr, "404") {
			t.Fatalf("exit %d (want %d): %s", res.code, ExitPartial, res.stderr)
		}
		lockPath := filepath.Join(dir, "mirrors.lock")
		old, _ := lockfile.Read(lockPath)
		prev, ok := old.Lookup(reg.Host+"/app2:1.0", "plain")
		if !ok || len(old.Images) != 3 {
			t.Fatalf("lockfile after a partial run: %+v", old.Images)
		}
		prevEntry := *prev
		// app2 moves to a new image whose new layer the registry corrupts.
		amd := v1.Platform{OS: "linux", Architecture: "amd64"}
		newLayer := rig.Layer(t, 777, 200<<10, false)
		moved := rig.Index(t, false, rig.Image(t, rig.ImageSpec{Platform: &amd, Layers: []v1.Layer{newLayer}}))
		rig.Push(t, reg.Host+"/app2:1.0", moved)
		ld, _ := newLayer.Digest()
		f.mu.Lock()
		f.corrupt = ld.String()
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.corrupt = ""; f.mu.Unlock() }()
		res = mirrorRun(t, env, "--json", "sync", list)
		if res.code != ExitPartial || !strings.Contains(res.stderr, "app2") {
			t.Fatalf("exit %d (want %d): %s", res.code, ExitPartial, res.stderr)
		}
		if !strings.Contains(res.stderr, ld.String()) {
			t.Errorf("the error does not name the corrupted blob %s: %s", ld, res.stderr)
		}
		now := readLock(t, lockPath)
		e, _ := now.Lookup(reg.Host+"/app2:1.0", "plain")
		if e == nil || e.CID != prevEntry.CID || e.Digest != prevEntry.Digest {
			t.Errorf("previous entry not kept: %+v, was %+v", e, prevEntry)
		}
		if _, ok := now.Lookup(reg.Host+"/app3:1.0", "plain"); !ok {
			t.Error("app3 missing")
		}
		_ = apps
	})

	t.Run("kubo stopped mid-run", func(t *testing.T) {
		k2 := rig.StartKubo(t, rig.KuboOptions{})
		var adds atomic.Int32
		api := rig.KuboProxy(t, k2, nil, func(r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/add") && adds.Add(1) == 8 {
				k2.Stop()
			}
		})
		dir := t.TempDir()
		list := writeList(t, dir, appsList(reg.Host, ""))
		res := mirrorRun(t, []string{"IPFS_API=" + api}, "sync", "--jobs", "2", list)
		// 3 when some images landed before the node died; when none did,
		// the failures' own code (1, or 4).
		if done := strings.Contains(res.stderr, "new       "); (done && res.code != ExitPartial) || (!done && res.code != ExitFailure && res.code != ExitIPFS) {
			t.Fatalf("exit %d (want %d if some image landed, else %d or %d): %s", res.code, ExitPartial, ExitFailure, ExitIPFS, res.stderr)
		}
		if !strings.Contains(res.stderr, "ipfs") {
			t.Errorf("unclear error: %s", res.stderr)
		}
		lock := readLock(t, filepath.Join(dir, "mirrors.lock")) // parses: not corrupted
		if err := lock.Validate(); err != nil {
			t.Error(err)
		}
		if len(lock.Images) >= 6 {
			t.Errorf("%d entries after the node died", len(lock.Images))
		}
	})

	t.Run("SIGINT mid-run", func(t *testing.T) {
		dir := t.TempDir()
		list := writeList(t, dir, appsList(reg.Host, ""))
		lockPath := filepath.Join(dir, "mirrors.lock")
		_ = os.WriteFile(lockPath, []byte(lockfile.Header+"version: 1\nimages: []\n"), 0o644)
		k3 := rig.StartKubo(t, rig.KuboOptions{})
		var pid atomic.Int64
		var once sync.Once
		api := rig.KuboProxy(t, k3, nil, func(r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/add") && pid.Load() > 0 {
				once.Do(func() { _ = syscall.Kill(int(pid.Load()), syscall.SIGINT) })
				time.Sleep(200 * time.Millisecond)
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, mirrorBin, "sync", "--jobs", "1", list)
		cmd.Env = append(os.Environ(), "IPFS_API="+api, "IPFS_TELEMETRY=off")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid.Store(int64(cmd.Process.Pid))
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != ExitInterrupted {
			t.Fatalf("exit %d (want %d): %s", code, ExitInterrupted, stderr.String())
		}
		lock := readLock(t, lockPath)
		if err := lock.Validate(); err != nil {
			t.Error(err)
		}
		if strings.Contains(stderr.String(), "panic") {
			t.Error(stderr.String())
		}
	})
}

func TestE2ESyncCompose(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	sixApps(t, reg.Host, 900)
	env := []string{"IPFS_API=" + k.APIAddr}
	dir := t.TempDir()
	compose := filepath.Join(dir, "compose.yaml")
	_ = os.WriteFile(compose, []byte(fmt.Sprintf("services:\n  web:\n    image: %s/app0:1.0\n  worker:\n    image: %s/app1:1.0\n  api:\n    image: %s/app0:1.0\n", reg.Host, reg.Host, reg.Host)), 0o644)
	list := writeList(t, dir, "version: 1\nimages:\n  - compose: compose.yaml\n")
	mustRun(t, env, "sync", list)
	lock := readLock(t, filepath.Join(dir, "mirrors.lock"))
	if len(lock.Images) != 2 {
		t.Fatalf("lock has %d entries, want 2 (app0 named twice)", len(lock.Images))
	}
	mustRun(t, env, "compose", "rewrite", "--lock", filepath.Join(dir, "mirrors.lock"), compose)
	override, err := os.ReadFile(filepath.Join(dir, "compose.ipfs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lock.Images {
		if !strings.Contains(string(override), "localhost:5050/ipfs/"+e.CID) {
			t.Errorf("override lacks %s:\n%s", e.CID, override)
		}
	}
	if strings.Count(string(override), "image:") != 3 {
		t.Errorf("override:\n%s", override)
	}
}

// TestE2ESyncRestoresWhatTheNodeLost: an ephemeral node (a fresh CI runner)
// with a committed lockfile gets the images again, and the lockfile bytes
// stay the same.
func TestE2ESyncRestoresWhatTheNodeLost(t *testing.T) {
	t.Parallel()
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	sixApps(t, reg.Host, 1200)
	dir := t.TempDir()
	list := writeList(t, dir, appsList(reg.Host, "immutable_tags: '^1\\.0$'\n"))
	k1 := rig.StartKubo(t, rig.KuboOptions{})
	mustRun(t, []string{"IPFS_API=" + k1.APIAddr}, "sync", list)
	before, _ := os.ReadFile(filepath.Join(dir, "mirrors.lock"))
	k2 := rig.StartKubo(t, rig.KuboOptions{})
	res := mustRun(t, []string{"IPFS_API=" + k2.APIAddr}, "sync", list)
	if !strings.Contains(res.stderr, "6 restored") {
		t.Errorf("fresh node: %s", res.stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "mirrors.lock"))
	if !bytes.Equal(before, after) {
		t.Errorf("lockfile changed:\n%s\n%s", before, after)
	}
	for _, e := range readLock(t, filepath.Join(dir, "mirrors.lock")).Images {
		checkTree(t, k2, e.CID)
	}
	if res := mustRun(t, []string{"IPFS_API=" + k2.APIAddr}, "sync", list); !strings.Contains(res.stderr, "6 immutable") {
		t.Errorf("third run: %s", res.stderr)
	}
}

// TestE2ESyncCARAndPinHandles: sync records a pin handle per entry and
// writes a CAR per entry; a fresh node that imports the CARs and collects
// garbage still has every image.
func TestE2ESyncCARAndPinHandles(t *testing.T) {
	t.Parallel()
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	apps := sixApps(t, reg.Host, 1500)
	k := rig.StartKubo(t, rig.KuboOptions{})
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/app0:1.0\n  - source: %s/app1:1.0\n", reg.Host, reg.Host))
	cars := filepath.Join(dir, "cars")
	mustRun(t, []string{"IPFS_API=" + k.APIAddr}, "sync", "--car", cars, list)
	lock := readLock(t, filepath.Join(dir, "mirrors.lock"))
	fresh := rig.StartKubo(t, rig.KuboOptions{})
	for _, e := range lock.Images {
		if !strings.HasPrefix(e.Pin, "bafybei") {
			t.Fatalf("%s: pin handle %q", e.Source, e.Pin)
		}
		car := filepath.Join(cars, strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(e.Source)+".plain.car")
		out := fresh.Run("dag", "import", "--stats", car)
		if !strings.Contains(out, e.Pin) {
			t.Errorf("%s: the CAR's root is not the pin handle %s: %s", e.Source, e.Pin, out)
		}
	}
	fresh.Run("repo", "gc")
	for i, e := range lock.Images {
		sameBlobs(t, "after dag import + gc", rig.SourceBlobs(t, apps[i]), checkTree(t, fresh, e.CID))
		dst := filepath.Join(t.TempDir(), "oci")
		mustRun(t, []string{"IPFS_API=" + fresh.APIAddr}, "pull", e.CID, "oci:"+dst)
		sameBlobs(t, "skopeo copy after dag import + gc", rig.SourceBlobs(t, apps[i]), rig.DirBlobs(t, rig.SkopeoReads(t, "oci:"+dst)))
	}
}
