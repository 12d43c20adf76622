package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Tree is a resolved IPFS-enabled image: the root descriptor and every
// index and manifest under it, each verified against its digest. Config and
// layer blobs are read on demand (Open), verified while they stream.
type Tree struct {
	Root cid.Cid
	// RootDescriptor is the descriptor the root CID names.
	RootDescriptor ocispec.Descriptor
	// Docs holds the raw bytes of every index and manifest, by digest.
	Docs map[digest.Digest][]byte
	// Descs holds every descriptor met in the tree (documents, configs,
	// layers), by digest.
	Descs map[digest.Digest]ocispec.Descriptor

	store ipfs.Store
}

// Limits are the budget of one Resolve; a zero field takes its default
// (MaxDepth, MaxDescriptors, MaxTreeBytes). Descriptors and TreeBytes are
// counted as the writers see the tree: a child listed twice counts twice,
// with everything under it.
type Limits struct {
	Depth       int
	Descriptors int64
	TreeBytes   int64
}

// DefaultLimits are the limits Resolve applies.
func DefaultLimits() Limits {
	return Limits{Depth: MaxDepth, Descriptors: MaxDescriptors, TreeBytes: MaxTreeBytes}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Depth <= 0 {
		l.Depth = d.Depth
	}
	if l.Descriptors <= 0 {
		l.Descriptors = d.Descriptors
	}
	if l.TreeBytes <= 0 {
		l.TreeBytes = d.TreeBytes
	}
	return l
}

// Resolve reads the root descriptor c names and every index and manifest
// under it, within DefaultLimits. ctx bounds the whole walk (an unknown CID
// waits for the network until then) and stops it when cancelled.
//
// Every descriptor of the tree is checked before anything is read through
// it: a size < 0, a malformed or non-sha256 digest, or one digest listed
// with two sizes is ErrInvalidDescriptor (an ErrDigestMismatch); a tree over
// a limit is ErrLimit (an ErrNotIPFSImage). Each distinct document is read
// once and verified against its digest and size. A Tree returned is safe
// for any writer to walk: its expanded size is within the limits.
func Resolve(ctx context.Context, store ipfs.Store, c cid.Cid) (*Tree, error) {
	return ResolveLimits(ctx, store, c, Limits{})
}

// ResolveLimits is Resolve with other limits (zero fields: the defaults).
func ResolveLimits(ctx context.Context, store ipfs.Store, c cid.Cid, lim Limits) (*Tree, error) {
	t := &Tree{Root: c, Docs: map[digest.Digest][]byte{}, Descs: map[digest.Digest]ocispec.Descriptor{}, store: store}
	rc, err := store.Cat(ctx, c, 0, MaxManifestSize+1)
	if err != nil {
		return nil, fmt.Errorf("reading root %s: %w", c, err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, MaxManifestSize+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("reading root %s: %w", c, err)
	}
	if len(raw) > MaxManifestSize {
		return nil, fmt.Errorf("root %s: %w: more than the %d-byte manifest limit", c, ErrLimit, MaxManifestSize)
	}
	var d ocispec.Descriptor
	if err := json.Unmarshal(raw, &d); err != nil || d.Digest == "" || d.Size <= 0 {
		return nil, fmt.Errorf("%s: %w: its content is not an OCI descriptor", c, ErrNotIPFSImage)
	}
	if !IsIndex(d.MediaType) && !IsManifest(d.MediaType) {
		return nil, fmt.Errorf("%s: %w: root descriptor has media type %q", c, ErrNotIPFSImage, d.MediaType)
	}
	if _, err := CID(d); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c, ErrNotIPFSImage, err)
	}
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c, ErrNotIPFSImage, err)
	}
	if err := checkDescriptor(d); err != nil {
		return nil, fmt.Errorf("root %s: %w", c, err)
	}
	t.RootDescriptor = d
	w := &walker{t: t, lim: lim.withDefaults(), memo: map[digest.Digest]cost{}}
	if _, err := w.visit(ctx, d, 1); err != nil {
		return nil, err
	}
	return t, nil
}

