package manifests

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests/treegen"
)

// addTreeSeeds seeds a fuzz target taking (shape, data) with the hostile
// shapes of issue 13 and a few generated trees.
func addTreeSeeds(f *testing.F) {
	f.Add(byte(1), []byte{0x02, 0xee, 6})  // 750 wide children, 6 deep
	f.Add(byte(1), []byte{0x00, 0x02, 3})  // 3 wide, 3 deep: fine
	f.Add(byte(2), []byte{9})              // nested too deep
	f.Add(byte(2), []byte{7})              // nested at the limit
	f.Add(byte(3), []byte{1})              // negative size under an index
	f.Add(byte(3), []byte{0})              // negative size
	f.Add(byte(4), []byte("opaque bytes")) // an index child of an unknown type
	f.Add(byte(0), []byte{})
	f.Add(byte(0), []byte{3, 1, 20, 1, 2, 30, 0, 4, 31, 1, 1, 31, 2, 0, 1, 31, 31, 3, 1, 3, 0xff, 31, 2, 1, 0xff, 31, 31})
	f.Add(byte(0), []byte{2, 0, 10, 2, 5, 20, 6, 4, 1, 9, 31, 0, 6, 31, 2, 31, 4, 1, 1, 0, 31, 0, 0, 31})
}

// FuzzTree drives the reader and everything that walks what it returns
// (Walk, Manifests, the go-containerregistry view, StripURLs, every blob's
// verified stream) with generated trees: no panic, no unbounded work, and
// nothing that does not hash to its descriptor is ever returned as valid.
func FuzzTree(f *testing.F) {
	addTreeSeeds(f)
	f.Fuzz(func(t *testing.T, shape byte, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st := treegen.NewMemStore()
		root, err := treegen.Shape(&treegen.Builder{Ctx: ctx, Store: st}, shape, data)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		defer func() {
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("took %s", took)
			}
		}()
		tree, err := Resolve(ctx, st, root)
		if err != nil {
			return
		}
		for d, raw := range tree.Docs {
			if digest.FromBytes(raw) != d || int64(len(raw)) != tree.Descs[d].Size {
				t.Fatalf("document %s accepted with %d bytes hashing to %s", d, len(raw), digest.FromBytes(raw))
			}
		}
		for d, desc := range tree.Descs {
			if desc.Size < 0 || d.Validate() != nil || d.Algorithm() != digest.SHA256 {
				t.Fatalf("descriptor %+v accepted", desc)
			}
		}
		n := 0
		err = tree.Walk(func(d ocispec.Descriptor, depth int) error {
			if n++; n > MaxDescriptors+1 || depth > MaxDepth {
				t.Fatalf("Walk: %d descriptors, depth %d", n, depth)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Walk of a resolved tree: %v", err)
		}
		_ = tree.Manifests()
		top, err := tree.Top(ctx)
		if err != nil {
			return
		}
		readAll(ctx, t, top, map[string]bool{})
		if s, err := StripURLsContext(ctx, top); err == nil {
			readAll(ctx, t, s, map[string]bool{})
		}
	})
}

// readAll reads every blob of node through the go-containerregistry view,
// once per digest as the writers do: each must come out verified or not at
// all.
func readAll(ctx context.Context, t *testing.T, node any, seen map[string]bool) {
	if d, ok := node.(interface{ Digest() (v1.Hash, error) }); ok {
		h, err := d.Digest()
		if err != nil || seen[h.String()] {
			return
		}
		seen[h.String()] = true
	}
	check := func(h v1.Hash, rc io.ReadCloser, err error) {
		if err != nil {
			return
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err == nil && digest.FromBytes(b).String() != h.String() {
			t.Fatalf("blob %s read as bytes hashing to %s", h, digest.FromBytes(b))
		}
		if err != nil && !errors.Is(err, ErrDigestMismatch) && ctx.Err() == nil {
			t.Logf("blob %s: %v", h, err)
		}
	}
	switch n := node.(type) {
	case v1.Image:
		ls, err := n.Layers()
		if err != nil {
			return
		}
		for _, l := range ls {
			h, _ := l.Digest()
			if seen[h.String()] {
				continue
			}
			seen[h.String()] = true
			rc, err := l.Compressed()
			check(h, rc, err)
		}
		_, _ = n.RawConfigFile()
	case v1.ImageIndex:
		im, err := n.IndexManifest()
		if err != nil {
			return
		}
		for _, m := range im.Manifests {
			switch {
			case m.MediaType.IsIndex():
				if c, err := n.ImageIndex(m.Digest); err == nil {
					readAll(ctx, t, c, seen)
				}
			case m.MediaType.IsImage():
				if c, err := n.Image(m.Digest); err == nil {
					readAll(ctx, t, c, seen)
				}
			default:
				if wl, ok := n.(withLayer); ok {
					if l, err := wl.Layer(m.Digest); err == nil {
						rc, err := l.Compressed()
						check(m.Digest, rc, err)
					}
				}
			}
		}
	}
}
