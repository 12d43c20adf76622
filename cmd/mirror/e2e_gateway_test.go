package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// TestE2EGateway: images synced into a kubo node are consumed by mirror
// processes that have no node at all (no IPFS_API, an empty IPFS_PATH that
// must stay so), only kubo's own HTTP gateway on 127.0.0.1 as a trustless
// gateway: pull of a multi-platform, an eStargz and an encrypted image
// byte-identical to a pull from the node (and read by skopeo); inspect;
// serve answering crane, skopeo and a Range read; a lying gateway in front
// of the good one; verify passing, then failing for the image whose blocks
// the node no longer has.
func TestE2EGateway(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	gw := r.k.GatewayURL()

	idx := rig.MultiPlatform(t, 1600, 700<<10)
	rig.Push(t, r.reg.Host+"/gw/multi:v1", idx)
	multiBlobs := rig.SourceBlobs(t, idx)
	img, _ := filesImage(t)
	src := filepath.Join(t.TempDir(), "src")
	rig.WriteLayout(t, src, img, "v1")
	keys := t.TempDir()
	pub, priv := rsaKeys(t, keys, "a")
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf(`version: 1
images:
  - source: %s/gw/multi
    tags: ["v1"]
  - source: oci:%s:v1
    modes: [estargz, encrypted]
    encrypt: {recipients: ["jwe:%s"]}
`, r.reg.Host, src, pub))
	mustRun(t, r.env, "sync", list)
	lockPath := filepath.Join(dir, "mirrors.lock")
	lock := readLock(t, lockPath)
	if len(lock.Images) != 3 {
		t.Fatalf("lockfile: %+v", lock.Images)
	}
	entry := func(mode string) lockfile.Entry {
		for _, e := range lock.Images {
			if e.Mode == mode {
				return e
			}
		}
		t.Fatalf("no %s entry", mode)
		return lockfile.Entry{}
	}
	multi, stargz, enc := entry("plain"), entry("estargz"), entry("encrypted")

	// The consuming side: no node anywhere.
	noRepo := filepath.Join(t.TempDir(), "no-repo")
	consumer := []string{"IPFS_API=", "IPFS_PATH=" + noRepo}
	withGW := append(consumer[:len(consumer):len(consumer)], "MIRROR_GATEWAY="+gw)
	t.Cleanup(func() {
		if _, err := os.Stat(noRepo); err == nil {
			t.Errorf("a gateway command created %s: it opened a node", noRepo)
		}
	})

	t.Run("pull", func(t *testing.T) {
		for _, e := range []lockfile.Entry{multi, stargz, enc} {
			fromNode := filepath.Join(t.TempDir(), "node")
			mustRun(t, r.env, "pull", e.CID, "oci:"+fromNode+":v1")
			fromGW := filepath.Join(t.TempDir(), "gw")
			// The flag on one, the variable on the others.
			if e.Mode == "plain" {
				mustRun(t, consumer, "pull", "--gateway", gw, e.CID, "oci:"+fromGW+":v1")
			} else {
				mustRun(t, withGW, "pull", e.CID, "oci:"+fromGW+":v1")
			}
			want, got := rig.LayoutBlobs(t, fromNode), rig.LayoutBlobs(t, fromGW)
			sameBlobs(t, e.Mode+": gateway pull vs node pull", want, got)
			if len(got) != len(want) {
				t.Errorf("%s: %d blobs through the gateway, %d from the node", e.Mode, len(got), len(want))
			}
			rig.SkopeoReads(t, "oci:"+fromGW+":v1")
		}
		sameBlobs(t, "multi-platform through the gateway", multiBlobs, rig.LayoutBlobs(t, pullGW(t, withGW, multi.CID)))
		// Decrypting through the gateway.
		dec := filepath.Join(t.TempDir(), "dec")
		mustRun(t, withGW, "pull", "--key", priv, enc.CID, "oci:"+dec)
		sameBlobs(t, "decrypted through the gateway", filterLayers(rig.SourceBlobs(t, img)), rig.LayoutBlobs(t, dec))
	})

	t.Run("inspect", func(t *testing.T) {
		out := mustRun(t, withGW, "inspect", multi.CID).stdout
		for _, want := range []string{"linux/arm64", "linux/arm/v7"} {
			if !strings.Contains(out, want) {
				t.Errorf("inspect lacks %q:\n%s", want, out)
			}
		}
		// The pin handle stands for its image (a block read through the
		// gateway's BlockGetter).
		if out := mustRun(t, withGW, "inspect", multi.Pin).stdout; !strings.Contains(out, multi.CID) {
			t.Errorf("inspect of the pin handle:\n%s", out)
		}
	})

	t.Run("serve", func(t *testing.T) {
		p := startServe(t, withGW, "--blob-cache", "none", "--lock", lockPath)
		crane := craneBin(t)
		out := filepath.Join(t.TempDir(), "crane")
		runTool(t, crane, "pull", "--format=oci", p.host+"/ipfs/"+multi.CID, out)
		sameBlobs(t, "crane pull through serve --gateway", multiBlobs, rig.LayoutBlobs(t, out))
		sk := filepath.Join(t.TempDir(), "skopeo")
		runTool(t, rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo"), "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p.host+"/ipfs-nourls/"+multi.CID, "oci:"+sk+":latest")
		sameBlobs(t, "skopeo through serve --gateway", multiBlobs, rig.LayoutBlobs(t, sk))
		var layer string
		var layerBytes []byte
		for d, b := range multiBlobs {
			if len(b) > 600<<10 {
				layer, layerBytes = d, b
				break
			}
		}
		resp := serveReq(t, "GET", "http://"+p.host+"/v2/ipfs/"+multi.CID+"/blobs/"+layer, map[string]string{"Range": "bytes=262000-600000"})
		if body := serveBody(t, resp); resp.StatusCode != 206 || !bytes.Equal(body, layerBytes[262000:600001]) {
			t.Errorf("Range through serve --gateway: %d, %d bytes", resp.StatusCode, len(body))
		}
		if code := p.stop(t); code != 0 {
			t.Errorf("serve exit %d", code)
		}
		if !strings.Contains(p.stderr(), "store=\"trustless gateway "+gw+"\"") {
			t.Errorf("serve does not say it reads from %s:\n%s", gw, p.stderr())
		}
	})

	t.Run("liar", func(t *testing.T) {
		liar, lies := lyingGateway(t, gw)
		res := mustRun(t, consumer, "pull", "--gateway", liar, "--gateway", gw, stargz.CID, "oci:"+filepath.Join(t.TempDir(), "out"))
		if lies.Load() == 0 {
			t.Fatal("the liar told no lie")
		}
		if !strings.Contains(res.stderr, liar) || !strings.Contains(res.stderr, "bad content") {
			t.Errorf("the log does not name the liar %s:\n%s", liar, res.stderr)
		}
		alone := mirrorRun(t, consumer, "pull", "--gateway", liar, stargz.CID, "oci:"+filepath.Join(t.TempDir(), "out"))
		if alone.code != ExitIntegrity || !strings.Contains(alone.stderr, liar) {
			t.Errorf("the liar alone: exit %d (want %d)\n%s", alone.code, ExitIntegrity, alone.stderr)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if res := mirrorRun(t, append(consumer[:len(consumer):len(consumer)], "IPFS_API="+r.k.APIAddr), "pull", "--gateway", gw, multi.CID, "oci:"+filepath.Join(t.TempDir(), "x")); res.code != ExitUsage {
			t.Errorf("--gateway with IPFS_API: exit %d (want %d)\n%s", res.code, ExitUsage, res.stderr)
		}
		if res := mirrorRun(t, withGW, "verify", "--pin", lockPath); res.code != ExitUsage {
			t.Errorf("verify --pin --gateway: exit %d (want %d)\n%s", res.code, ExitUsage, res.stderr)
		}
		if res := mirrorRun(t, consumer, "inspect", "--gateway", "http://127.0.0.1:1", multi.CID); res.code != ExitIPFS {
			t.Errorf("unreachable gateway: exit %d (want %d)\n%s", res.code, ExitIPFS, res.stderr)
		}
		if res := mirrorRun(t, consumer, "inspect", "--gateway", "ftp://x", multi.CID); res.code != ExitUsage {
			t.Errorf("bad gateway URL: exit %d (want %d)\n%s", res.code, ExitUsage, res.stderr)
		}
	})

	t.Run("verify", func(t *testing.T) {
		res := mustRun(t, withGW, "verify", lockPath)
		if n := strings.Count("\n"+res.stdout, "\nok "); n != 3 {
			t.Errorf("verify --gateway: %d ok lines:\n%s", n, res.stdout)
		}
		var rep struct {
			OK, Failed int
		}
		if err := json.Unmarshal([]byte(mustRun(t, withGW, "--json", "verify", lockPath).stdout), &rep); err != nil || rep.OK != 3 || rep.Failed != 0 {
			t.Errorf("verify --json: %+v %v", rep, err)
		}

		// The node drops the multi-platform image: the gateway cannot
		// give it whole any more.
		r.k.Run("pin", "rm", multi.Pin)
		r.k.Run("repo", "gc")
		res = mirrorRun(t, withGW, "verify", lockPath)
		if res.code != ExitPartial {
			t.Fatalf("verify after repo gc: exit %d (want %d)\n%s\n%s", res.code, ExitPartial, res.stdout, res.stderr)
		}
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		var failed, ok int
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "FAILED") && strings.Contains(l, multi.CID):
				failed++
			case strings.HasPrefix(l, "ok "):
				ok++
			}
		}
		if failed != 1 || ok != 2 {
			t.Errorf("verify after repo gc: %d failed, %d ok:\n%s", failed, ok, res.stdout)
		}
		if !strings.Contains(res.stdout, gw) {
			t.Errorf("the failure does not name the gateway:\n%s", res.stdout)
		}
	})
}

func pullGW(t *testing.T, env []string, root string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, env, "pull", root, "oci:"+out)
	return out
}

// lyingGateway is a gateway in front of target that changes a byte in the
// middle of every raw block it sends (the CID it answers for unchanged).
func lyingGateway(t *testing.T, target string) (string, *atomic.Int32) {
	lies := &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), nil)
		req.Header.Set("Accept", r.Header.Get("Accept"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && r.URL.Query().Get("format") == "raw" && len(body) > 0 {
			body[len(body)/2] ^= 0x20
			lies.Add(1)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, lies
}
