package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// The bounds of Load.
const (
	// MaxIndexJSON bounds index.json.
	MaxIndexJSON = 1 << 20
	// MaxDocs bounds the documents one layout may hold.
	MaxDocs = 4096
	// MaxBytes bounds the bytes of its documents together (each is also
	// bounded by manifests.MaxManifestSize).
	MaxBytes = manifests.MaxTreeBytes
)

// Image is an upstream layout read back: every document reachable from
// index.json that the layout holds, read whole and checked against its
// digest and size.
type Image struct {
	// CID is the layout's directory.
	CID cid.Cid
	// Index is index.json's manifests: Index[0] is the image's top document.
	Index []ocispec.Descriptor

	docs    map[digest.Digest]Doc
	blobs   map[digest.Digest]cid.Cid
	missing map[digest.Digest]ocispec.Descriptor
	size    int64
}

// Top is the image's top document (the source's index, or its manifest).
func (im *Image) Top() Doc { return im.docs[im.Index[0].Digest] }

// Doc returns the document of digest d, when the layout holds it.
func (im *Image) Doc(d digest.Digest) (Doc, bool) {
	x, ok := im.docs[d]
	return x, ok
}

// Docs are every document held, by digest order.
func (im *Image) Docs() []Doc {
	out := make([]Doc, 0, len(im.docs))
	for _, d := range im.docs {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Doc) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out
}

// Blob returns the CID of a file of the layout's blobs/ (a config, a
// layer, or a document), unread and unverified: check what is read from it
// against d (manifests.VerifyReader).
func (im *Image) Blob(d digest.Digest) (cid.Cid, bool) {
	c, ok := im.blobs[d]
	return c, ok
}

// Missing lists the documents an index of the layout names that the
// layout does not hold, by digest order: the platforms the mirror did not
// keep.
func (im *Image) Missing() []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, len(im.missing))
	for _, d := range im.missing {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out
}

// Size is the bytes of the documents held (for caches).
func (im *Image) Size() int64 { return im.size }

// Load reads the upstream layout c names: index.json, the list of blobs,
// then every document reachable from index.json's entries through the
// indexes (MaxDocs, MaxBytes, manifests.MaxDepth), each read whole and
// checked against its digest and size before it is used (a mismatch is
// manifests.ErrDigestMismatch). A document an index names that the layout
// lacks is Missing, not an error; one index.json names is an error. The
// store must return blocks (ipfs.BlockGetter). A CID that is not an
// upstream layout is ErrNotUpstream.
func Load(ctx context.Context, store ipfs.Store, c cid.Cid) (*Image, error) {
	ic, err := ocidir.Lookup(ctx, store, c, ocidir.IndexFile)
	if errors.Is(err, ocidir.ErrNotLayout) || errors.Is(err, ipfs.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w: %v", c, ErrNotUpstream, err)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", c, err)
	}
	raw, err := ocidir.ReadFile(ctx, store, ic, MaxIndexJSON)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: index.json: %w", c, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%s: %w: index.json names no document", c, ErrNotUpstream)
	}
	blobs, err := ocidir.Blobs(ctx, store, c, 0)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", c, err)
	}
	im := &Image{CID: c, Index: idx.Manifests, docs: map[digest.Digest]Doc{}, blobs: blobs, missing: map[digest.Digest]ocispec.Descriptor{}}
	l := &loader{ctx: ctx, store: store, im: im}
	for _, d := range idx.Manifests {
		if err := l.visit(d, 1, true); err != nil {
			return nil, fmt.Errorf("upstream %s: %w", c, err)
		}
	}
	return im, nil
}

type loader struct {
	ctx   context.Context
	store ipfs.Store
	im    *Image
}

func (l *loader) visit(d ocispec.Descriptor, depth int, required bool) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if !manifests.IsIndex(d.MediaType) && !manifests.IsManifest(d.MediaType) {
		if required {
			return fmt.Errorf("%w: index.json names %s as %q, not an index or manifest", ErrNotUpstream, d.Digest, d.MediaType)
		}
		return nil // an index may name other things; they are not documents
	}
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 || d.Size < 0 || d.Size > manifests.MaxManifestSize {
		return fmt.Errorf("%w: descriptor %q of %d bytes", manifests.ErrInvalidDescriptor, d.Digest, d.Size)
	}
	if x, ok := l.im.docs[d.Digest]; ok {
		if int64(len(x.Bytes)) != d.Size {
			return fmt.Errorf("%w: %s is listed with two sizes", manifests.ErrInvalidDescriptor, d.Digest)
		}
		return nil
	}
	if depth > manifests.MaxDepth {
		return fmt.Errorf("%w: documents nested deeper than %d", manifests.ErrLimit, manifests.MaxDepth)
	}
	fc, ok := l.im.blobs[d.Digest]
	if !ok {
		if required {
			return fmt.Errorf("%w: index.json names %s, which the layout does not hold", ErrNotUpstream, d.Digest)
		}
		l.im.missing[d.Digest] = ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Platform: d.Platform}
		return nil
	}
	if len(l.im.docs) >= MaxDocs || l.im.size+d.Size > MaxBytes {
		return fmt.Errorf("%w: more than %d documents or %d bytes", manifests.ErrLimit, MaxDocs, MaxBytes)
	}
	raw, err := ocidir.ReadFile(l.ctx, l.store, fc, d.Size)
	if errors.Is(err, ocidir.ErrLimit) {
		return fmt.Errorf("document %s: %w: longer than its %d bytes", d.Digest, manifests.ErrDigestMismatch, d.Size)
	}
	if err != nil {
		return fmt.Errorf("document %s: %w", d.Digest, err)
	}
	if int64(len(raw)) != d.Size || digest.FromBytes(raw) != d.Digest {
		return fmt.Errorf("document %s (%s): %w", d.Digest, fc, manifests.ErrDigestMismatch)
	}
	l.im.docs[d.Digest] = Doc{MediaType: d.MediaType, Digest: d.Digest, Bytes: raw}
	l.im.size += d.Size
	if !manifests.IsIndex(d.MediaType) {
		return nil
	}
	c, err := parseChildren(raw)
	if err != nil {
		return fmt.Errorf("index %s: %w", d.Digest, err)
	}
	for _, m := range c.Manifests {
		if err := l.visit(m, depth+1, false); err != nil {
			return err
		}
	}
	return nil
}

// Input is what Build takes to make this layout again (the same CID):
// index.json's entries, the documents held, and the configs and layers
// their manifests name, by the CIDs the layout links. A config or layer a
// manifest names that the layout lacks is an error.
func (im *Image) Input() (Input, error) {
	in := Input{Index: slices.Clone(im.Index), Docs: im.Docs()}
	var err error
	in.Blobs, err = namedBlobs(in.Docs, func(d ocispec.Descriptor) (ocidir.Blob, bool) {
		c, ok := im.blobs[d.Digest]
		return ocidir.Blob{Digest: d.Digest, Size: d.Size, CID: c}, ok
	})
	if err != nil {
		return Input{}, fmt.Errorf("%w: layout %s: %w", ErrNotUpstream, im.CID, err)
	}
	return in, nil
}
