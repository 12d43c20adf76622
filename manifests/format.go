// Package manifests writes and reads the IPFS-enabled image format of
// stargz-snapshotter (docs/ipfs.md) and nerdctl: an OCI image tree whose
// every descriptor carries urls: ["ipfs://<CIDv1>"], rooted at a small JSON
// descriptor whose CID names the image.
//
// The documents are re-marshalled with the ocispec Go structs, exactly as
// containerd's images/converter (docker2oci) does, so that the same source
// image gives the same documents (and CIDs) here and in nerdctl. The root
// descriptor carries mediaType, digest, size and urls only, never a source's
// annotations (docs/format.md, "The root descriptor"): the root CID is
// nerdctl's too except where nerdctl's root descriptor keeps annotations
// (an image it loaded from an archive).
package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Docker media types, and what docker2oci turns them into.
const (
	DockerManifestList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerManifest       = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfig         = "application/vnd.docker.container.image.v1+json"
	DockerLayerGzip      = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerLayer          = "application/vnd.docker.image.rootfs.diff.tar"
	DockerForeignGzip    = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	DockerForeign        = "application/vnd.docker.image.rootfs.foreign.diff.tar"
	ociNonDistributable  = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	ociNonDistributableZ = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)

// The reader's bounds (docs/format.md, "Limits"). Resolve applies them to
// every tree, for every caller; Limits overrides the last three.
const (
	// MaxManifestSize bounds every JSON document (index, manifest, root
	// descriptor) and every config, which are read whole (as distribution
	// bounds manifests).
	MaxManifestSize = 4 << 20
	// MaxDepth bounds the documents on any path from the root descriptor:
	// the root's target is at depth 1, a manifest under one index at 2.
	MaxDepth = 8
	// MaxDescriptors bounds the descriptors of a tree (documents, configs,
	// layers, other index children), counted as the writers see the tree:
	// a child listed twice counts twice, with all that lies under it.
	MaxDescriptors = 10000
	// MaxTreeBytes bounds the bytes of a tree's documents, counted the
	// same way (which also bounds what is read from IPFS).
	MaxTreeBytes = 32 << 20
)

// Sentinel errors.
var (
	// ErrDigestMismatch: bytes read from IPFS do not hash to their descriptor.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrNotIPFSImage: the CID does not name an IPFS-enabled image.
	ErrNotIPFSImage = errors.New("not an IPFS-enabled image")
	// ErrNoURL: a descriptor has no ipfs:// URL.
	ErrNoURL = errors.New("descriptor has no ipfs:// URL")
	// ErrUnsupported: a media type the format cannot carry.
	ErrUnsupported = errors.New("unsupported media type")
	// ErrInvalidDescriptor: a descriptor no content can match (a negative
	// size, a malformed or non-sha256 digest, one digest with two sizes).
	// It is an integrity failure: errors.Is(err, ErrDigestMismatch) holds.
	ErrInvalidDescriptor error = &kindError{"invalid descriptor", ErrDigestMismatch}
	// ErrLimit: the tree is over one of the reader's bounds (MaxDepth,
	// MaxDescriptors, MaxTreeBytes, MaxManifestSize). Such a tree is not an
	// image mirror reads: errors.Is(err, ErrNotIPFSImage) holds.
	ErrLimit error = &kindError{"over the format reader's limits", ErrNotIPFSImage}
)

// kindError is a sentinel that is also its broader kind.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// DockerToOCI maps a Docker media type to its OCI counterpart (others pass).
func DockerToOCI(mt string) string {
	switch mt {
	case DockerManifestList:
		return ocispec.MediaTypeImageIndex
	case DockerManifest:
		return ocispec.MediaTypeImageManifest
	case DockerLayerGzip:
		return ocispec.MediaTypeImageLayerGzip
	case DockerForeignGzip:
		return ociNonDistributableZ
	case DockerLayer:
		return ocispec.MediaTypeImageLayer
	case DockerForeign:
		return ociNonDistributable
	case DockerConfig:
		return ocispec.MediaTypeImageConfig
	}
	return mt
}

// IsDocker reports whether mt is one of Docker's media types.
func IsDocker(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.docker.")
}

// IsIndex reports whether mt names an index or manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == DockerManifestList
}

// IsManifest reports whether mt names an image manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == DockerManifest
}

// MediaTypeOf returns the media type of an index or manifest document: mt
// (what its descriptor or source says) when that names an index or a
// manifest, else the document's own mediaType field when that does, else
// what its content says: "manifests" makes an index, "config" and "layers"
// a manifest; Docker's when its entries or config are Docker's (Docker's
// documents always carry the field, OCI's may omit it), OCI's otherwise.
// It is "" when raw is neither, so that an absent media type is inferred
// and never written empty.
func MediaTypeOf(mt string, raw []byte) string {
	if IsIndex(mt) || IsManifest(mt) {
		return mt
	}
	var doc struct {
		MediaType string              `json:"mediaType"`
		Manifests []json.RawMessage   `json:"manifests"`
		Config    *ocispec.Descriptor `json:"config"`
		Layers    []json.RawMessage   `json:"layers"`
	}
	if json.Unmarshal(raw, &doc) != nil {
		return ""
	}
	if IsIndex(doc.MediaType) || IsManifest(doc.MediaType) {
		return doc.MediaType
	}
	switch {
	case doc.Manifests != nil && doc.Config == nil:
		for _, m := range doc.Manifests {
			var d struct {
				MediaType string `json:"mediaType"`
			}
			if json.Unmarshal(m, &d) == nil && IsDocker(d.MediaType) {
				return DockerManifestList
			}
		}
		return ocispec.MediaTypeImageIndex
	case doc.Config != nil && doc.Layers != nil && doc.Manifests == nil:
		if doc.Config.MediaType == DockerConfig {
			return DockerManifest
		}
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// CID returns the CID of the first ipfs:// URL of d.
func CID(d ocispec.Descriptor) (cid.Cid, error) {
	for _, u := range d.URLs {
		if strings.HasPrefix(u, "ipfs://") {
			c, err := ipfs.ParseCID(u)
			if err != nil {
				return cid.Undef, fmt.Errorf("descriptor %s: %w", d.Digest, err)
			}
			return c, nil
		}
	}
	return cid.Undef, fmt.Errorf("descriptor %s: %w", d.Digest, ErrNoURL)
}
