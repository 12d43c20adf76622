package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// multihashes turns CIDs (one per line or field) into the set of their
// multihashes: `ipfs refs local` names every block as a raw CIDv1,
// whatever codec it was added with.
func multihashes(t *testing.T, out string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, f := range strings.Fields(out) {
		c, err := cid.Decode(f)
		if err != nil {
			t.Fatalf("%q: %v", f, err)
		}
		set[string(c.Hash())] = true
	}
	return set
}

// dagBlocks is every block of the DAG under c, c included, by multihash.
func dagBlocks(t *testing.T, k *rig.Kubo, c string) map[string]bool {
	t.Helper()
	return multihashes(t, c+"\n"+k.Run("refs", "-r", "--unique", c))
}

// Issue 18, pruning: two images share a base layer; one leaves the list;
// `mirror sync --prune` unpins what only it pinned, and after `ipfs repo
// gc` its own blocks are gone from the node while the shared layer and
// the remaining image stay (it still pulls, skopeo reads it). A dry run
// unpins nothing; a sync without --prune unpins nothing (as before); the
// no-op sync after the prune makes no add and no GET and leaves the
// lockfile byte for byte.
func TestE2ESyncPrune(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	var regCount, ipfsCount rig.Counter
	reg := rig.StartRegistry(t, rig.RegistryOptions{Wrap: regCount.Counting})
	env := []string{"IPFS_API=" + rig.KuboProxy(t, k, &ipfsCount, nil)}

	base := rig.Layer(t, 1801, 600<<10, false) // three chunks: a dag-pb file
	keep := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{base, rig.Layer(t, 1802, 400<<10, false)}})
	gone := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{base, rig.Layer(t, 1803, 400<<10, false), rig.Layer(t, 1804, 3000, false)}})
	rig.Push(t, reg.Host+"/keep:1.0", keep)
	rig.Push(t, reg.Host+"/gone:1.0", gone)

	dir := t.TempDir()
	lockPath := filepath.Join(dir, "mirrors.lock")
	both := writeList(t, dir, "version: 1\nimages:\n  - source: "+reg.Host+"/keep:1.0\n  - source: "+reg.Host+"/gone:1.0\n")
	mustRun(t, env, "sync", both)
	lock := readLock(t, lockPath)
	keepE, ok1 := lock.Lookup(reg.Host+"/keep:1.0", "plain")
	goneE, ok2 := lock.Lookup(reg.Host+"/gone:1.0", "plain")
	if !ok1 || !ok2 || keepE.Pin == "" || goneE.Pin == "" {
		t.Fatalf("lockfile %+v", lock.Images)
	}
	keepBlocks, goneBlocks := dagBlocks(t, k, keepE.Pin), dagBlocks(t, k, goneE.Pin)
	onlyGone, shared := map[string]bool{}, 0
	for h := range goneBlocks {
		if keepBlocks[h] {
			shared++
		} else {
			onlyGone[h] = true
		}
	}
	var baseCID string
	for d, b := range checkTree(t, k, keepE.CID) {
		if d == layerDigest(t, base) {
			baseCID = k.AddOnlyHash(b)
		}
	}
	if baseCID == "" || !goneBlocks[string(mustCID(t, baseCID).Hash())] {
		t.Fatalf("the base layer (%s) is not in both images", baseCID)
	}
	// The base layer's root and 3 leaves, and the handles' oci-layout file.
	if shared != 5 {
		t.Errorf("the two images share %d blocks, want 5", shared)
	}
	// A gc first: what the adds left unpinned goes (kubo's add leaves a
	// directory block behind per file), nothing of either image.
	k.Run("repo", "gc")
	localBefore := multihashes(t, k.Run("refs", "local"))
	for h := range goneBlocks {
		if !localBefore[h] {
			t.Fatalf("block %x of gone collected before any prune", h)
		}
	}
	pins := func() string {
		ps := strings.Fields(k.Run("pin", "ls", "--type=recursive", "-q"))
		sort.Strings(ps)
		return strings.Join(ps, " ")
	}
	pinsBefore := pins()
	t.Logf("after the first sync: %d blocks on the node, %d recursive pins; keep %d blocks, gone %d (%d its own, %d shared)",
		len(localBefore), len(strings.Fields(pinsBefore)), len(keepBlocks), len(goneBlocks), len(onlyGone), shared)

	short := writeListAs(t, dir, "short.yaml", "version: 1\nimages:\n  - source: "+reg.Host+"/keep:1.0\n")
	lockBytes, _ := os.ReadFile(lockPath)

	// Without --prune: the entry leaves the lockfile and stays pinned.
	other := filepath.Join(dir, "other.lock")
	if err := os.WriteFile(other, lockBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	ipfsCount.Reset()
	res := mustRun(t, env, "sync", "--lock", other, short)
	if !strings.Contains(res.stderr, "removed   "+reg.Host+"/gone:1.0 (plain)\n") || strings.Contains(res.stderr, "unpin") ||
		ipfsCount.Get("POST /api/v0/pin/rm") != 0 || len(readLock(t, other).Images) != 1 {
		t.Errorf("without --prune: %d pin/rm\n%s", ipfsCount.Get("POST /api/v0/pin/rm"), res.stderr)
	}
	if got := pins(); got != pinsBefore {
		t.Errorf("a sync without --prune changed the pins")
	}

	// --dry-run --prune: the plan, nothing unpinned, nothing written.
	ipfsCount.Reset()
	res = mustRun(t, env, "sync", "--dry-run", "--prune", short)
	if !strings.Contains(res.stderr, "removed   "+reg.Host+"/gone:1.0 (plain): would unpin ") || !strings.Contains(res.stderr, "  would unpin "+goneE.Pin+"\n") ||
		!strings.Contains(res.stderr, "prune: would unpin ") || !strings.Contains(res.stderr, "dry run: nothing unpinned") {
		t.Errorf("dry run output:\n%s", res.stderr)
	}
	if n := ipfsCount.Get("POST /api/v0/pin/rm"); n != 0 {
		t.Errorf("a dry run made %d pin/rm calls", n)
	}
	if got := pins(); got != pinsBefore {
		t.Errorf("a dry run changed the pins")
	}
	if b, _ := os.ReadFile(lockPath); !bytes.Equal(b, lockBytes) {
		t.Errorf("a dry run wrote the lockfile")
	}

	// --prune.
	summary := filepath.Join(dir, "summary.md")
	ipfsCount.Reset()
	res = mustRun(t, env, "--json", "sync", "--prune", "--summary", summary, short)
	var rep struct {
		Images []struct {
			Source, Status string
			Unpinned       []string
			PinsKept       int
		}
		Prune *struct {
			Unpinned []string
			Kept     int
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, res.stdout)
	}
	if rep.Prune == nil || len(rep.Prune.Unpinned) == 0 {
		t.Fatalf("report: %s", res.stdout)
	}
	unpinned := multihashes(t, strings.Join(rep.Prune.Unpinned, " "))
	for h := range unpinned {
		if !onlyGone[h] {
			t.Errorf("unpinned %x, which is not the removed image's own", h)
		}
	}
	for _, c := range []string{goneE.CID, goneE.Pin} {
		if !unpinned[string(mustCID(t, c).Hash())] {
			t.Errorf("%s not unpinned", c)
		}
	}
	if rep.Prune.Kept != 2 { // the base layer's file and the oci-layout file had their own pins
		t.Errorf("kept %d pins, want 2", rep.Prune.Kept)
	}
	if n := ipfsCount.Get("POST /api/v0/pin/rm"); n != len(rep.Prune.Unpinned) {
		t.Errorf("%d pin/rm calls for %d CIDs", n, len(rep.Prune.Unpinned))
	}
	for _, im := range rep.Images {
		if im.Source == reg.Host+"/gone:1.0" && (im.Status != "removed" || len(im.Unpinned) != len(rep.Prune.Unpinned) || im.PinsKept != 2) {
			t.Errorf("gone's report %+v", im)
		}
	}
	if md, _ := os.ReadFile(summary); !strings.Contains(string(md), "Prune: "+strconv.Itoa(len(rep.Prune.Unpinned))+" CIDs unpinned, 2 kept") || !strings.Contains(string(md), "- `"+goneE.Pin+"`") {
		t.Errorf("summary:\n%s", md)
	}
	if l := readLock(t, lockPath); len(l.Images) != 1 || l.Images[0].Source != reg.Host+"/keep:1.0" {
		t.Errorf("lockfile %+v", l.Images)
	}

	// ipfs repo gc: the removed image's own blocks go, the rest stays.
	k.Run("repo", "gc")
	localAfter := multihashes(t, k.Run("refs", "local"))
	for h := range onlyGone {
		if localAfter[h] {
			t.Errorf("block %x of the removed image survived gc", h)
		}
	}
	for h := range keepBlocks {
		if !localAfter[h] {
			t.Errorf("block %x of the remaining image was collected", h)
		}
	}
	if n := len(localBefore) - len(localAfter); n != len(onlyGone) {
		t.Errorf("gc collected %d blocks; the removed image had %d of its own", n, len(onlyGone))
	}
	if _, err := k.RunErr(nil, "block", "stat", "--offline", goneE.Pin); err == nil {
		t.Errorf("ipfs block stat --offline %s: the removed handle is still there", goneE.Pin)
	}
	k.Run("block", "stat", "--offline", baseCID)
	t.Logf("prune: %d CIDs unpinned, %d kept; blocks on the node %d before gc, %d after (%d collected; the removed image had %d of its own)",
		len(rep.Prune.Unpinned), rep.Prune.Kept, len(localBefore), len(localAfter), len(localBefore)-len(localAfter), len(onlyGone))

	// The remaining entry still pulls.
	out := filepath.Join(t.TempDir(), "oci")
	mustRun(t, env, "pull", keepE.CID, "oci:"+out)
	rig.SkopeoReads(t, "oci:"+out)
	sameBlobs(t, "pull keep", rig.SourceBlobs(t, keep), rig.LayoutBlobs(t, out))

	// A no-op sync, pruning by the list's prune: true: no add, no GET, no
	// unpin, the lockfile as it was.
	pruning := writeListAs(t, dir, "pruning.yaml", "version: 1\nprune: true\nimages:\n  - source: "+reg.Host+"/keep:1.0\n")
	was, _ := os.ReadFile(lockPath)
	regCount.Reset()
	ipfsCount.Reset()
	res = mustRun(t, env, "sync", pruning)
	if now, _ := os.ReadFile(lockPath); !bytes.Equal(now, was) {
		t.Errorf("the no-op sync changed the lockfile:\n%s\n---\n%s", was, now)
	}
	got := regCount.Snapshot()
	if got["GET manifests"] != 0 || got["GET blobs"] != 0 || got["HEAD manifests"] != 1 || ipfsCount.Get("POST /api/v0/add") != 0 || ipfsCount.Get("POST /api/v0/pin/rm") != 0 {
		t.Errorf("no-op sync: registry %v, IPFS %v", got, ipfsCount.Snapshot())
	}
	if !strings.Contains(res.stderr, "1 unchanged") || !strings.Contains(res.stderr, "prune: unpinned 0 CIDs, 0 kept") {
		t.Errorf("no-op output:\n%s", res.stderr)
	}
	t.Logf("no-op sync with prune: true: registry %v, IPFS %v", got, ipfsCount.Snapshot())
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func layerDigest(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
