package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// verifyJSON is the --json report of mirror verify, read by the test's own
// struct.
type verifyJSON struct {
	OK, Failed, Blobs int
	Bytes             int64
	Mismatches        int `json:"digestMismatches"`
	Pinned            int `json:"pinsAdded"`
	Entries           []struct {
		Source, Mode, CID, Status, Problem, Error string
		Blobs, Manifests                          int
		Pinned                                    int `json:"pinsAdded"`
	}
}

func parseVerify(t *testing.T, r result) verifyJSON {
	t.Helper()
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return v
}

// TestE2EPublishVerify: A syncs and publishes the lockfile; B, a second
// node in the same private swarm, reads the lockfile by CID, verifies every
// image byte for byte and pins them; verify catches an edited CID, a CID
// that is not an image, a digest mismatch (exit 5), and a block lost with
// nobody left to provide it.
func TestE2EPublishVerify(t *testing.T) {
	aOpts := rig.KuboOptions{Online: true, SwarmKey: swarmKey()}
	a := rig.StartKubo(t, aOpts)
	// IPNS needs a router: the DHT (of this two-node private swarm), not
	// testrig's "none".
	a.Run("config", "Routing.Type", "dht")
	a.Restart(aOpts)
	b := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: swarmKey()})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	multi := rig.MultiPlatform(t, 1300, 400<<10)
	single := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1350, 600<<10, false)}})
	rig.Push(t, reg.Host+"/pub/multi:1.0", multi)
	rig.Push(t, reg.Host+"/pub/single:1.0", single)
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/pub/multi\n    tags: [\"1.0\"]\n  - source: %s/pub/single\n    tags: [\"1.0\"]\n", reg.Host, reg.Host))
	lockPath := filepath.Join(dir, "mirrors.lock")
	envA := []string{"IPFS_API=" + a.APIAddr}
	envB := []string{"IPFS_API=" + b.APIAddr}
	mustRun(t, envA, "sync", list)
	lockBytes := readFile(t, lockPath)
	lock := readLock(t, lockPath)

	// publish: the lockfile alone is the file's CID; with the list, a
	// directory that `ipfs add -r --cid-version=1` of the same files gives.
	alone := mustRun(t, envA, "publish", lockPath).lastLine()
	if want := a.AddOnlyHash([]byte(lockBytes)); alone != want {
		t.Errorf("publish of the lockfile alone: %s, ipfs add says %s", alone, want)
	}
	res := mustRun(t, envA, "--json", "publish", "--with-list", list, lockPath)
	var pub struct {
		CID       string
		Directory bool
		Files     []struct{ Name, CID string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &pub); err != nil || !pub.Directory || len(pub.Files) != 2 {
		t.Fatalf("publish --json: %v %s", err, res.stdout)
	}
	if want := strings.TrimSpace(a.Run("add", "-r", "-Q", "--only-hash", "--cid-version=1", dir)); pub.CID != want {
		t.Errorf("published directory %s, ipfs add -r --cid-version=1 of %s says %s", pub.CID, dir, want)
	}
	// A list over 256 KiB (a file of several blocks: the directory link
	// records its cumulative size) still gives ipfs add -r's CID.
	bigDir := t.TempDir()
	bigList := writeList(t, bigDir, readFile(t, list)+strings.Repeat("# a long comment line to make the list big\n", 8000))
	writeListAs(t, bigDir, "mirrors.lock", lockBytes)
	bigCID := mustRun(t, envA, "publish", "--with-list", bigList, filepath.Join(bigDir, "mirrors.lock")).lastLine()
	if want := strings.TrimSpace(a.Run("add", "-r", "-Q", "--only-hash", "--cid-version=1", bigDir)); bigCID != want {
		t.Errorf("published directory with a %d-byte list: %s, ipfs add -r says %s", len(readFile(t, bigList)), bigCID, want)
	}
	if pins := a.Run("pin", "ls", "--type=recursive", pub.CID); !strings.Contains(pins, pub.CID) {
		t.Errorf("directory not pinned: %s", pins)
	}
	a.Run("key", "gen", "lockfile")
	res = mustRun(t, envA, "publish", "--with-list", list, "--ipns-key", "lockfile", lockPath)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || lines[0] != pub.CID || !strings.HasPrefix(lines[1], "/ipns/k51") {
		t.Fatalf("publish --ipns-key stdout: %q", res.stdout)
	}
	if got := strings.TrimSpace(a.Run("name", "resolve", lines[1])); got != "/ipfs/"+pub.CID {
		t.Errorf("%s resolves to %s", lines[1], got)
	}
	if r := mirrorRun(t, envA, "publish", "--ipns-key", "nokey", lockPath); r.code != ExitUsage || !strings.Contains(r.stderr, "ipfs key gen nokey") {
		t.Errorf("unknown IPNS key: exit %d: %s", r.code, r.stderr)
	}
	bad := writeListAs(t, t.TempDir(), "mirrors.lock", "version: 1\nimages:\n  - source: x\n")
	if r := mirrorRun(t, envA, "publish", bad); r.code != ExitUsage {
		t.Errorf("publishing an invalid lockfile: exit %d: %s", r.code, r.stderr)
	}

	// B joins A's private swarm (address from `ipfs id`) and fetches the
	// lockfile by CID.
	b.Run("swarm", "connect", swarmAddr(t, a))
	fetched := filepath.Join(t.TempDir(), "mirrors.lock")
	if err := os.WriteFile(fetched, []byte(b.Run("cat", "/ipfs/"+pub.CID+"/mirrors.lock")), 0o644); err != nil {
		t.Fatal(err)
	}
	if readFile(t, fetched) != lockBytes {
		t.Fatal("B read another lockfile")
	}

	// verify from B: every blob streamed from A and checked.
	v := parseVerify(t, mustRun(t, envB, "--json", "verify", fetched))
	// Configs and layers: those of the sources, byte for byte (the
	// documents are rewritten with ipfs:// URLs and counted apart).
	wantBlobs, wantBytes := 0, int64(0)
	for _, node := range []any{multi, single} {
		for _, b := range rig.SourceBlobs(t, node) {
			wantBlobs++
			wantBytes += int64(len(b))
		}
	}
	if v.OK != 2 || v.Failed != 0 || v.Pinned != 0 {
		t.Fatalf("verify from B: %+v", v)
	}
	if v.Blobs != wantBlobs || v.Bytes != wantBytes || v.Entries[0].Manifests != 4 || v.Entries[1].Manifests != 1 {
		t.Errorf("verify read %d blobs (%d bytes), manifests %d+%d; the sources have %d blobs (%d bytes), 1 index + 3 manifests, 1 manifest",
			v.Blobs, v.Bytes, v.Entries[0].Manifests, v.Entries[1].Manifests, wantBlobs, wantBytes)
	}
	text := mustRun(t, envB, "verify", fetched)
	if !strings.Contains(text.stdout, "verify: 2 ok, 0 failed") || !strings.Contains(text.stdout, "ok      "+reg.Host+"/pub/single:1.0 (plain) ipfs://") {
		t.Errorf("verify text:\n%s", text.stdout)
	}

	// --pin keeps them on B; a second --pin has nothing to add.
	v = parseVerify(t, mustRun(t, envB, "--json", "verify", "--pin", fetched))
	if v.OK != 2 || v.Pinned == 0 {
		t.Fatalf("verify --pin: %+v", v)
	}
	t.Logf("verify --pin on B: %d entries ok, %d pins added", v.OK, v.Pinned)
	pinned := b.Run("pin", "ls", "--type=recursive")
	for _, e := range lock.Images {
		if !strings.Contains(pinned, e.CID) {
			t.Errorf("%s: root %s not pinned on B", e.Source, e.CID)
		}
	}
	if v = parseVerify(t, mustRun(t, envB, "--json", "verify", "--pin", fetched)); v.Pinned != 0 {
		t.Errorf("second verify --pin added %d pins", v.Pinned)
	}

	// An edited lockfile: one CID replaced by one nobody has.
	never := b.AddOnlyHash(rig.RandomBytes(4242, 5000))
	edited := editLock(t, lockBytes, lock.Images[1].CID, never)
	r := mirrorRun(t, envB, "verify", "--entry-timeout", "5s", "--github-annotations", edited)
	if r.code != ExitPartial {
		t.Fatalf("edited CID: exit %d (want %d)\n%s\n%s", r.code, ExitPartial, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "FAILED  "+lock.Images[1].Source+" (plain) ipfs://"+never+": not-found") || !strings.Contains(r.stdout, "ok      "+lock.Images[0].Source) || !strings.Contains(r.stdout, "verify: 1 ok, 1 failed") {
		t.Errorf("edited CID report:\n%s", r.stdout)
	}
	line := lockLine(t, lockBytes, lock.Images[1].Source)
	ann := regexp.MustCompile(`(?m)^::error file=[^,]*mirrors\.lock,line=` + fmt.Sprint(line) + `,title=mirror verify%3A .*not-found::`)
	if !ann.MatchString(r.stderr) {
		t.Errorf("no annotation at mirrors.lock:%d:\n%s", line, r.stderr)
	}

	// A CID that names something else than an image.
	listCID := pub.Files[1].CID
	r = mirrorRun(t, envB, "--json", "verify", editLock(t, lockBytes, lock.Images[0].CID, listCID))
	v = parseVerify(t, r)
	if r.code != ExitPartial || v.Failed != 1 || v.Entries[0].Problem != "not-an-image" {
		t.Errorf("not an image: exit %d %+v", r.code, v)
	}

	// A digest mismatch, and only that: exit 5. The root descriptor of the
	// single image, with another digest for its manifest.
	var top desc
	_ = json.Unmarshal([]byte(b.Run("cat", lock.Images[1].CID)), &top)
	forged, _ := json.Marshal(map[string]any{"mediaType": top.MediaType, "digest": fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("forged"))), "size": top.Size, "urls": top.URLs})
	forgedCID := addBytes(t, b, forged)
	r = mirrorRun(t, envB, "--json", "verify", editLock(t, lockBytes, lock.Images[1].CID, forgedCID))
	v = parseVerify(t, r)
	if r.code != ExitIntegrity || v.Mismatches != 1 || v.OK != 1 || !strings.Contains(v.Entries[1].Error, "digest mismatch") {
		t.Errorf("digest mismatch: exit %d (want %d) %+v\n%s", r.code, ExitIntegrity, v, r.stderr)
	}

	// A lost block: B drops a layer of the single image. While A is up,
	// verify --pin fetches it again and pins it.
	var layer string
	for _, c := range treeCIDs(t, b, lock.Images[1].CID) {
		if c.mediaType == "application/vnd.oci.image.layer.v1.tar+gzip" {
			layer = c.cid
		}
	}
	if layer == "" {
		t.Fatal("no layer found")
	}
	// Its pin handle (when sync built one) links the layer too: unpin both.
	unpin := []string{layer}
	if h := lock.Images[1].Pin; h != "" {
		unpin = append(unpin, h)
	}
	dropBlock := func() {
		b.Run(append([]string{"pin", "rm"}, unpin...)...)
		b.Run("repo", "gc")
		if _, err := b.RunErr(nil, "block", "stat", "--offline", layer); err == nil {
			t.Fatalf("%s still on B after pin rm + repo gc", layer)
		}
	}
	dropBlock()
	v = parseVerify(t, mustRun(t, envB, "--json", "verify", "--pin", fetched))
	if v.OK != 2 || v.Pinned != len(unpin) {
		t.Errorf("repair with A up: %+v (want 2 ok, %d pins added)", v, len(unpin))
	}
	// With A gone, nobody has it: verify names the image and the CID.
	a.Stop()
	dropBlock()
	r = mirrorRun(t, envB, "verify", "--entry-timeout", "5s", fetched)
	if r.code != ExitPartial || !strings.Contains(r.stdout, "FAILED  "+lock.Images[1].Source+" (plain)") || !strings.Contains(r.stdout, layer) || !strings.Contains(r.stdout, "ok      "+lock.Images[0].Source) {
		t.Errorf("lost block: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("lost block %s: %s", layer, strings.TrimSpace(r.stdout))

	// Bad input.
	if r := mirrorRun(t, envB, "verify", filepath.Join(t.TempDir(), "none.lock")); r.code != ExitUsage {
		t.Errorf("missing lockfile: exit %d", r.code)
	}
	if r := mirrorRun(t, envB, "verify", bad); r.code != ExitUsage {
		t.Errorf("invalid lockfile: exit %d", r.code)
	}
}

// editLock writes a copy of a lockfile with one CID replaced.
func editLock(t *testing.T, lock, old, new string) string {
	t.Helper()
	if !strings.Contains(lock, old) {
		t.Fatalf("%s not in the lockfile", old)
	}
	p := filepath.Join(t.TempDir(), "mirrors.lock")
	if err := os.WriteFile(p, []byte(strings.Replace(lock, old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockLine is the line of an entry's "- source:" in a lockfile.
func lockLine(t *testing.T, lock, source string) int {
	t.Helper()
	for i, l := range strings.Split(lock, "\n") {
		if strings.TrimSpace(l) == "- source: "+source {
			return i + 1
		}
	}
	t.Fatalf("%s not in the lockfile", source)
	return 0
}

type treeCID struct{ cid, mediaType string }

// treeCIDs lists the CIDs of an image's tree with the ipfs CLI alone.
func treeCIDs(t *testing.T, k *rig.Kubo, root string) []treeCID {
	t.Helper()
	var out []treeCID
	var visit func(c string)
	visit = func(c string) {
		var doc struct {
			MediaType string `json:"mediaType"`
			URLs      []string
			Manifests []desc
			Config    *desc
			Layers    []desc
		}
		_ = json.Unmarshal([]byte(k.Run("cat", c)), &doc)
		kids := append([]desc(nil), doc.Manifests...)
		if doc.Config != nil {
			kids = append(kids, *doc.Config)
		}
		kids = append(kids, doc.Layers...)
		if len(doc.URLs) == 1 { // the root descriptor
			kids = append(kids, desc{MediaType: doc.MediaType, URLs: doc.URLs})
		}
		for _, d := range kids {
			kc := strings.TrimPrefix(d.URLs[0], "ipfs://")
			out = append(out, treeCID{kc, d.MediaType})
			if strings.Contains(d.MediaType, "manifest") || strings.Contains(d.MediaType, "index") {
				visit(kc)
			}
		}
	}
	visit(root)
	return out
}

// TestE2EPublishEmbeddedIPNS: with no daemon, publish --ipns-key publishes
// through the embedded node, with a key of its repo's keystore: the record
// stays in the repo (the ipfs CLI resolves it there), an unknown key is a
// usage error naming `ipfs key gen`. serve --allow-ipns on the embedded
// node resolves names through it.
func TestE2EPublishEmbeddedIPNS(t *testing.T) {
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	rig.Push(t, reg.Host+"/pub/embedded:1.0", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1400, 300<<10, false)}}))
	dir := t.TempDir()
	list := writeList(t, dir, "version: 1\nimages:\n  - source: "+reg.Host+"/pub/embedded\n    tags: [\"1.0\"]\n")
	lockPath := filepath.Join(dir, "mirrors.lock")
	repo := filepath.Join(t.TempDir(), "ipfs")
	env := []string{"IPFS_PATH=" + repo}
	mustRun(t, env, "sync", list)
	lock := readLock(t, lockPath)

	ipfsCLI := func(args ...string) string { t.Helper(); return rig.IPFS(t, repo, args...) }
	ipfsCLI("key", "gen", "lockfile")
	res := mustRun(t, env, "publish", "--with-list", list, "--ipns-key", "lockfile", lockPath)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "/ipns/k51") {
		t.Fatalf("publish --ipns-key on the embedded node: stdout %q\nstderr: %s", res.stdout, res.stderr)
	}
	if got := ipfsCLI("name", "resolve", "--offline", lines[1]); got != "/ipfs/"+lines[0] {
		t.Errorf("%s resolves to %s in the repo, want /ipfs/%s", lines[1], got, lines[0])
	}
	if r := mirrorRun(t, env, "publish", "--ipns-key", "nokey", lockPath); r.code != ExitUsage || !strings.Contains(r.stderr, "ipfs key gen nokey") {
		t.Errorf("unknown IPNS key on the embedded node: exit %d: %s", r.code, r.stderr)
	}

	// serve holds the repo and serves its API: the ipfs CLI publishes an
	// image's root through it; serve resolves the name with the node.
	srv := startServe(t, env, "--allow-ipns")
	ipfsCLI("key", "gen", "image")
	name := ipfsCLI("name", "publish", "--allow-offline", "--key=image", "--quieter", "/ipfs/"+lock.Images[0].CID)
	resp := serveReq(t, "GET", "http://"+srv.host+"/v2/ipns/"+name+"/manifests/latest", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("serve on the embedded node: GET ipns/%s: %d\n%s", name, resp.StatusCode, srv.stderr())
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
}
