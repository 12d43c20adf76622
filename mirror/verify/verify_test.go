package verify_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// faultStore wraps a store: some CIDs read back with a byte flipped, some
// are missing, some never answer; pins are recorded.
type faultStore struct {
	ipfs.Store
	mu      sync.Mutex
	corrupt map[cid.Cid]bool
	missing map[cid.Cid]bool
	hang    map[cid.Cid]bool
	pinned  map[cid.Cid]bool
	pins    int
}

func newFaultStore(s ipfs.Store) *faultStore {
	return &faultStore{Store: s, corrupt: map[cid.Cid]bool{}, missing: map[cid.Cid]bool{}, hang: map[cid.Cid]bool{}, pinned: map[cid.Cid]bool{}}
}

func (f *faultStore) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	f.mu.Lock()
	corrupt, missing, hang := f.corrupt[c], f.missing[c], f.hang[c]
	f.mu.Unlock()
	switch {
	case missing:
		return nil, ipfs.ErrNotFound
	case hang:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	rc, err := f.Store.Cat(ctx, c, offset, length)
	if err != nil || !corrupt {
		return rc, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 0xff
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *faultStore) Pin(ctx context.Context, c cid.Cid) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinned[c] = true
	f.pins++
	return nil
}

func (f *faultStore) isPinned(_ context.Context, c cid.Cid) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pinned[c], nil
}

// written is one image written to the store.
type written struct {
	res   *manifests.Result
	entry lockfile.Entry
}

func writeImages(t *testing.T, store ipfs.Store) []written {
	t.Helper()
	w := manifests.NewWriter(store, 4, nil)
	var out []written
	for i, node := range []manifests.Node{
		rig.MultiPlatform(t, 31, 300<<10),
		rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 32, 100<<10, false)}}),
	} {
		res, err := w.Write(context.Background(), node, manifests.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, written{res, lockfile.Entry{Source: "example.com/img" + string(rune('a'+i)) + ":1", Mode: "plain", CID: res.Root.String(), Platforms: res.Platforms}})
	}
	return out
}

func lockOf(ws []written) *lockfile.File {
	f := lockfile.New()
	for _, w := range ws {
		f.Put(w.entry)
	}
	return f
}

// blobOf returns a config or layer blob of the image (not a document).
func blobOf(t *testing.T, w written, mediaType string) manifests.Blob {
	t.Helper()
	for _, b := range w.res.Blobs {
		if b.MediaType == mediaType {
			return b
		}
	}
	t.Fatalf("no %s blob", mediaType)
	return manifests.Blob{}
}

func TestVerify(t *testing.T) {
	cs, err := car.New(filepath.Join(t.TempDir(), "x.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ws := writeImages(t, cs)
	ctx := context.Background()

	t.Run("ok, then pin what is missing", func(t *testing.T) {
		fs := newFaultStore(cs)
		// The roots are pinned already: only the rest gets pinned.
		fs.pinned[ws[0].res.Root], fs.pinned[ws[1].res.Root] = true, true
		var seen []string
		rep, err := verify.Verify(ctx, fs, lockOf(ws), verify.Options{Jobs: 3, Pin: true, Pinned: fs.isPinned, OnEntry: func(e *verify.Entry) { seen = append(seen, e.Source) }})
		if err != nil || rep.OK != 2 || rep.Failed != 0 || rep.Err() != nil || len(seen) != 2 {
			t.Fatalf("%v %+v", err, rep)
		}
		total := 0
		for _, w := range ws {
			total += len(w.res.Blobs)
		}
		// Every blob of the trees, once per tree (a tree pins its own).
		if rep.Pinned != total || fs.pins != total {
			t.Errorf("pins added %d (store saw %d), want %d", rep.Pinned, fs.pins, total)
		}
		if rep.Entries[0].Manifests != 4 || rep.Entries[0].Blobs != 3+7 || rep.Entries[1].Manifests != 1 || rep.Entries[1].Blobs != 2 {
			t.Errorf("counts: %+v %+v", rep.Entries[0], rep.Entries[1])
		}
		rep, _ = verify.Verify(ctx, fs, lockOf(ws), verify.Options{Pin: true, Pinned: fs.isPinned})
		if rep.Pinned != 0 {
			t.Errorf("second run pinned %d", rep.Pinned)
		}
	})

	t.Run("digest mismatch only", func(t *testing.T) {
		fs := newFaultStore(cs)
		bad := blobOf(t, ws[1], ocispec.MediaTypeImageLayerGzip)
		fs.corrupt[bad.CID] = true
		rep, _ := verify.Verify(ctx, fs, lockOf(ws), verify.Options{Pin: true, Pinned: fs.isPinned})
		e := rep.Entries[1]
		if rep.OK != 1 || rep.Failed != 1 || !rep.OnlyMismatches() || e.Problem != verify.ProblemDigestMismatch || !strings.Contains(e.Error, bad.Digest.String()) {
			t.Fatalf("%+v %+v", rep, e)
		}
		for c := range fs.pinned {
			for _, b := range ws[1].res.Blobs {
				if b.CID == c {
					t.Errorf("pinned %s of the failed image", c)
				}
			}
		}
	})

	t.Run("missing block, not an image, platforms, timeout", func(t *testing.T) {
		fs := newFaultStore(cs)
		fs.missing[blobOf(t, ws[0], ocispec.MediaTypeImageConfig).CID] = true
		junk, err := cs.Add(ctx, strings.NewReader("not a descriptor"))
		if err != nil {
			t.Fatal(err)
		}
		never, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
		fs.hang[never] = true
		lock := lockOf(ws)
		lock.Put(lockfile.Entry{Source: "example.com/junk:1", Mode: "plain", CID: junk.String()})
		lock.Put(lockfile.Entry{Source: "example.com/narrow:1", Mode: "plain", CID: ws[0].res.Root.String(), Platforms: []string{"linux/amd64"}})
		lock.Put(lockfile.Entry{Source: "example.com/slow:1", Mode: "plain", CID: never.String()})
		start := time.Now()
		rep, err := verify.Verify(ctx, fs, lock, verify.Options{EntryTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s with a 300ms entry timeout", took)
		}
		want := map[string]string{
			"example.com/imga:1":   verify.ProblemNotFound,
			"example.com/imgb:1":   "",
			"example.com/junk:1":   verify.ProblemNotImage,
			"example.com/narrow:1": verify.ProblemPlatforms, // checked before any blob is read
			"example.com/slow:1":   verify.ProblemNotFound,
		}
		for _, e := range rep.Entries {
			if e.Problem != want[e.Source] {
				t.Errorf("%s: problem %q (%s), want %q", e.Source, e.Problem, e.Error, want[e.Source])
			}
		}
		if rep.OK != 1 || rep.Failed != 4 || rep.OnlyMismatches() {
			t.Errorf("%+v", rep)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		fs := newFaultStore(cs)
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := verify.Verify(c, fs, lockOf(ws), verify.Options{}); err == nil {
			t.Error("no error from a cancelled context")
		}
	})
}
