package serve

import (
	"context"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
)

// doc is an index or manifest, verified against its digest.
type doc struct {
	mediaType string
	raw       []byte
}

// view is what a name serves of an image: the document "latest" names and
// the documents reachable by digest.
type view struct {
	target ocispec.Descriptor
	docs   map[digest.Digest]doc
}

// image is a resolved IPFS-enabled image: its tree (every index and
// manifest read and verified) and its two views, as stored (the
// IPFS-enabled documents, byte for byte) and url-free (computed once, on
// first use).
type image struct {
	root cid.Cid
	tree *manifests.Tree
	orig *view
	size int64

	stripOnce sync.Once
	stripped  *view
	stripErr  error
}

func newImage(t *manifests.Tree) *image {
	v := &view{target: t.RootDescriptor, docs: map[digest.Digest]doc{}}
	var size int64
	for d, raw := range t.Docs {
		v.docs[d] = doc{mediaType: t.Descs[d].MediaType, raw: raw}
		size += int64(len(raw))
	}
	// Descriptors held, roughly; stripped documents about double the bytes.
	size = 2*size + int64(len(t.Descs))*256
	return &image{root: t.Root, tree: t, orig: v, size: size}
}

// view returns the stored or the url-free view.
func (im *image) view(strip bool) (*view, error) {
	if !strip {
		return im.orig, nil
	}
	im.stripOnce.Do(func() { im.stripped, im.stripErr = stripView(im.tree) })
	return im.stripped, im.stripErr
}

// blob returns the descriptor of a config or layer (or document) of the
// tree; the url-free view has the same blobs.
func (im *image) blob(d digest.Digest) (ocispec.Descriptor, bool) {
	desc, ok := im.tree.Descs[d]
	return desc, ok
}

// findDoc looks a document up by digest: in the view first, then (for the
// url-free view) among the stored documents, which are just as valid under
// their own digests.
func (im *image) findDoc(v *view, d digest.Digest) (doc, bool) {
	if x, ok := v.docs[d]; ok {
		return x, true
	}
	x, ok := im.orig.docs[d]
	return x, ok
}

// stripView computes the url-free rewrite of a tree with manifests.StripURLs:
// same blobs, ipfs:// URLs removed, new index and manifest digests. It reads
// nothing from IPFS: every document is already in the tree.
func stripView(t *manifests.Tree) (*view, error) {
	top, err := t.Top(context.Background())
	if err != nil {
		return nil, err
	}
	node, err := manifests.StripURLs(top)
	if err != nil {
		return nil, fmt.Errorf("stripping urls of %s: %w", t.Root, err)
	}
	v := &view{docs: map[digest.Digest]doc{}}
	target, err := collect(node, v.docs)
	if err != nil {
		return nil, fmt.Errorf("stripping urls of %s: %w", t.Root, err)
	}
	v.target = target
	return v, nil
}

type rawNode interface {
	RawManifest() ([]byte, error)
}

func collect(node any, docs map[digest.Digest]doc) (ocispec.Descriptor, error) {
	n, ok := node.(rawNode)
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("cannot serve a %T", node)
	}
	raw, err := n.RawManifest()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var mt string
	switch x := node.(type) {
	case v1.ImageIndex:
		m, err := x.MediaType()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		mt = string(m)
		im, err := x.IndexManifest()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		for _, c := range im.Manifests {
			var child any
			switch {
			case c.MediaType.IsIndex():
				child, err = x.ImageIndex(c.Digest)
			case c.MediaType.IsImage():
				child, err = x.Image(c.Digest)
			default:
				continue
			}
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			if _, err := collect(child, docs); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
	case v1.Image:
		m, err := x.MediaType()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		mt = string(m)
	}
	d := digest.FromBytes(raw)
	docs[d] = doc{mediaType: mt, raw: raw}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, nil
}
