package main

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/internal/reqcount"
	"github.com/ipfs-mirror/mirror/internal/rig"
)

// Digest-faithful mirrors (issue 18): a plain sync keeps the source's own
// index and manifests (lockfile upstream:), `mirror serve --lock` serves
// them under the entry's name by tag and by upstream digest, and `mirror
// pull --preserve-digests` writes them back byte for byte. The source
// registry is stopped before anything reads from the mirror, so nothing
// can have come from it.

// upstreamRegistry is CNCF distribution behind a counting proxy: the
// image's "upstream". stop closes the proxy (connections refused from
// then on).
type upstreamRegistry struct {
	host  string
	count rig.Counter
	srv   *httptest.Server
}

func startUpstream(t *testing.T) *upstreamRegistry {
	t.Helper()
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	u := &upstreamRegistry{}
	target, _ := url.Parse("http://" + reg.Host)
	u.srv = httptest.NewServer(reqcount.Proxy(target, &u.count, nil))
	t.Cleanup(u.srv.Close)
	u.host = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

func (u *upstreamRegistry) stop() {
	u.srv.CloseClientConnections()
	u.srv.Close()
	u.count.Reset() // from now on, every request counted is one too many
}

// faithfulSync pushes a two-platform Docker manifest list (a runnable
// busybox for linux/amd64) to a fresh upstream as faithful/app:1, syncs it
// in plain mode through a counting kubo proxy, checks the lockfile and a
// no-op run, and stops the upstream. It returns the rig, the lockfile, the
// upstream digest and the index's bytes.
func faithfulSync(t *testing.T, env []string, ipfsCount *rig.Counter) (up *upstreamRegistry, lock, top string, raw []byte) {
	t.Helper()
	up = startUpstream(t)
	idx := rig.BusyboxDockerIndex(t, 1800)
	top = rig.Push(t, up.host+"/faithful/app:1", idx).String()
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/faithful/app\n    tags: [\"1\"]\n", up.host))
	lock = filepath.Join(dir, "mirrors.lock")

	up.count.Reset()
	ipfsCount.Reset()
	start := time.Now()
	mustRun(t, env, "sync", list)
	t.Logf("first sync (%s): registry %v; IPFS %v", time.Since(start).Round(time.Millisecond), up.count.Snapshot(), ipfsCount.Snapshot())
	lf := readLock(t, lock)
	if len(lf.Images) != 1 {
		t.Fatalf("lockfile: %+v", lf.Images)
	}
	e := lf.Images[0]
	if e.Digest != top || e.Upstream == "" || e.Pin == "" {
		t.Fatalf("entry: digest %s (upstream %s), upstream %q, pin %q", e.Digest, top, e.Upstream, e.Pin)
	}
	// Three manifest GETs (the list, its two manifests) and no more: the
	// upstream documents come from the write's own reads.
	if n := up.count.Get("GET manifests"); n != 3 {
		t.Errorf("first sync: %d manifest GETs, want 3 (the list and its two manifests)", n)
	}
	before := readFile(t, lock)

	up.count.Reset()
	ipfsCount.Reset()
	mustRun(t, env, "sync", list)
	reg, ipfs := up.count.Snapshot(), ipfsCount.Snapshot()
	t.Logf("no-op sync: registry %v; IPFS %v", reg, ipfs)
	if reg["GET manifests"] != 0 || reg["GET blobs"] != 0 || ipfs["POST /api/v0/add"] != 0 || ipfs["POST /api/v0/block/put"] != 0 {
		t.Errorf("no-op sync: registry %v, IPFS %v; want no GET, no add", reg, ipfs)
	}
	if before != readFile(t, lock) {
		t.Error("no-op sync changed the lockfile")
	}
	up.stop()
	return up, lock, top, raw
}

