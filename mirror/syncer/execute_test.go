package syncer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"

	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// The engine end to end in process: oci: layouts as sources, a CAR store
// as the node (it reads back what it was given), a lockfile on disk.

// writeLayout writes a fresh OCI layout at dir holding one small random
// image.
func writeLayout(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
}

type layoutRun struct {
	t    *testing.T
	dir  string
	lock string
	cars string
}

func newLayoutRun(t *testing.T) *layoutRun {
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "a"))
	writeLayout(t, filepath.Join(dir, "b"))
	return &layoutRun{t: t, dir: dir, lock: filepath.Join(dir, "mirrors.lock"), cars: filepath.Join(dir, "cars")}
}

// sync runs Sync over list (its images) into store, from the lockfile on
// disk, and returns the report and the statuses by source.
func (r *layoutRun) sync(store ipfs.Store, images string, o Options) (*Report, map[string]Status) {
	r.t.Helper()
	cfg, err := config.Parse(filepath.Join(r.dir, "mirrors.yaml"), []byte("version: 1\nimages:\n"+images))
	if err != nil {
		r.t.Fatal(err)
	}
	lock, err := lockfile.Read(r.lock)
	if err != nil {
		r.t.Fatal(err)
	}
	o.LockPath = r.lock
	rep, err := Sync(context.Background(), store, cfg, lock, o)
	if err != nil {
		r.t.Fatal(err)
	}
	got := map[string]Status{}
	for _, im := range rep.Images {
		got[im.Source] = im.Status
	}
	return rep, got
}

