package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// The prune's tests: the planner on fakes (what each entry pins), and
// Sync in process over oci: layouts into a CAR store that keeps a pin set
// as a pinning node does (every Add and PutBlock pinned).

// fakePins answers Pins from a map keyed by "CID PIN"; errs makes an
// entry's answer incomplete (its listed CIDs still given).
type fakePins struct {
	mu    sync.Mutex
	pins  map[string][]string
	errs  map[string]error
	asked []string
}

func (f *fakePins) Pins(_ context.Context, e lockfile.Entry) ([]string, error) {
	k := e.CID + " " + e.Pin
	f.mu.Lock()
	f.asked = append(f.asked, k)
	f.mu.Unlock()
	return f.pins[k], f.errs[k]
}

func pinned(source, root, handle string) lockfile.Entry {
	e := entry(source, dA, root)
	e.Pin = handle
	return e
}

func TestPlanPrune(t *testing.T) {
	ctx := context.Background()
	// Two images sharing a base layer, each with its handle; the handles
	// share their oci-layout file.
	a := pinned("reg.example/a:1", "rootA", "handleA")
	b := pinned("reg.example/b:1", "rootB", "handleB")
	b2 := pinned("reg.example/b:latest", "rootB", "handleB") // the same image, another tag
	c := pinned("reg.example/c:1", "rootC", "handleC")
	pins := func() *fakePins {
		return &fakePins{pins: map[string][]string{
			"rootA handleA": {"rootA", "handleA", "blobsA", "indexA", "layout", "base", "layerA", "configA"},
			"rootB handleB": {"rootB", "handleB", "blobsB", "indexB", "layout", "base", "layerB", "configB", "layerB"},
			"rootC handleC": {"rootC", "handleC", "blobsC", "indexC", "layout", "base", "layerC", "configC"},
		}, errs: map[string]error{}}
	}

	t.Run("a shared layer and the handle's shared file stay", func(t *testing.T) {
		f := pins()
		plan, err := planPrune(ctx, []lockfile.Entry{b}, []lockfile.Entry{a}, f, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"blobsB", "configB", "handleB", "indexB", "layerB", "rootB"}
		if !slices.Equal(plan.Unpin, want) || !slices.Equal(plan.Entries[0].Unpin, want) {
			t.Errorf("unpin %v (entry %v), want %v", plan.Unpin, plan.Entries[0].Unpin, want)
		}
		if plan.Kept != 2 || plan.Entries[0].Kept != 2 || plan.Entries[0].Partial != nil {
			t.Errorf("kept %d (entry %+v), want base and layout", plan.Kept, plan.Entries[0])
		}
	})
	t.Run("the same image under a remaining tag stays whole", func(t *testing.T) {
		f := pins()
		plan, err := planPrune(ctx, []lockfile.Entry{b}, []lockfile.Entry{a, b2}, f, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Unpin) != 0 || plan.Entries[0].Kept != 8 {
			t.Errorf("unpin %v, kept %d: a root and handle another entry has must stay", plan.Unpin, plan.Entries[0].Kept)
		}
		sort.Strings(f.asked)
		if !slices.Equal(f.asked, []string{"rootA handleA", "rootB handleB"}) {
			t.Errorf("asked %v: each distinct root and handle once", f.asked)
		}
	})
	t.Run("two removed entries: what they share goes once", func(t *testing.T) {
		plan, err := planPrune(ctx, []lockfile.Entry{b, c}, []lockfile.Entry{a}, pins(), 1)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"blobsB", "blobsC", "configB", "configC", "handleB", "handleC", "indexB", "indexC", "layerB", "layerC", "rootB", "rootC"}
		if !slices.Equal(plan.Unpin, want) || plan.Kept != 2 || len(plan.Entries[1].Unpin) != 6 {
			t.Errorf("unpin %v, kept %d, c's %v", plan.Unpin, plan.Kept, plan.Entries[1].Unpin)
		}
	})
	t.Run("nothing left: everything goes", func(t *testing.T) {
		plan, err := planPrune(ctx, []lockfile.Entry{a, b}, nil, pins(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Unpin) != 14 || plan.Kept != 0 {
			t.Errorf("unpin %v, kept %d", plan.Unpin, plan.Kept)
		}
	})
	t.Run("nothing removed: nothing read", func(t *testing.T) {
		f := pins()
		plan, err := planPrune(ctx, nil, []lockfile.Entry{a, b, c}, f, 1)
		if err != nil || len(plan.Unpin) != 0 || len(f.asked) != 0 {
			t.Errorf("plan %+v, %v; asked %v", plan, err, f.asked)
		}
	})
	t.Run("a remaining entry that cannot be read: nothing planned", func(t *testing.T) {
		f := pins()
		f.pins["rootA handleA"] = []string{"rootA", "handleA"}
		f.errs["rootA handleA"] = errors.New("pin handle handleA: block not found")
		plan, err := planPrune(ctx, []lockfile.Entry{b}, []lockfile.Entry{a}, f, 1)
		if plan != nil || err == nil || !strings.Contains(err.Error(), "reg.example/a:1 (plain), still in the lockfile") || !strings.Contains(err.Error(), "block not found") {
			t.Errorf("plan %+v, error %v", plan, err)
		}
	})
	t.Run("a removed entry that cannot be read: what is known goes", func(t *testing.T) {
		f := pins()
		f.pins["rootB handleB"] = []string{"rootB", "handleB"}
		f.errs["rootB handleB"] = errors.New("pin handle handleB: block not found")
		plan, err := planPrune(ctx, []lockfile.Entry{b}, []lockfile.Entry{a}, f, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ep := plan.Entries[0]; !slices.Equal(ep.Unpin, []string{"handleB", "rootB"}) || ep.Partial == nil {
			t.Errorf("entry plan %+v", ep)
		}
	})
}

// pinStore is a CAR store with the pin set of a pinning node: every file
// Add and every block PutBlock writes is pinned (as kubo pins them,
// recursively); Unpin removes a pin, failing for the CIDs of fail.
type pinStore struct {
	*car.Store
	mu      sync.Mutex
	pins    map[string]bool
	fail    map[string]bool
	unpins  int
	written map[string]bool // every CID pinned since the last take
}

var _ ipfs.Unpinner = (*pinStore)(nil)

func newPinStore(t *testing.T) *pinStore {
	return &pinStore{Store: newCARStore(t), pins: map[string]bool{}, fail: map[string]bool{}, written: map[string]bool{}}
}

func (p *pinStore) pin(c cid.Cid) {
	p.mu.Lock()
	p.pins[c.String()], p.written[c.String()] = true, true
	p.mu.Unlock()
}

func (p *pinStore) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	c, err := p.Store.Add(ctx, r)
	if err == nil {
		p.pin(c)
	}
	return c, err
}

