package upstream

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
)

// Recorder keeps the exact bytes of every index and manifest read through
// the source Record wrapped: the documents the manifests writer read to
// write the image (the kept platforms only), from the very responses it
// read them from. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	top  *Doc
	docs map[digest.Digest]Doc
}

// Record wraps node (a v1.ImageIndex or v1.Image, as registry.Source.Node
// returns) so that every RawManifest read through it, at every level, is
// kept by the returned Recorder. top is the digest the source gave node
// ("": none to check). A document that does not hash to the digest it was
// read by is an error (manifests.ErrDigestMismatch), for the reader as for
// the Recorder. The wrapped images still hand out their blobs raw
// (manifests.BlobOpener) when node's do.
func Record(node manifests.Node, top digest.Digest) (manifests.Node, *Recorder) {
	r := &Recorder{docs: map[digest.Digest]Doc{}}
	switch n := node.(type) {
	case v1.ImageIndex:
		return &recIndex{index: n, rec: r, want: top, top: true}, r
	case v1.Image:
		return &recImage{Image: n, rec: r, want: top, top: true}, r
	}
	return node, r
}

func (r *Recorder) keep(raw []byte, mt string, want digest.Digest, top bool) error {
	d := digest.FromBytes(raw)
	if want != "" && d != want {
		return fmt.Errorf("document %s: %w (its bytes hash to %s)", want, manifests.ErrDigestMismatch, d)
	}
	doc := Doc{MediaType: manifests.MediaTypeOf(mt, raw), Digest: d, Bytes: slices.Clone(raw)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.docs[d] = doc
	if top {
		r.top = &doc
	}
	return nil
}

// Top is the source's top document, once it was read.
func (r *Recorder) Top() (Doc, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.top == nil {
		return Doc{}, false
	}
	return *r.top, true
}

// Docs are the documents kept, by digest order.
func (r *Recorder) Docs() []Doc {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Doc, 0, len(r.docs))
	for _, d := range r.docs {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Doc) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out
}

// Input is what Build stores for the recorded image: index.json naming the
// top document, every document kept, and of blobs (the blobs the writer
// added, as manifests.Result lists them) the configs and layers the kept
// manifests name. A config or layer they name that blobs lacks is an
// error: the layout would not hold the image.
func (r *Recorder) Input(blobs []ocidir.Blob) (Input, error) {
	top, ok := r.Top()
	if !ok {
		return Input{}, fmt.Errorf("%w: the source's top document was not read", ErrInvalid)
	}
	docs := r.Docs()
	have := map[digest.Digest]ocidir.Blob{}
	for _, b := range blobs {
		have[b.Digest] = b
	}
	in := Input{Index: []ocispec.Descriptor{top.Descriptor()}, Docs: docs}
	var err error
	in.Blobs, err = namedBlobs(docs, func(d ocispec.Descriptor) (ocidir.Blob, bool) {
		b, ok := have[d.Digest]
		return b, ok
	})
	if err != nil {
		return Input{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return in, nil
}

// recIndex is a recorded index.
type recIndex struct {
	index
	rec  *Recorder
	want digest.Digest // "": no digest to check
	top  bool
}

func (x *recIndex) RawManifest() ([]byte, error) {
	raw, err := x.index.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := x.index.MediaType()
	if err != nil {
		return nil, err
	}
	if err := x.rec.keep(raw, string(mt), x.want, x.top); err != nil {
		return nil, err
	}
	return raw, nil
}

func (x *recIndex) Image(h v1.Hash) (v1.Image, error) {
	im, err := x.index.Image(h)
	if err != nil {
		return nil, err
	}
	return &recImage{Image: im, rec: x.rec, want: digest.Digest(h.String())}, nil
}

func (x *recIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	ix, err := x.index.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &recIndex{index: ix, rec: x.rec, want: digest.Digest(h.String())}, nil
}

// index is v1.ImageIndex under a name that does not clash with its
// ImageIndex method.
type index = v1.ImageIndex

// recImage is a recorded image manifest.
type recImage struct {
	v1.Image
	rec  *Recorder
	want digest.Digest
	top  bool
}

func (i *recImage) RawManifest() ([]byte, error) {
	raw, err := i.Image.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := i.Image.MediaType()
	if err != nil {
		return nil, err
	}
	if err := i.rec.keep(raw, string(mt), i.want, i.top); err != nil {
		return nil, err
	}
	return raw, nil
}

// OpenBlob implements manifests.BlobOpener: the wrapped image's, or its
// layer's compressed bytes when it has none (what the writer would read).
func (i *recImage) OpenBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	if bo, ok := i.Image.(manifests.BlobOpener); ok {
		return bo.OpenBlob(ctx, d, size)
	}
	h, err := v1.NewHash(d.String())
	if err != nil {
		return nil, err
	}
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}
