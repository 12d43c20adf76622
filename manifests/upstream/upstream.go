// Package upstream keeps the source's own documents of a mirrored image:
// the exact bytes of its index and of every manifest kept, under their
// upstream digests, beside the IPFS-enabled image (whose documents are
// rewritten with ipfs:// URLs and so have other digests).
//
// They are stored as one OCI image layout in UnixFS (manifests/ocidir):
//
//	oci-layout            {"imageLayoutVersion":"1.0.0"}
//	index.json            an OCI index: manifests[0] is the source's top
//	                      document (its index, or its manifest), by its
//	                      upstream media type, digest and size; more
//	                      entries may follow (documents kept beside the
//	                      image, such as its referrers)
//	blobs/sha256/<hex>    each document's exact bytes, added as a file with
//	                      the format's import settings; and a link to each
//	                      config and layer the manifests name — the very
//	                      files of the IPFS-enabled image (no byte twice)
//
// so `ipfs get <CID>` is an OCI layout skopeo copies with the upstream
// digests. Only the platforms the entry keeps are there: the top index
// keeps its original bytes (and digest), and names manifests the layout
// does not hold (Image.Missing); readers answer 404 for those.
//
// Writing: Record wraps a source while the manifests writer reads it and
// keeps every document it reads (no second registry GET); Build stores an
// Input. Reading: Load reads a layout back, bounded, every document checked
// against its sha256 digest before use.
//
// Only a plain-mode copy has an upstream view: its layers are the source's.
// An eStargz or encrypted image has other layers, which upstream's
// manifests do not name, so no upstream layout is made for it.
package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Doc is one document (an index or a manifest) as its source gave it.
type Doc struct {
	// MediaType is the document's upstream media type (Docker's or OCI's),
	// as the source named it: what a registry sends as Content-Type.
	MediaType string
	Digest    digest.Digest
	Bytes     []byte
}

// Descriptor is the document's descriptor: media type, digest and size.
func (d Doc) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: int64(len(d.Bytes))}
}

// Input is what Build stores.
type Input struct {
	// Index becomes index.json's manifests: the first is the image (the
	// source's top document); more may follow. Each must be among Docs.
	Index []ocispec.Descriptor
	// Docs are the documents, byte for byte.
	Docs []Doc
	// Blobs are the configs and layers the manifests name, already in the
	// store (linked, never copied).
	Blobs []ocidir.Blob
}

// Build stores in as an upstream layout: each document added as a file
// (one raw block up to 256 KiB, else through Add), then the directory
// (manifests/ocidir). It returns the layout's directory, pinned on a
// pinning store. Every document is checked against its digest first.
func Build(ctx context.Context, store ipfs.Store, in Input) (ocidir.Node, error) {
	if len(in.Index) == 0 {
		return ocidir.Node{}, fmt.Errorf("%w: no document to name in index.json", ErrInvalid)
	}
	docs := map[digest.Digest]Doc{}
	for _, d := range in.Docs {
		if err := checkDoc(d); err != nil {
			return ocidir.Node{}, err
		}
		docs[d.Digest] = d
	}
	for _, e := range in.Index {
		d, ok := docs[e.Digest]
		if !ok {
			return ocidir.Node{}, fmt.Errorf("%w: index.json names %s, which is not among the documents", ErrInvalid, e.Digest)
		}
		if e.Size != int64(len(d.Bytes)) || !manifests.IsIndex(e.MediaType) && !manifests.IsManifest(e.MediaType) {
			return ocidir.Node{}, fmt.Errorf("%w: index.json entry %s (%s, %d bytes) does not describe its document", ErrInvalid, e.Digest, e.MediaType, e.Size)
		}
	}
	digests := make([]digest.Digest, 0, len(docs))
	for d := range docs {
		digests = append(digests, d)
	}
	slices.SortFunc(digests, func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
	blobs := slices.Clone(in.Blobs)
	for _, d := range digests {
		n, err := ocidir.PutFile(ctx, store, docs[d].Bytes)
		if err != nil {
			return ocidir.Node{}, fmt.Errorf("upstream: adding %s: %w", d, err)
		}
		blobs = append(blobs, ocidir.Blob{Digest: d, Size: int64(len(docs[d].Bytes)), CID: n.CID})
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: in.Index,
	})
	if err != nil {
		return ocidir.Node{}, err
	}
	n, err := ocidir.Build(ctx, store, ocidir.Layout{Index: index, Blobs: blobs})
	if err != nil {
		return ocidir.Node{}, fmt.Errorf("upstream: %w", err)
	}
	return n, nil
}

func checkDoc(d Doc) error {
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%w: document digest %q", ErrInvalid, d.Digest)
	}
	if len(d.Bytes) > manifests.MaxManifestSize {
		return fmt.Errorf("%w: document %s is %d bytes, over %d", ErrInvalid, d.Digest, len(d.Bytes), manifests.MaxManifestSize)
	}
	if got := digest.FromBytes(d.Bytes); got != d.Digest {
		return fmt.Errorf("upstream: document %s: %w (its bytes hash to %s)", d.Digest, manifests.ErrDigestMismatch, got)
	}
	if !manifests.IsIndex(d.MediaType) && !manifests.IsManifest(d.MediaType) {
		return fmt.Errorf("%w: document %s has media type %q, not an index or manifest", ErrInvalid, d.Digest, d.MediaType)
	}
	return nil
}

// children are the descriptors a document names: an index's manifests, a
// manifest's config and layers (and its subject is not followed).
type children struct {
	Manifests []ocispec.Descriptor `json:"manifests"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
}

func parseChildren(raw []byte) (children, error) {
	var c children
	err := json.Unmarshal(raw, &c)
	return c, err
}

// namedBlobs lists, once each, the configs and layers the manifests among
// docs name, as find gives them; one find lacks is an error.
func namedBlobs(docs []Doc, find func(ocispec.Descriptor) (ocidir.Blob, bool)) ([]ocidir.Blob, error) {
	var out []ocidir.Blob
	seen := map[digest.Digest]bool{}
	for _, d := range docs {
		if !manifests.IsManifest(d.MediaType) {
			continue
		}
		c, err := parseChildren(d.Bytes)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		named := slices.Clone(c.Layers)
		if c.Config != nil {
			named = append(named, *c.Config)
		}
		for _, n := range named {
			if seen[n.Digest] {
				continue
			}
			b, ok := find(n)
			if !ok {
				return nil, fmt.Errorf("manifest %s names %s, which is not there", d.Digest, n.Digest)
			}
			seen[n.Digest] = true
			out = append(out, b)
		}
	}
	return out, nil
}