func (p *pinStore) PutBlock(ctx context.Context, codec uint64, data []byte) (cid.Cid, error) {
	c, err := p.Store.PutBlock(ctx, codec, data)
	if err == nil {
		p.pin(c)
	}
	return c, err
}

func (p *pinStore) Unpin(_ context.Context, c cid.Cid) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpins++
	if p.fail[c.String()] {
		return fmt.Errorf("ipfs pin rm %s: 500 Internal Server Error", c)
	}
	if !p.pins[c.String()] {
		return fmt.Errorf("ipfs pin rm %s: %w", c, ipfs.ErrNotPinned)
	}
	delete(p.pins, c.String())
	return nil
}

// take returns the CIDs pinned since the last take.
func (p *pinStore) take() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.written
	p.written = map[string]bool{}
	return w
}

func (p *pinStore) pinSet() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for c := range p.pins {
		out[c] = true
	}
	return out
}

// writeSharingLayout writes an OCI layout at dir with one image of two
// layers: base, and one of its own.
func writeSharingLayout(t *testing.T, dir string, base v1.Layer) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	own, err := random.Layer(3000, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, base, own)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func minus(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if !b[k] {
			out[k] = true
		}
	}
	return out
}

// storePins finds exactly what a write pinned: with a pin handle (by
// walking it) and without (from the tree).
func TestStorePinsIsWhatAWritePinned(t *testing.T) {
	for _, handle := range []bool{true, false} {
		t.Run(fmt.Sprintf("handle %v", handle), func(t *testing.T) {
			r := newLayoutRun(t)
			store := newPinStore(t)
			o := Options{}
			if handle {
				o.PinHandle = pinhandle.Builder(store)
			}
			r.sync(store, "  - source: oci:a\n", o)
			wrote := store.take()
			lock, _ := lockfile.Read(r.lock)
			e := lock.Images[0]
			if (e.Pin != "") != handle {
				t.Fatalf("entry %+v", e)
			}
			got, err := storePins{store}.Pins(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			if want := keys(wrote); !slices.Equal(got, want) {
				t.Errorf("Pins gives %d CIDs %v\nthe write pinned %d: %v", len(got), got, len(want), want)
			}
		})
	}
}

// Sync with Prune: the removed entry's pins go, except those the
// remaining entry shares (the base layer, the handle's oci-layout file);
// a dry run unpins nothing and reports the same; without prune nothing
// is unpinned (the behaviour before prune).
func TestSyncPrune(t *testing.T) {
	dir := t.TempDir()
	base, err := random.Layer(5000, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	writeSharingLayout(t, filepath.Join(dir, "a"), base)
	writeSharingLayout(t, filepath.Join(dir, "b"), base)
	r := &layoutRun{t: t, dir: dir, lock: filepath.Join(dir, "mirrors.lock")}
	store := newPinStore(t)
	o := Options{PinHandle: pinhandle.Builder(store)}
	both := "  - source: oci:a\n  - source: oci:b\n"

	r.sync(store, "  - source: oci:a\n", o)
	pinsA := store.take()
	r.sync(store, both, o)
	pinsB := store.take()
	if len(pinsB) == 0 {
		t.Fatal("b pinned nothing")
	}
	onlyB := minus(pinsB, pinsA)
	shared := len(pinsB) - len(onlyB)
	if shared != 2 { // the base layer and the handle's oci-layout file
		t.Fatalf("a and b share %d CIDs, want 2", shared)
	}
	before := store.pinSet()
	lockBefore := r.lockBytes()

	t.Run("dry run", func(t *testing.T) {
		po := o
		po.Prune, po.DryRun = true, true
		rep, got := r.sync(store, "  - source: oci:a\n", po)
		if got["oci:b"] != StatusRemoved || store.unpins != 0 || len(store.pinSet()) != len(before) {
			t.Fatalf("statuses %v, %d unpins", got, store.unpins)
		}
		if rep.Prune == nil || !slices.Equal(rep.Prune.Unpinned, keys(onlyB)) || rep.Prune.Kept != 2 {
			t.Errorf("prune report %+v, want %v and 2 kept", rep.Prune, keys(onlyB))
		}
		if !slices.Equal(r.lockBytes(), lockBefore) {
			t.Error("a dry run wrote the lockfile")
		}
	})
	t.Run("without prune", func(t *testing.T) {
		rep, got := r.sync(store, "  - source: oci:a\n", o)
		if got["oci:b"] != StatusRemoved || store.unpins != 0 || rep.Prune != nil {
			t.Fatalf("statuses %v, %d unpins, prune %+v", got, store.unpins, rep.Prune)
		}
		if err := os.WriteFile(r.lock, lockBefore, 0o644); err != nil { // b back in the lockfile
			t.Fatal(err)
		}
	})
	fail := keys(onlyB)[0]
	t.Run("an unpin that fails keeps the entry", func(t *testing.T) {
		store.fail[fail] = true
		po := o
		po.Prune = true
		rep, got := r.sync(store, "  - source: oci:a\n", po)
		if got["oci:b"] != StatusFailed || rep.Failed != 1 || !strings.Contains(fmt.Sprint(rep.Err()), "unpinning 1 of") {
			t.Fatalf("statuses %v, error %v", got, rep.Err())
		}
		if l, _ := lockfile.Read(r.lock); len(l.Images) != 2 {
			t.Errorf("lockfile has %d entries: b must stay for the next prune", len(l.Images))
		}
		delete(store.fail, fail)
	})
	t.Run("prune", func(t *testing.T) {
		po := o
		po.Prune = true
		store.unpins = 0
		rep, got := r.sync(store, "  - source: oci:a\n", po)
		if got["oci:a"] != StatusUnchanged || got["oci:b"] != StatusRemoved || rep.Failed != 0 {
			t.Fatalf("statuses %v: %v", got, rep.Err())
		}
		after := store.pinSet()
		if gone := minus(before, after); !slices.Equal(keys(gone), keys(onlyB)) {
			t.Errorf("unpinned %v, want b's own %v", keys(gone), keys(onlyB))
		}
		if lost := minus(pinsA, after); len(lost) != 0 {
			t.Errorf("a lost pins %v", keys(lost))
		}
		// The run that failed unpinned all but one: this one unpins it,
		// and finds the others no longer pinned.
		if rep.Prune == nil || !slices.Equal(rep.Prune.Unpinned, []string{fail}) || rep.Prune.NotPinned != len(onlyB)-1 || rep.Prune.Kept != 2 {
			t.Errorf("prune report %+v", rep.Prune)
		}
		var rb *ImageReport
		for _, im := range rep.Images {
			if im.Source == "oci:b" {
				rb = im
			}
		}
		if rb == nil || !slices.Equal(rb.Unpinned, []string{fail}) || rb.PinsKept != 2 {
			t.Errorf("b's report %+v", rb)
		}
		lock, _ := lockfile.Read(r.lock)
		if len(lock.Images) != 1 || lock.Images[0].Source != "oci:a" {
			t.Errorf("lockfile %+v", lock.Images)
		}
		// A no-op run after it: nothing unpinned, the lockfile as it was.
		was := r.lockBytes()
		store.unpins = 0
		rep, got = r.sync(store, "  - source: oci:a\n", po)
		if got["oci:a"] != StatusUnchanged || store.unpins != 0 || rep.LockChanged || !slices.Equal(r.lockBytes(), was) || len(rep.Prune.Unpinned) != 0 {
			t.Errorf("no-op run: %v, %d unpins, lock changed %v", got, store.unpins, rep.LockChanged)
		}
	})
}

// A store without pins (a CAR file) prunes nothing and says why; the
// entry is dropped as without prune.
func TestSyncPruneNoPins(t *testing.T) {
	r := newLayoutRun(t)
	store := newCARStore(t)
	r.sync(store, "  - source: oci:a\n  - source: oci:b\n", Options{})
	rep, got := r.sync(store, "  - source: oci:a\n", Options{Prune: true})
	if got["oci:b"] != StatusRemoved || rep.Prune == nil || !strings.Contains(rep.Prune.Skipped, "holds no pins") || len(rep.Prune.Unpinned) != 0 {
		t.Errorf("statuses %v, prune %+v", got, rep.Prune)
	}
}
