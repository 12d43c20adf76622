package manifests

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests/treegen"
)

func newBuilder() (*treegen.Builder, *treegen.MemStore) {
	st := treegen.NewMemStore()
	return &treegen.Builder{Ctx: context.Background(), Store: st}, st
}

func mustCID(t *testing.T) func(cid.Cid, error) cid.Cid {
	return func(c cid.Cid, err error) cid.Cid {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// The repeated-children shape (about 1 MiB of JSON, 750^6 paths) is
// refused at once, by the reader, before any writer walks it.
func TestResolveRepeatedTreeFailsFast(t *testing.T) {
	b, st := newBuilder()
	root := mustCID(t)(treegen.Repeated(b, 750, 6))
	if b.Bytes < 900<<10 || b.Bytes > 1200<<10 {
		t.Fatalf("the hostile tree has %d bytes of JSON, want about 1 MiB", b.Bytes)
	}
	start := time.Now()
	_, err := Resolve(context.Background(), st, root)
	took := time.Since(start)
	if !errors.Is(err, ErrLimit) || !errors.Is(err, ErrNotIPFSImage) {
		t.Fatalf("Resolve: %v, want ErrLimit (and ErrNotIPFSImage)", err)
	}
	if !strings.Contains(err.Error(), "descriptors") {
		t.Errorf("error %q does not name the descriptor limit", err)
	}
	if took > 10*time.Second { // generous: -race on a loaded machine
		t.Errorf("took %s to refuse", took)
	}
	t.Logf("refused in %s: %v", took, err)
}

// A repeat within the budget (the same manifest twice in an index) is an
// image like any other.
func TestResolveSmallRepeatIsFine(t *testing.T) {
	b, st := newBuilder()
	root := mustCID(t)(treegen.Repeated(b, 3, 2))
	tree, err := Resolve(context.Background(), st, root)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tree.Docs); n != 3 {
		t.Errorf("%d documents, want 3", n)
	}
	top, err := tree.Top(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StripURLsContext(context.Background(), top); err != nil {
		t.Fatal(err)
	}
}

func TestResolveLimits(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		build func(b *treegen.Builder) (cid.Cid, error)
		lim   Limits
		want  []error
		msg   string
	}{
		{"nested too deep", func(b *treegen.Builder) (cid.Cid, error) { return treegen.Nested(b, MaxDepth) }, Limits{}, []error{ErrLimit, ErrNotIPFSImage}, "nested"},
		{"nested at the limit", func(b *treegen.Builder) (cid.Cid, error) { return treegen.Nested(b, MaxDepth-1) }, Limits{}, nil, ""},
		{"over the manifest limit", func(b *treegen.Builder) (cid.Cid, error) {
			d, err := b.Image(nil, nil)
			if err != nil {
				return cid.Undef, err
			}
			d.Size = MaxManifestSize + 1
			idx, err := b.Index([]ocispec.Descriptor{d})
			if err != nil {
				return cid.Undef, err
			}
			return b.Root(idx)
		}, Limits{}, []error{ErrLimit, ErrNotIPFSImage}, "manifest limit"},
		{"over a smaller descriptor budget", func(b *treegen.Builder) (cid.Cid, error) { return treegen.Repeated(b, 4, 2) }, Limits{Descriptors: 20}, []error{ErrLimit}, "descriptors"},
		{"over a smaller byte budget", func(b *treegen.Builder) (cid.Cid, error) { return treegen.Repeated(b, 4, 2) }, Limits{TreeBytes: 1000}, []error{ErrLimit}, "bytes"},
		{"negative layer size", func(b *treegen.Builder) (cid.Cid, error) { return treegen.NegativeSize(b, false) }, Limits{}, []error{ErrInvalidDescriptor, ErrDigestMismatch}, "negative"},
		{"negative layer size under an index", func(b *treegen.Builder) (cid.Cid, error) { return treegen.NegativeSize(b, true) }, Limits{}, []error{ErrInvalidDescriptor, ErrDigestMismatch}, "negative"},
		{"negative child size", func(b *treegen.Builder) (cid.Cid, error) {
			d, err := b.Blob([]byte("x"), treegen.UnknownType)
			if err != nil {
				return cid.Undef, err
			}
			d.Size = -5
			idx, err := b.Index([]ocispec.Descriptor{d})
			if err != nil {
				return cid.Undef, err
			}
			return b.Root(idx)
		}, Limits{}, []error{ErrInvalidDescriptor, ErrDigestMismatch}, "negative"},
		{"one digest, two sizes", func(b *treegen.Builder) (cid.Cid, error) {
			d, err := b.Blob([]byte("x"), treegen.UnknownType)
			if err != nil {
				return cid.Undef, err
			}
			e := d
			e.Size = 2
			idx, err := b.Index([]ocispec.Descriptor{d, e})
			if err != nil {
				return cid.Undef, err
			}
			return b.Root(idx)
		}, Limits{}, []error{ErrInvalidDescriptor}, "sizes"},
		{"sha512 layer", func(b *treegen.Builder) (cid.Cid, error) {
			d, err := b.Image([][]byte{[]byte("l")}, func(ls []ocispec.Descriptor) { ls[0].Digest = digest.Digest("sha512:" + strings.Repeat("ab", 64)) })
			if err != nil {
				return cid.Undef, err
			}
			return b.Root(d)
		}, Limits{}, []error{ErrInvalidDescriptor}, "sha512"},
		{"unknown child", func(b *treegen.Builder) (cid.Cid, error) { return treegen.UnknownChild(b, []byte("opaque")) }, Limits{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, st := newBuilder()
			root := mustCID(t)(tc.build(b))
			_, err := ResolveLimits(ctx, st, root, tc.lim)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err %v is not %v", err, w)
				}
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestResolveHonoursContext(t *testing.T) {
	b, st := newBuilder()
	root := mustCID(t)(treegen.Repeated(b, 2, 3))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Resolve(ctx, st, root); !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with a cancelled context: %v", err)
	}
	tree, err := Resolve(context.Background(), st, root)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := tree.Top(context.Background())
	if _, err := StripURLsContext(ctx, top); !errors.Is(err, context.Canceled) {
		t.Errorf("StripURLsContext with a cancelled context: %v", err)
	}
}

// An index child of an unknown media type is a blob the writers of
// go-containerregistry copy through Layer: verified.
func TestUnknownChildIsAVerifiedLayer(t *testing.T) {
	ctx := context.Background()
	for _, strip := range []bool{false, true} {
		b, st := newBuilder()
		root := mustCID(t)(treegen.UnknownChild(b, []byte("opaque bytes")))
		tree, err := Resolve(ctx, st, root)
		if err != nil {
			t.Fatal(err)
		}
		top, err := tree.Top(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strip {
			if top, err = StripURLs(top); err != nil {
				t.Fatal(err)
			}
		}
		idx := top.(v1.ImageIndex)
		im, _ := idx.IndexManifest()
		var h v1.Hash
		for _, m := range im.Manifests {
			if m.MediaType == treegen.UnknownType {
				h = m.Digest
			}
		}
		wl, ok := idx.(interface {
			Layer(v1.Hash) (v1.Layer, error)
		})
		if !ok {
			t.Fatalf("strip %v: %T has no Layer", strip, idx)
		}
		l, err := wl.Layer(h)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != "opaque bytes" {
			t.Errorf("strip %v: read %q, %v", strip, got, err)
		}
		if d, _ := partial.Descriptor(l); d == nil || d.MediaType != treegen.UnknownType {
			t.Errorf("strip %v: descriptor %+v", strip, d)
		}
	}
}

// A source index that lists the same children again and again, several
// levels deep, is converted once per distinct document on push (before:
// once per path, 30^4 of them).
func TestWriteRepeatedSourceOnce(t *testing.T) {
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	var node mutate.Appendable = img
	for range 4 {
		var adds []mutate.IndexAddendum
		for range 30 {
			adds = append(adds, mutate.IndexAddendum{Add: node, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
		}
		node = mutate.AppendManifests(empty.Index, adds...)
	}
	st := treegen.NewMemStore()
	start := time.Now()
	res, err := NewWriter(st, 2, nil).Write(context.Background(), node, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	// 4 indexes, 1 manifest, 1 config, 1 layer.
	if len(res.Blobs) != 7 {
		t.Errorf("%d blobs, want 7", len(res.Blobs))
	}
}

// The url-free rewrite removes every URL of ordinary layers, configs and
// index entries (attacker-chosen: a client would fetch them), and keeps
// only the non-ipfs:// URLs of foreign layers.
func TestStripURLsRemovesEveryURL(t *testing.T) {
	ctx := context.Background()
	b, st := newBuilder()
	d, err := b.Image([][]byte{[]byte("ordinary"), []byte("foreign")}, func(ls []ocispec.Descriptor) {
		ls[0].URLs = append([]string{"http://127.0.0.1:9/ordinary"}, ls[0].URLs...)
		ls[1].MediaType = DockerForeignGzip
		ls[1].URLs = append([]string{"https://foreign.example/layer"}, ls[1].URLs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	d.URLs = append(d.URLs, "http://127.0.0.1:9/manifest")
	idx, err := b.Index([]ocispec.Descriptor{d})
	if err != nil {
		t.Fatal(err)
	}
	root := mustCID(t)(b.Root(idx))
	tree, err := Resolve(ctx, st, root)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := tree.Top(ctx)
	s, err := StripURLsContext(ctx, top)
	if err != nil {
		t.Fatal(err)
	}
	sidx := s.(v1.ImageIndex)
	raw, _ := sidx.RawManifest()
	if strings.Contains(string(raw), "://") {
		t.Errorf("index keeps URLs: %s", raw)
	}
	im, _ := sidx.IndexManifest()
	img, err := sidx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if m.Config.URLs != nil || m.Layers[0].URLs != nil {
		t.Errorf("config or ordinary layer keeps URLs: %v %v", m.Config.URLs, m.Layers[0].URLs)
	}
	if len(m.Layers[1].URLs) != 1 || m.Layers[1].URLs[0] != "https://foreign.example/layer" {
		t.Errorf("foreign layer URLs %v", m.Layers[1].URLs)
	}
}