// checkDescriptor refuses a descriptor no content can match.
func checkDescriptor(d ocispec.Descriptor) error {
	if d.Size < 0 {
		return fmt.Errorf("%s %s: %w: negative size %d", kindOf(d.MediaType), d.Digest, ErrInvalidDescriptor, d.Size)
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("%s %q: %w: %v", kindOf(d.MediaType), d.Digest, ErrInvalidDescriptor, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%s %s: %w: digest algorithm %s (only sha256 can be verified)", kindOf(d.MediaType), d.Digest, ErrInvalidDescriptor, d.Digest.Algorithm())
	}
	return nil
}

func kindOf(mt string) string {
	switch {
	case IsIndex(mt):
		return "index"
	case IsManifest(mt):
		return "manifest"
	}
	return "blob"
}

// walker is the state of one Resolve: the visited documents with their
// costs, the bytes read.
type walker struct {
	t    *Tree
	lim  Limits
	read int64
	memo map[digest.Digest]cost
}

// cost is what a document weighs with all that lies under it, counted per
// occurrence.
type cost struct {
	descs  int64
	bytes  int64
	height int // documents on the longest path down, d included
	kind   string
}

// note records a descriptor of the tree, refusing one digest with two sizes.
func (w *walker) note(d ocispec.Descriptor, doc bool) error {
	if err := checkDescriptor(d); err != nil {
		return err
	}
	if prev, ok := w.t.Descs[d.Digest]; ok {
		if prev.Size != d.Size {
			return fmt.Errorf("%s: %w: listed with two sizes, %d and %d", d.Digest, ErrInvalidDescriptor, prev.Size, d.Size)
		}
		if !doc {
			return nil
		}
	}
	w.t.Descs[d.Digest] = d
	return nil
}

func (w *walker) over(c cost, d ocispec.Descriptor) error {
	what := kindOf(d.MediaType) + " " + d.Digest.String()
	if c.descs > w.lim.Descriptors {
		return fmt.Errorf("%s: %w: more than %d descriptors (children listed again count again)", what, ErrLimit, w.lim.Descriptors)
	}
	if c.bytes > w.lim.TreeBytes {
		return fmt.Errorf("%s: %w: more than %d bytes of documents (children listed again count again)", what, ErrLimit, w.lim.TreeBytes)
	}
	return nil
}

// visit reads document d (at depth, the root's target at 1) and what lies
// under it, once per digest, and returns its cost.
func (w *walker) visit(ctx context.Context, d ocispec.Descriptor, depth int) (cost, error) {
	if err := ctx.Err(); err != nil {
		return cost{}, err
	}
	kind := kindOf(d.MediaType)
	if c, ok := w.memo[d.Digest]; ok {
		if c.kind != kind {
			return cost{}, fmt.Errorf("%s: %w: listed both as %s and as %s", d.Digest, ErrInvalidDescriptor, c.kind, kind)
		}
		if depth+c.height-1 > w.lim.Depth {
			return cost{}, fmt.Errorf("%s %s: %w: documents nested %d deep, the limit is %d", kind, d.Digest, ErrLimit, depth+c.height-1, w.lim.Depth)
		}
		return c, nil
	}
	if depth > w.lim.Depth {
		return cost{}, fmt.Errorf("%s %s: %w: documents nested more than %d deep", kind, d.Digest, ErrLimit, w.lim.Depth)
	}
	if err := w.note(d, true); err != nil {
		return cost{}, err
	}
	if d.Size > MaxManifestSize {
		return cost{}, fmt.Errorf("%s %s: %w: %d bytes is over the %d-byte manifest limit", kind, d.Digest, ErrLimit, d.Size, MaxManifestSize)
	}
	if w.read+d.Size > w.lim.TreeBytes {
		return cost{}, fmt.Errorf("%s %s: %w: more than %d bytes of documents", kind, d.Digest, ErrLimit, w.lim.TreeBytes)
	}
	raw, err := w.t.ReadAll(ctx, d)
	if err != nil {
		return cost{}, err
	}
	w.read += int64(len(raw))
	w.t.Docs[d.Digest] = raw
	c := cost{descs: 1, bytes: int64(len(raw)), height: 1, kind: kind}
	var header struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		return cost{}, fmt.Errorf("%s %s: %w: %w", kind, d.Digest, ErrNotIPFSImage, err)
	}
	if header.MediaType != "" && header.MediaType != d.MediaType {
		return cost{}, fmt.Errorf("%s %s: %w: the document says it is a %s", kind, d.Digest, ErrInvalidDescriptor, header.MediaType)
	}
	switch kind {
	case "index":
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return cost{}, fmt.Errorf("index %s: %w: %w", d.Digest, ErrNotIPFSImage, err)
		}
		if err := w.over(cost{descs: c.descs + int64(len(idx.Manifests)), bytes: c.bytes}, d); err != nil {
			return cost{}, err
		}
		for _, m := range idx.Manifests {
			if _, err := CID(m); err != nil {
				return cost{}, fmt.Errorf("index %s: %w", d.Digest, err)
			}
			if IsIndex(m.MediaType) || IsManifest(m.MediaType) {
				cc, err := w.visit(ctx, m, depth+1)
				if err != nil {
					return cost{}, err
				}
				c.descs += cc.descs
				c.bytes += cc.bytes
				c.height = max(c.height, cc.height+1)
			} else {
				if err := w.note(m, false); err != nil {
					return cost{}, fmt.Errorf("index %s: %w", d.Digest, err)
				}
				c.descs++
			}
			if err := w.over(c, d); err != nil {
				return cost{}, err
			}
		}
	case "manifest":
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return cost{}, fmt.Errorf("manifest %s: %w: %w", d.Digest, ErrNotIPFSImage, err)
		}
		c.descs += 1 + int64(len(m.Layers))
		if err := w.over(c, d); err != nil {
			return cost{}, err
		}
		if m.Config.Size > MaxManifestSize {
			return cost{}, fmt.Errorf("manifest %s: config %s: %w: %d bytes is over the %d-byte limit of a config", d.Digest, m.Config.Digest, ErrLimit, m.Config.Size, MaxManifestSize)
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if _, err := CID(b); err != nil {
				return cost{}, fmt.Errorf("manifest %s: %w", d.Digest, err)
			}
			if err := w.note(b, false); err != nil {
				return cost{}, fmt.Errorf("manifest %s: %w", d.Digest, err)
			}
		}
	}
	w.memo[d.Digest] = c
	return c, nil
}