// TestE2EFaithfulServeAndPull: crane and skopeo read the upstream
// documents from `mirror serve --lock` by tag and by digest, with the
// upstream digest; `mirror pull --preserve-digests` gives a second registry
// the upstream digest, from the entry's upstream: and from its pin:.
func TestE2EFaithfulServeAndPull(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	var ipfsCount rig.Counter
	env := []string{"IPFS_API=" + rig.KuboProxy(t, k, &ipfsCount, nil)}
	up, lock, top, raw := faithfulSync(t, env, &ipfsCount)
	e := readLock(t, lock).Images[0]
	crane := craneBin(t)

	p := startServe(t, env, "--lock", lock)
	name := p.host + "/" + strings.Replace(up.host, ":", "_", 1) + "/faithful/app"
	for _, ref := range []string{name + ":1", name + "@" + top} {
		if got := strings.TrimSpace(runTool(t, crane, "digest", "--insecure", ref)); got != top {
			t.Errorf("crane digest %s = %s, want the upstream %s", ref, got, top)
		}
		if got := runTool(t, crane, "manifest", "--insecure", ref); got != string(raw) {
			t.Errorf("crane manifest %s: not the upstream bytes:\n%s", ref, got)
		}
		skopeoRaw := rig.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
		if d := digest.FromString(skopeoRaw).String(); d != top {
			t.Errorf("skopeo inspect --raw %s: digest %s, want %s", ref, d, top)
		}
		if d := strings.TrimSpace(rig.Skopeo(t, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref)); d != top {
			t.Errorf("skopeo inspect %s: Digest %s, want %s", ref, d, top)
		}
	}
	// The whole image, through the upstream view, has the upstream blobs.
	out := filepath.Join(t.TempDir(), "oci")
	runTool(t, crane, "pull", "--insecure", "--format=oci", name+"@"+top, out)
	if got := rig.LayoutBlobs(t, out); len(got) == 0 {
		t.Error("crane pull by upstream digest wrote no blob")
	}
	log := p.stderr()
	if !strings.Contains(log, "/manifests/"+top) || !strings.Contains(log, "digest="+top) {
		t.Errorf("mirror serve's log has no request answered with %s:\n%s", top, log)
	}

	// Back to a registry, byte for byte.
	dst := rig.StartRegistry(t, rig.RegistryOptions{})
	for tag, c := range map[string]string{"from-upstream": e.Upstream, "from-pin": e.Pin} {
		ref := dst.Host + "/faithful/app:" + tag
		start := time.Now()
		mustRun(t, env, "pull", "--preserve-digests", "ipfs://"+c, ref)
		if got := strings.TrimSpace(runTool(t, crane, "digest", "--insecure", ref)); got != top {
			t.Errorf("pull --preserve-digests %s → %s: crane digest %s, want %s", c, ref, got, top)
		}
		t.Logf("pull --preserve-digests ipfs://%s (%s): %s", c, tag, time.Since(start).Round(time.Millisecond))
	}
	// The IPFS-enabled root has no upstream documents: a usage error.
	if r := mirrorRun(t, env, "pull", "--preserve-digests", "ipfs://"+e.CID, dst.Host+"/faithful/app:root"); r.code != ExitUsage || !strings.Contains(r.stderr, "no upstream documents") {
		t.Errorf("pull --preserve-digests of the root CID: exit %d\n%s", r.code, r.stderr)
	}
	if n := up.count.Total(); n != 0 {
		t.Errorf("%d requests reached the stopped upstream", n)
	}
}

// TestE2EStackFaithfulContainerd: containerd, with `mirror serve --lock`
// as the hosts.toml mirror of the upstream registry (stopped, and also its
// own `server`, so no fallback can answer), pulls and runs
// NAME@sha256:<upstream> — the digest a Kubernetes manifest pins.
func TestE2EStackFaithfulContainerd(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	var ipfsCount rig.Counter
	env := []string{"IPFS_API=" + rig.KuboProxy(t, s.k, &ipfsCount, nil)}
	up, lock, top, _ := faithfulSync(t, env, &ipfsCount)

	p := startServe(t, env, "--lock", lock)
	s.c.HostsTOML(t, up.host, fmt.Sprintf(`server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, up.host, p.host))
	ref := up.host + "/faithful/app@" + top
	start := time.Now()
	s.c.Nerdctl(t, "pull", "--quiet", ref)
	out := s.c.Nerdctl(t, "run", "--rm", "--net", "none", ref, "echo", "hello-from-upstream-digest")
	if strings.TrimSpace(out) != "hello-from-upstream-digest" {
		t.Errorf("nerdctl run %s printed %q", ref, out)
	}
	t.Logf("nerdctl pull + run by upstream digest: %s", time.Since(start).Round(time.Millisecond))
	log := p.stderr()
	for _, want := range []string{"/v2/faithful/app/manifests/" + top, "/v2/faithful/app/blobs/sha256:", "digest=" + top} {
		if !strings.Contains(log, want) {
			t.Errorf("mirror serve's log has no %s:\n%s", want, log)
		}
	}
	if n := up.count.Total(); n != 0 {
		t.Errorf("%d requests reached the stopped upstream", n)
	}
}
