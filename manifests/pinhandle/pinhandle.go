// Package pinhandle builds the pin handle of an IPFS-enabled image: one
// UnixFS directory that links every blob of the image, so that one
// recursive pin (or one `ipfs dag import` of a CAR rooted at it, or one
// pinning-service request) keeps the whole image.
//
// The blobs of an IPFS-enabled image are tied together only by `ipfs://`
// URLs inside JSON, not by IPLD links: pinning the root CID keeps one small
// block. The handle is laid out as an OCI image layout (manifests/ocidir
// builds it), so `ipfs get <handle>` also gives a directory skopeo and
// friends read as `oci:DIR`:
//
//	oci-layout            {"imageLayoutVersion":"1.0.0"}
//	index.json            an OCI index whose manifests[0] is the root descriptor
//	ipfs-root.json        the root descriptor itself (a link to the root CID)
//	blobs/sha256/<hex>    a link to each blob's CID (no byte is stored twice)
//	upstream              the upstream documents' layout (manifests/upstream), when the image has them
//
// Directories are dag-pb UnixFS directories (CIDv1, sha2-256), built as
// kubo's `ipfs add -r --cid-version=1 --raw-leaves` builds them: the same
// layout on disk added that way gives the same CID.
package pinhandle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Names in a pin handle.
const (
	LayoutFile = ocidir.LayoutFile // "oci-layout"
	IndexFile  = ocidir.IndexFile  // "index.json"
	RootFile   = "ipfs-root.json"
	BlobsDir   = ocidir.BlobsDir // "blobs"
	// UpstreamDir links the image's upstream documents (manifests/upstream),
	// when it has them.
	UpstreamDir = "upstream"
)

// Blob is one blob of an image tree as it was added to IPFS.
type Blob = ocidir.Blob

// Input describes one IPFS-enabled image.
type Input struct {
	// Root is the CID of the root descriptor (the image's ipfs:// name).
	Root cid.Cid
	// RootDescriptor is the JSON Root names. When nil, Build reads it from
	// the store.
	RootDescriptor []byte
	// Blobs lists every blob of the tree: indexes, manifests, configs and
	// layers (not the root descriptor). Order does not matter; a digest may
	// repeat with the same CID.
	Blobs []Blob
	// RefName, when set, becomes the org.opencontainers.image.ref.name
	// annotation of the index.json entry (e.g. "alpine:3.20"), the name
	// `oci:DIR:NAME` selects.
	RefName string
	// Upstream, when its CID is set, is the directory of the image's
	// upstream documents (manifests/upstream), linked as UpstreamDir so
	// that the one recursive pin keeps them too. A zero Tsize is read from
	// the directory's block.
	Upstream ocidir.Node
}

// Build writes the pin handle's directory nodes (and its two small JSON
// files) to store with PutBlock and returns the handle's CID. The blobs
// themselves must be in the store, or reachable by it, already: Build never
// reads them, only, for files of more than one block, their root block (to
// learn their cumulative size); with a store that cannot return blocks it
// computes that size from the blob size and the format's import settings.
//
// Stores that pin (kubo, embedded) pin every block PutBlock writes, so the
// handle comes back pinned recursively; with the car store, name the handle
// as the CAR root (car.Store.Finish).
func Build(ctx context.Context, store ipfs.Store, in Input) (cid.Cid, error) {
	if !in.Root.Defined() {
		return cid.Undef, fmt.Errorf("%w: no root CID", ErrInvalidInput)
	}
	rootDesc := in.RootDescriptor
	if rootDesc == nil {
		b, err := readSmall(ctx, store, in.Root)
		if err != nil {
			return cid.Undef, fmt.Errorf("reading root descriptor %s: %w", in.Root, err)
		}
		rootDesc = b
	}
	if err := checkRawCID(in.Root, rootDesc); err != nil {
		return cid.Undef, fmt.Errorf("%w: root descriptor: %w", ErrInvalidInput, err)
	}
	var target ocispec.Descriptor
	if err := json.Unmarshal(rootDesc, &target); err != nil || target.Digest == "" || target.MediaType == "" {
		return cid.Undef, fmt.Errorf("%w: root %s does not name an OCI descriptor", ErrInvalidInput, in.Root)
	}
	blobs, err := ocidir.Dedupe(in.Blobs)
	if err != nil {
		return cid.Undef, invalid(err)
	}
	tb, ok := blobs[target.Digest]
	if !ok {
		return cid.Undef, fmt.Errorf("%w: the root's target %s is not among the blobs", ErrInvalidInput, target.Digest)
	}
	if tb.Size != target.Size {
		return cid.Undef, fmt.Errorf("%w: the root's target %s has size %d, the blob %d", ErrInvalidInput, target.Digest, target.Size, tb.Size)
	}
	for _, u := range target.URLs {
		if c, err := ipfs.ParseCID(u); err == nil && strings.HasPrefix(u, "ipfs://") && ipfs.V1(c) != ipfs.V1(tb.CID) {
			return cid.Undef, fmt.Errorf("%w: the root's target %s says %s, the blob list %s", ErrInvalidInput, target.Digest, u, tb.CID)
		}
	}

	index, err := indexJSON(target, in.RefName)
	if err != nil {
		return cid.Undef, err
	}
	rootNode, err := ocidir.FileNode(ctx, store, Blob{Size: int64(len(rootDesc)), CID: in.Root})
	if err != nil {
		return cid.Undef, fmt.Errorf("pin handle: %s: %w", RootFile, invalid(err))
	}
	links := []ocidir.Link{{Name: RootFile, Node: rootNode}}
	if up := in.Upstream; up.CID.Defined() {
		if up.Tsize == 0 {
			if up, err = ocidir.DirNode(ctx, store, up.CID); err != nil {
				return cid.Undef, fmt.Errorf("pin handle: %s: %w", UpstreamDir, err)
			}
		}
		links = append(links, ocidir.Link{Name: UpstreamDir, Node: up})
	}
	n, err := ocidir.Build(ctx, store, ocidir.Layout{Index: index, Blobs: in.Blobs, Links: links})
	if err != nil {
		return cid.Undef, fmt.Errorf("pin handle: %w", invalid(err))
	}
	return n.CID, nil
}

// invalid marks the layout's invalid-input errors as the pin handle's.
func invalid(err error) error {
	if errors.Is(err, ocidir.ErrInvalidInput) && !errors.Is(err, ErrInvalidInput) {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return err
}

// SimulatedTsize is ocidir.SimulatedTsize: the cumulative size of the DAG
// `ipfs add` builds for a file of size bytes with the format's settings.
func SimulatedTsize(size int64) (uint64, error) { return ocidir.SimulatedTsize(size) }

// indexJSON is index.json: one entry, the root descriptor (urls included),
// with the ref name annotation when given. Marshalled with the ocispec
// types like every other document of the format.
func indexJSON(target ocispec.Descriptor, refName string) ([]byte, error) {
	if refName != "" {
		ann := map[string]string{}
		for k, v := range target.Annotations {
			ann[k] = v
		}
		ann[ocispec.AnnotationRefName] = refName
		target.Annotations = ann
	}
	return json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{target},
	})
}

// checkRawCID checks, when c is a raw sha2-256 CID, that it names data.
func checkRawCID(c cid.Cid, data []byte) error {
	if c.Type() != cid.Raw {
		return nil
	}
	dm, err := multihash.Decode(c.Hash())
	if err != nil {
		return err
	}
	if dm.Code != multihash.SHA2_256 {
		return nil
	}
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], dm.Digest) {
		return fmt.Errorf("its bytes do not hash to %s", c)
	}
	return nil
}