// Open streams the blob d names from IPFS, verifying size and digest as it
// goes: a mismatch is returned by Read in place of io.EOF.
func (t *Tree) Open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	c, err := CID(d)
	if err != nil {
		return nil, err
	}
	rc, err := t.store.Cat(ctx, c, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("blob %s (%s): %w", d.Digest, c, err)
	}
	vr, err := NewVerifyReader(rc, d.Digest, d.Size, fmt.Sprintf("blob %s (ipfs://%s)", d.Digest, c))
	if err != nil {
		rc.Close()
		return nil, err
	}
	return vr, nil
}

// OpenRange streams length bytes at offset of the blob d names, unverified
// (a range cannot be checked against the whole blob's digest).
func (t *Tree) OpenRange(ctx context.Context, d ocispec.Descriptor, offset, length int64) (io.ReadCloser, error) {
	c, err := CID(d)
	if err != nil {
		return nil, err
	}
	return t.store.Cat(ctx, c, offset, length)
}

// ReadAll reads and verifies a small blob (a document or a config), of at
// most MaxManifestSize bytes.
func (t *Tree) ReadAll(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	if b, ok := t.Docs[d.Digest]; ok {
		return b, nil
	}
	if d.Size > MaxManifestSize {
		return nil, fmt.Errorf("%s %s: %w: %d bytes is over the %d-byte limit of what is read whole", kindOf(d.MediaType), d.Digest, ErrLimit, d.Size, MaxManifestSize)
	}
	rc, err := t.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := bytes.NewBuffer(make([]byte, 0, max(d.Size, 0)))
	if _, err := io.Copy(buf, rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Manifests returns the image manifests of the tree with their platforms
// (nil for a single-manifest image), in index order.
func (t *Tree) Manifests() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	var visit func(d ocispec.Descriptor)
	visit = func(d ocispec.Descriptor) {
		switch {
		case IsIndex(d.MediaType):
			var idx ocispec.Index
			_ = json.Unmarshal(t.Docs[d.Digest], &idx)
			for _, m := range idx.Manifests {
				visit(m)
			}
		case IsManifest(d.MediaType):
			out = append(out, d)
		}
	}
	visit(t.RootDescriptor)
	return out
}

// Walk calls fn for every descriptor of the tree once, parents before
// children (root target, indexes, manifests, config, layers).
func (t *Tree) Walk(fn func(d ocispec.Descriptor, depth int) error) error {
	seen := map[digest.Digest]bool{}
	var visit func(d ocispec.Descriptor, depth int) error
	visit = func(d ocispec.Descriptor, depth int) error {
		if err := fn(d, depth); err != nil {
			return err
		}
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		switch {
		case IsIndex(d.MediaType):
			var idx ocispec.Index
			if err := json.Unmarshal(t.Docs[d.Digest], &idx); err != nil {
				return err
			}
			for _, m := range idx.Manifests {
				if err := visit(m, depth+1); err != nil {
					return err
				}
			}
		case IsManifest(d.MediaType):
			var m ocispec.Manifest
			if err := json.Unmarshal(t.Docs[d.Digest], &m); err != nil {
				return err
			}
			if err := fn(m.Config, depth+1); err != nil {
				return err
			}
			for _, l := range m.Layers {
				if err := fn(l, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(t.RootDescriptor, 0)
}