func (r *layoutRun) lockBytes() []byte {
	b, err := os.ReadFile(r.lock)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func newCARStore(t *testing.T) *car.Store {
	s, err := car.New(filepath.Join(t.TempDir(), "node.car"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSyncLayouts(t *testing.T) {
	r := newLayoutRun(t)
	store := newCARStore(t)
	both := "  - source: oci:a\n  - source: oci:b\n"

	withCARs := Options{CARDir: r.cars}
	rep, got := r.sync(store, both, withCARs)
	if got["oci:a"] != StatusNew || got["oci:b"] != StatusNew || !rep.LockChanged || rep.BlobsAdded == 0 {
		t.Fatalf("first run: %v, lock changed %v, %d blobs", got, rep.LockChanged, rep.BlobsAdded)
	}
	first := r.lockBytes()
	lock, _ := lockfile.Read(r.lock)
	for _, e := range lock.Images {
		if e.CID == "" || len(e.Configs) != 1 || e.Digest == "" {
			t.Errorf("entry %+v", e)
		}
		if _, err := os.Stat(filepath.Join(r.cars, CARName(e.Source, e.Mode))); err != nil {
			t.Errorf("no CAR for %s: %v", e.Source, err)
		}
	}

	rep, got = r.sync(store, both, withCARs)
	if got["oci:a"] != StatusUnchanged || got["oci:b"] != StatusUnchanged || rep.LockChanged || rep.BlobsAdded != 0 {
		t.Errorf("second run: %v, lock changed %v, %d blobs", got, rep.LockChanged, rep.BlobsAdded)
	}
	if !bytes.Equal(r.lockBytes(), first) {
		t.Error("a no-op run changed the lockfile")
	}

	writeLayout(t, filepath.Join(r.dir, "a"))
	rep, got = r.sync(store, both, Options{DryRun: true})
	if got["oci:a"] != StatusChanged || got["oci:b"] != StatusUnchanged || rep.BlobsAdded != 0 || !bytes.Equal(r.lockBytes(), first) {
		t.Errorf("dry run: %v, %d blobs, lockfile changed %v", got, rep.BlobsAdded, !bytes.Equal(r.lockBytes(), first))
	}
	_, got = r.sync(store, both, Options{})
	if got["oci:a"] != StatusChanged || got["oci:b"] != StatusUnchanged {
		t.Errorf("after a moved: %v", got)
	}

	_, got = r.sync(store, "  - source: oci:a\n", Options{})
	lock, _ = lockfile.Read(r.lock)
	if got["oci:a"] != StatusUnchanged || got["oci:b"] != StatusRemoved || len(lock.Images) != 1 || lock.Images[0].Source != "oci:a" {
		t.Errorf("b dropped from the list: %v, lockfile %+v", got, lock.Images)
	}
}

// unsure is a node that cannot tell whether it holds a root.
type unsure struct{ *car.Store }

func (unsure) Holds(context.Context, cid.Cid) (bool, error) {
	return false, errors.New("ipfs pin ls: connection reset by peer")
}

// A node that cannot say whether it still holds an image fails that image:
// nothing is read again, the entry stays as it was, the others go on.
func TestSyncHoldsError(t *testing.T) {
	r := newLayoutRun(t)
	store := newCARStore(t)
	r.sync(store, "  - source: oci:a\n", Options{})
	before := r.lockBytes()

	rep, got := r.sync(unsure{store}, "  - source: oci:a\n  - source: oci:b\n", Options{})
	if got["oci:a"] != StatusFailed || got["oci:b"] != StatusNew {
		t.Fatalf("statuses %v, want a failed and b new", got)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "oci:a (plain): checking that the IPFS node still holds the image: ipfs pin ls: connection reset by peer") {
		t.Errorf("error %v", err)
	}
	lock, _ := lockfile.Read(r.lock)
	old, _ := lockfile.Parse("before", before)
	a, _ := lock.Lookup("oci:a", "plain")
	was, _ := old.Lookup("oci:a", "plain")
	if a == nil || was == nil || a.CID != was.CID || a.Digest != was.Digest {
		t.Errorf("entry of a %+v, was %+v", a, was)
	}
	if rep.Failed != 1 {
		t.Errorf("%d failed", rep.Failed)
	}
}

// counting is a store that counts the bytes read from it.
type counting struct {
	*car.Store
	read atomic.Int64
}

func (c *counting) Cat(ctx context.Context, id cid.Cid, offset, length int64) (io.ReadCloser, error) {
	rc, err := c.Store.Cat(ctx, id, offset, length)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&countReader{rc, &c.read}, rc}, nil
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readCAR returns a CAR's roots and blocks.
func readCAR(t *testing.T, path string) ([]cid.Cid, map[cid.Cid]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br, err := carv2.NewBlockReader(f)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[cid.Cid]string{}
	for {
		b, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		blocks[b.Cid()] = string(b.RawData())
	}
	return br.Roots, blocks
}

// The CARs of a sync come from copies kept as the images are written: the
// run reads no more from the node than a run without CARs, and each CAR
// holds the same roots and blocks as one exported afterwards by reading
// the image back from the node.
func TestSyncCARFromTee(t *testing.T) {
	r := newLayoutRun(t)
	both := "  - source: oci:a\n  - source: oci:b\n"

	plain := &counting{Store: newCARStore(t)}
	r.sync(plain, both, Options{})
	if err := os.Remove(r.lock); err != nil {
		t.Fatal(err)
	}
	node := &counting{Store: newCARStore(t)}
	_, got := r.sync(node, both, Options{CARDir: r.cars})
	if got["oci:a"] != StatusNew || got["oci:b"] != StatusNew {
		t.Fatalf("statuses %v", got)
	}
	if node.read.Load() != plain.read.Load() {
		t.Errorf("read %d bytes from the node with --car, %d without: the CARs were read back from the node", node.read.Load(), plain.read.Load())
	}
	lock, _ := lockfile.Read(r.lock)
	for _, e := range lock.Images {
		roots, blocks := readCAR(t, filepath.Join(r.cars, CARName(e.Source, e.Mode)))
		root, _ := ipfs.ParseCID(e.CID)
		ref := filepath.Join(t.TempDir(), "ref.car")
		if _, err := ExportCAR(context.Background(), node.Store, root, cid.Undef, ref, ""); err != nil {
			t.Fatal(err)
		}
		wantRoots, wantBlocks := readCAR(t, ref)
		if !slices.Equal(roots, wantRoots) || !maps.Equal(blocks, wantBlocks) {
			t.Errorf("%s: CAR roots %v, %d blocks; read back from the node: roots %v, %d blocks", e.Source, roots, len(blocks), wantRoots, len(wantBlocks))
		}
		// Byte for byte: blocks go out in digest order, so the same tree
		// always gives the same file, however it was copied.
		teeBytes, _ := os.ReadFile(filepath.Join(r.cars, CARName(e.Source, e.Mode)))
		refBytes, _ := os.ReadFile(ref)
		if !bytes.Equal(teeBytes, refBytes) {
			t.Errorf("%s: the CAR written from the tee (%d bytes) differs from the one read back from the node (%d bytes)", e.Source, len(teeBytes), len(refBytes))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(r.cars, ".tee-*")); len(left) != 0 {
		t.Errorf("copies left behind: %v", left)
	}
}
