package syncer

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// blockMap is a read-only store of a CAR's blocks: GetBlock, and Cat of
// one-block (raw) files.
type blockMap map[cid.Cid]string

func (m blockMap) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	b, ok := m[c]
	if !ok {
		return nil, ipfs.ErrNotFound
	}
	return []byte(b), nil
}

func (m blockMap) Cat(_ context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	b, ok := m[c]
	if !ok || c.Type() != cid.Raw {
		return nil, ipfs.ErrNotFound
	}
	b = b[offset:]
	if length >= 0 && int64(len(b)) > length {
		b = b[:length]
	}
	return io.NopCloser(strings.NewReader(b)), nil
}

func (blockMap) Add(context.Context, io.Reader) (cid.Cid, error) {
	return cid.Undef, ipfs.ErrUnavailable
}
func (blockMap) Pin(context.Context, cid.Cid) error { return ipfs.ErrUnavailable }
func (blockMap) PutBlock(context.Context, uint64, []byte) (cid.Cid, error) {
	return cid.Undef, ipfs.ErrUnavailable
}
func (blockMap) Close() error { return nil }

// TestSyncKeepsUpstream: a plain copy of a registry image records its
// upstream documents (the registry's bytes, no GET more than the write's),
// the pin handle links them, the entry's CAR holds them, a no-op run
// reads no manifest and keeps the lockfile's bytes; an estargz-only or
// oci: entry has none.
func TestSyncKeepsUpstream(t *testing.T) {
	ctx := context.Background()
	var c rig.Counter
	srv := httptest.NewServer(c.Counting(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	idx := rig.Index(t, true,
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 1, 300<<10, true)}}),
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &arm, Layers: []v1.Layer{rig.Layer(t, 2, 1000, true)}}))
	top := rig.Push(t, host+"/up/app:1", idx)

	r := newLayoutRun(t)
	store := newCARStore(t)
	list := "  - source: " + host + "/up/app\n    tags: [\"1\"]\n    platforms: [linux/amd64]\n  - source: oci:a\n"
	o := Options{Registry: registry.Options{Insecure: true}, PinHandle: pinhandle.Builder(store), CARDir: r.cars}
	c.Reset()
	_, got := r.sync(store, list, o)
	src := host + "/up/app:1"
	if got[src] != StatusNew {
		t.Fatalf("first run: %v", got)
	}
	if n := c.Get("GET manifests"); n != 2 {
		t.Errorf("first run: %d manifest GETs, want 2 (the index, the kept manifest): %v", n, c.Snapshot())
	}
	lock, err := lockfile.Read(r.lock)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := lock.Lookup(src, "plain")
	if e.Upstream == "" || e.Pin == "" {
		t.Fatalf("entry %+v: no upstream or pin", e)
	}
	if oe, _ := lock.Lookup("oci:a", "plain"); oe.Upstream != "" {
		t.Errorf("an oci: entry got upstream %s", oe.Upstream)
	}
	up, _ := ipfs.ParseCID(e.Upstream)
	im, err := upstream.Load(ctx, store, up)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(src, name.Insecure)
	want, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(im.Top().Bytes, want.Manifest) || im.Top().Digest.String() != top.String() || e.Digest != top.String() {
		t.Errorf("upstream top %s, want the registry's %s bytes", im.Top().Digest, top)
	}
	if len(im.Docs()) != 2 || len(im.Missing()) != 1 {
		t.Errorf("upstream: %d docs, %d missing; want 2 and 1 (arm64 not kept)", len(im.Docs()), len(im.Missing()))
	}
	pin, _ := ipfs.ParseCID(e.Pin)
	if linked, err := pinhandle.UpstreamOf(ctx, store, pin); err != nil || linked != up {
		t.Errorf("pin handle links %s (%v), want %s", linked, err, up)
	}
	// The CAR is rooted at the same handle and holds the upstream layout.
	roots, blocks := readCAR(t, filepath.Join(r.cars, CARName(src, "plain")))
	if len(roots) != 1 || roots[0] != pin {
		t.Errorf("CAR roots %v, want the pin %s", roots, pin)
	}
	if _, err := upstream.Load(ctx, blockMap(blocks), up); err != nil {
		t.Errorf("the CAR's upstream layout: %v", err)
	}

	// No-op: no manifest GET, the same lockfile bytes.
	before := r.lockBytes()
	c.Reset()
	_, got = r.sync(store, list, o)
	if got[src] != StatusUnchanged || c.Get("GET manifests") != 0 || c.Get("GET blobs") != 0 {
		t.Errorf("no-op run: %v, registry %v", got, c.Snapshot())
	}
	if !bytes.Equal(before, r.lockBytes()) {
		t.Error("no-op run changed the lockfile")
	}

	// An older entry without upstream: stays so, with no registry GET.
	lock.Images[0].Upstream, lock.Images[1].Upstream = "", ""
	if err := lock.WriteFile(r.lock); err != nil {
		t.Fatal(err)
	}
	old := r.lockBytes()
	c.Reset()
	r.sync(store, list, o)
	if c.Get("GET manifests") != 0 || !bytes.Equal(old, r.lockBytes()) {
		t.Errorf("older entry: registry %v, lockfile changed %v", c.Snapshot(), !bytes.Equal(old, r.lockBytes()))
	}
}
