package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestE2EServePortNames: a lockfile entry from a registry with a port
// (127.0.0.1:PORT/test/hello:1.0) is served as 127.0.0.1_PORT/test/hello,
// a name crane and skopeo accept; _catalog lists it; the colon form, which
// no docker-style client can write, stays for containerd's ?ns=.
func TestE2EServePortNames(t *testing.T) {
	r := newRig(t)
	skopeoBin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	crane := craneBin(t)
	idx := rig.MultiPlatform(t, 700, 300<<10)
	rig.Push(t, r.reg.Host+"/test/hello:1.0", idx)
	want := rig.SourceBlobs(t, idx)

	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/test/hello\n    tags: [\"1.0\"]\n", r.reg.Host))
	mustRun(t, r.env, "sync", list)
	p := startServe(t, r.env, "--strip-urls", "--lock", filepath.Join(dir, "mirrors.lock"))

	folded := strings.Replace(r.reg.Host, ":", "_", 1) + "/test/hello"
	var cat struct{ Repositories []string }
	if err := json.Unmarshal(serveBody(t, serveReq(t, "GET", "http://"+p.host+"/v2/_catalog", nil)), &cat); err != nil || !slices.Contains(cat.Repositories, folded) || !slices.Contains(cat.Repositories, r.reg.Host+"/test/hello") {
		t.Errorf("_catalog %v (%v): want %s and the colon form", cat.Repositories, err, folded)
	}

	// The colon form is not a reference (what users hit before).
	if out, err := exec.Command(crane, "manifest", p.host+"/"+r.reg.Host+"/test/hello:1.0").CombinedOutput(); err == nil {
		t.Errorf("crane accepted %s/%s/test/hello:1.0: %s", p.host, r.reg.Host, out)
	}

	ref := p.host + "/" + folded + ":1.0"
	out := filepath.Join(t.TempDir(), "crane")
	runTool(t, crane, "pull", "--format=oci", ref, out)
	sameBlobs(t, "crane pull "+ref, want, rig.LayoutBlobs(t, out))

	out = filepath.Join(t.TempDir(), "skopeo")
	runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+ref, "oci:"+out+":latest")
	sameBlobs(t, "skopeo copy "+ref, want, rig.LayoutBlobs(t, out))

	// tags/list by the folded name; containerd's form still answers.
	if body := serveBody(t, serveReq(t, "GET", "http://"+p.host+"/v2/"+folded+"/tags/list", nil)); !strings.Contains(string(body), `"1.0"`) {
		t.Errorf("tags/list: %s", body)
	}
	if resp := serveReq(t, "GET", "http://"+p.host+"/v2/test/hello/manifests/1.0?ns="+r.reg.Host, nil); resp.StatusCode != 200 {
		t.Errorf("?ns=%s: %d", r.reg.Host, resp.StatusCode)
	}
}

// TestE2EServeForeignLayerWarning: skopeo copying the URL view
// (ipfs/<CID>) to oci: exits 0 without the layers, and `mirror serve` logs
// a warning naming the url-free address; from that address skopeo gets
// every layer.
func TestE2EServeForeignLayerWarning(t *testing.T) {
	r := newRig(t)
	skopeoBin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	idx := rig.MultiPlatform(t, 710, 200<<10)
	src := r.reg.Host + "/test/foreign:1.0"
	rig.Push(t, src, idx)
	root := mustRun(t, r.env, "push", src).lastLine()
	p := startServe(t, r.env)
	const warning = "a containers/image client"

	out := filepath.Join(t.TempDir(), "nourls")
	runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p.host+"/ipfs-nourls/"+root, "oci:"+out+":latest")
	sameBlobs(t, "skopeo ipfs-nourls/<CID>", rig.SourceBlobs(t, idx), rig.LayoutBlobs(t, out))
	if strings.Contains(p.stderr(), warning) {
		t.Errorf("warned for the url-free view:\n%s", p.stderr())
	}

	out = filepath.Join(t.TempDir(), "urls")
	runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p.host+"/ipfs/"+root, "oci:"+out+":latest")
	got := rig.LayoutBlobs(t, out)
	if len(got) >= len(rig.SourceBlobs(t, idx)) {
		t.Errorf("skopeo copied all %d blobs of the URL view: the warning and docs/serve.md's caveat are out of date", len(got))
	}
	if log := p.stderr(); !strings.Contains(log, warning) || !strings.Contains(log, "ipfs-nourls/"+root) {
		t.Errorf("no foreign-layer warning in serve's log:\n%s", log)
	}
}
