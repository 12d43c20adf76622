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

// Resolve reads the root descriptor c names and every index and manifest
// under it. ctx bounds the whole walk (an unknown CID waits for the network
// until then).
func Resolve(ctx context.Context, store ipfs.Store, c cid.Cid) (*Tree, error) {
	t := &Tree{Root: c, Docs: map[digest.Digest][]byte{}, Descs: map[digest.Digest]ocispec.Descriptor{}, store: store}
	rc, err := store.Cat(ctx, c, 0, MaxManifestSize+1)
	if err != nil {
		return nil, fmt.Errorf("reading root %s: %w", c, err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("reading root %s: %w", c, err)
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
	t.RootDescriptor = d
	if err := t.walk(ctx, d, 0); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tree) walk(ctx context.Context, d ocispec.Descriptor, depth int) error {
	if depth > 8 {
		return fmt.Errorf("index %s: nested too deep", d.Digest)
	}
	t.Descs[d.Digest] = d
	if _, ok := t.Docs[d.Digest]; ok {
		return nil
	}
	if d.Size > MaxManifestSize {
		return fmt.Errorf("%s %s: %d bytes is over the %d-byte manifest limit", d.MediaType, d.Digest, d.Size, MaxManifestSize)
	}
	raw, err := t.ReadAll(ctx, d)
	if err != nil {
		return err
	}
	t.Docs[d.Digest] = raw
	switch {
	case IsIndex(d.MediaType):
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("index %s: %w", d.Digest, err)
		}
		for _, m := range idx.Manifests {
			if _, err := CID(m); err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			if IsIndex(m.MediaType) || IsManifest(m.MediaType) {
				if err := t.walk(ctx, m, depth+1); err != nil {
					return err
				}
			} else {
				t.Descs[m.Digest] = m
			}
		}
	case IsManifest(d.MediaType):
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if _, err := CID(b); err != nil {
				return fmt.Errorf("manifest %s: %w", d.Digest, err)
			}
			if _, ok := t.Descs[b.Digest]; !ok {
				t.Descs[b.Digest] = b
			}
		}
	}
	return nil
}

// Open streams the blob d names from IPFS, verifying size and digest as it
// goes: a mismatch is returned by Read in place of io.EOF.
func (t *Tree) Open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
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

// ReadAll reads and verifies a small blob (a document or a config).
func (t *Tree) ReadAll(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	if b, ok := t.Docs[d.Digest]; ok {
		return b, nil
	}
	rc, err := t.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
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
