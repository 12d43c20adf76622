package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Top returns the root descriptor's target as a go-containerregistry
// v1.ImageIndex or v1.Image, backed by IPFS: every blob read through it is
// verified. ctx is used for the reads the returned value makes.
func (t *Tree) Top(ctx context.Context) (Node, error) {
	return t.node(ctx, t.RootDescriptor)
}

func (t *Tree) node(ctx context.Context, d ocispec.Descriptor) (Node, error) {
	switch {
	case IsIndex(d.MediaType):
		return &ipfsIndex{t: t, ctx: ctx, d: d}, nil
	case IsManifest(d.MediaType):
		return t.image(ctx, d)
	}
	return nil, fmt.Errorf("%s: %w %q", d.Digest, ErrUnsupported, d.MediaType)
}

func (t *Tree) image(ctx context.Context, d ocispec.Descriptor) (v1.Image, error) {
	raw, ok := t.Docs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("manifest %s is not in the tree", d.Digest)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	core := &ipfsImage{t: t, ctx: ctx, d: d, raw: raw, m: m}
	return partial.CompressedToImage(core)
}

type ipfsIndex struct {
	t   *Tree
	ctx context.Context
	d   ocispec.Descriptor

	once     sync.Once
	children map[digest.Digest]ocispec.Descriptor
	err      error
}

var _ v1.ImageIndex = (*ipfsIndex)(nil)

func (i *ipfsIndex) MediaType() (types.MediaType, error) { return types.MediaType(i.d.MediaType), nil }
func (i *ipfsIndex) Digest() (v1.Hash, error)            { return v1.NewHash(i.d.Digest.String()) }
func (i *ipfsIndex) Size() (int64, error)                { return i.d.Size, nil }
func (i *ipfsIndex) RawManifest() ([]byte, error)        { return i.t.Docs[i.d.Digest], nil }
func (i *ipfsIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(i.t.Docs[i.d.Digest]))
}

// child returns the entry of the index with digest h.
func (i *ipfsIndex) child(h v1.Hash) (ocispec.Descriptor, error) {
	i.once.Do(func() {
		var idx ocispec.Index
		if i.err = json.Unmarshal(i.t.Docs[i.d.Digest], &idx); i.err != nil {
			return
		}
		i.children = map[digest.Digest]ocispec.Descriptor{}
		for _, m := range idx.Manifests {
			if _, ok := i.children[m.Digest]; !ok {
				i.children[m.Digest] = m
			}
		}
	})
	if i.err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index %s: %w", i.d.Digest, i.err)
	}
	d, ok := i.children[digest.Digest(h.String())]
	if !ok {
		return d, fmt.Errorf("%s is not in index %s", h, i.d.Digest)
	}
	return d, nil
}

func (i *ipfsIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := i.child(h)
	if err != nil {
		return nil, err
	}
	return i.t.image(i.ctx, d)
}

func (i *ipfsIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := i.child(h)
	if err != nil {
		return nil, err
	}
	if !IsIndex(d.MediaType) {
		return nil, fmt.Errorf("%s is a %s, not an index", h, d.MediaType)
	}
	return &ipfsIndex{t: i.t, ctx: i.ctx, d: d}, nil
}

// withLayer is how go-containerregistry's writers (layout, remote) read an
// index child that is neither an index nor a manifest; without it the
// layout writer copies from a nil reader.
type withLayer interface {
	Layer(v1.Hash) (v1.Layer, error)
}

var _ withLayer = (*ipfsIndex)(nil)

// Layer returns a child of the index that is neither an index nor a
// manifest (an artifact, a media type we do not know) as a blob read from
// IPFS and verified while it streams.
func (i *ipfsIndex) Layer(h v1.Hash) (v1.Layer, error) {
	d, err := i.child(h)
	if err != nil {
		return nil, err
	}
	if IsIndex(d.MediaType) || IsManifest(d.MediaType) {
		return nil, fmt.Errorf("%s is a %s, not a blob", h, d.MediaType)
	}
	vd, err := fromOCI(d)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToLayer(&ipfsBlob{t: i.t, ctx: i.ctx, d: d, vd: *vd})
}

// ipfsBlob is an index child of another type, as a compressed layer.
type ipfsBlob struct {
	t   *Tree
	ctx context.Context
	d   ocispec.Descriptor
	vd  v1.Descriptor
}

func (b *ipfsBlob) Digest() (v1.Hash, error)            { return b.vd.Digest, nil }
func (b *ipfsBlob) Size() (int64, error)                { return b.d.Size, nil }
func (b *ipfsBlob) MediaType() (types.MediaType, error) { return b.vd.MediaType, nil }
func (b *ipfsBlob) Descriptor() (*v1.Descriptor, error) { d := b.vd; return &d, nil }
func (b *ipfsBlob) Compressed() (io.ReadCloser, error)  { return b.t.Open(b.ctx, b.d) }

type ipfsImage struct {
	t   *Tree
	ctx context.Context
	d   ocispec.Descriptor
	raw []byte
	m   *v1.Manifest
}

func (i *ipfsImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *ipfsImage) MediaType() (types.MediaType, error) { return types.MediaType(i.d.MediaType), nil }
func (i *ipfsImage) RawConfigFile() ([]byte, error) {
	return i.t.ReadAll(i.ctx, toOCI(i.m.Config))
}

// Descriptor keeps the URLs and annotations of the manifest descriptor.
func (i *ipfsImage) Descriptor() (*v1.Descriptor, error) {
	return fromOCI(i.d)
}

func (i *ipfsImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &ipfsLayer{img: i, d: i.m.Config}, nil
	}
	for _, l := range i.m.Layers {
		if l.Digest == h {
			return &ipfsLayer{img: i, d: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in manifest %s", h, i.d.Digest)
}

type ipfsLayer struct {
	img *ipfsImage
	d   v1.Descriptor
}

func (l *ipfsLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *ipfsLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *ipfsLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *ipfsLayer) Descriptor() (*v1.Descriptor, error) { d := l.d; return &d, nil }
func (l *ipfsLayer) Compressed() (io.ReadCloser, error) {
	return l.img.t.Open(l.img.ctx, toOCI(l.d))
}

func toOCI(d v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size, URLs: d.URLs, Annotations: d.Annotations}
}

func fromOCI(d ocispec.Descriptor) (*v1.Descriptor, error) {
	h, err := v1.NewHash(d.Digest.String())
	if err != nil {
		return nil, err
	}
	out := &v1.Descriptor{MediaType: types.MediaType(d.MediaType), Digest: h, Size: d.Size, URLs: d.URLs, Annotations: d.Annotations, ArtifactType: d.ArtifactType}
	if d.Platform != nil {
		out.Platform = &v1.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant, OSVersion: d.Platform.OSVersion, OSFeatures: d.Platform.OSFeatures}
	}
	return out, nil
}
