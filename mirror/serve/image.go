package serve

import (
	"context"
	"fmt"
	"sync"

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
// IPFS-enabled documents, byte for byte) and url-free (computed on first
// use, by one call shared by the requests that wait for it; see
// Server.view).
type image struct {
	root cid.Cid
	tree *manifests.Tree
	orig *view
	size int64

	mu       sync.Mutex
	stripped *view
	stripErr error // a failure that does not depend on who asked
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

func (im *image) strippedView() (*view, error, bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.stripped, im.stripErr, im.stripped != nil || im.stripErr != nil
}

// view returns the stored or the url-free view of im. The url-free one is
// computed once for all the requests that wait for it, and stops when none
// waits any more (the next request starts afresh); a request never waits
// behind another image's rewrite.
func (s *Server) view(ctx context.Context, im *image, strip bool) (*view, error) {
	if !strip {
		return im.orig, nil
	}
	if v, err, ok := im.strippedView(); ok {
		return v, err
	}
	v, _, err := s.stripping.do(ctx, im, func(ctx context.Context) (*view, error) {
		if v, err, ok := im.strippedView(); ok {
			return v, err
		}
		v, err := stripView(ctx, im.tree)
		if err == nil || ctx.Err() == nil {
			im.mu.Lock()
			im.stripped, im.stripErr = v, err
			im.mu.Unlock()
		}
		return v, err
	})
	return v, err
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

// stripView computes the url-free rewrite of a tree — the documents
// manifests.StripURLs makes (StripManifestJSON, StripIndexJSON), byte for
// byte: same blobs, no URL but a foreign layer's http(s) ones, new index
// and manifest digests. It reads nothing from IPFS (every document is in
// the tree) and rewrites each distinct document once, however often the
// tree repeats it, so its work is bounded by the tree's bytes (bounded at
// resolve, Options.MaxTreeBytes); it checks ctx before each document.
func stripView(ctx context.Context, t *manifests.Tree) (*view, error) {
	type key struct {
		d  digest.Digest
		mt string
	}
	v := &view{docs: map[digest.Digest]doc{}}
	done := map[key]ocispec.Descriptor{}
	busy := map[key]bool{}
	var visit func(d ocispec.Descriptor, depth int) (ocispec.Descriptor, error)
	visit = func(d ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
		k := key{d.Digest, d.MediaType}
		if out, ok := done[k]; ok {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return ocispec.Descriptor{}, err
		}
		if busy[k] || depth > maxStripDepth {
			return ocispec.Descriptor{}, fmt.Errorf("%w: %s nested too deep", errBadTree, d.Digest)
		}
		busy[k] = true
		raw, ok := t.Docs[d.Digest]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("%w: %s %s is not in the tree", errBadTree, d.MediaType, d.Digest)
		}
		var out []byte
		var err error
		switch {
		case manifests.IsIndex(d.MediaType):
			out, err = manifests.StripIndexJSON(raw, func(c ocispec.Descriptor) (digest.Digest, int64, error) {
				x, err := visit(c, depth+1)
				return x.Digest, x.Size, err
			})
		case manifests.IsManifest(d.MediaType):
			out, err = manifests.StripManifestJSON(raw)
		default:
			err = fmt.Errorf("%w: cannot serve a %q document", errBadTree, d.MediaType)
		}
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("stripping urls of %s: %w", d.Digest, err)
		}
		x := ocispec.Descriptor{MediaType: d.MediaType, Digest: digest.FromBytes(out), Size: int64(len(out))}
		v.docs[x.Digest] = doc{mediaType: d.MediaType, raw: out}
		done[k] = x
		return x, nil
	}
	target, err := visit(t.RootDescriptor, 0)
	if err != nil {
		return nil, fmt.Errorf("the url-free view of %s: %w", t.Root, err)
	}
	v.target = target
	return v, nil
}

// maxStripDepth bounds the nesting of the url-free rewrite (the reader
// bounds it already; this only guards the recursion).
const maxStripDepth = 16
