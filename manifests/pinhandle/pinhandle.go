// Package pinhandle builds the pin handle of an IPFS-enabled image: one
// UnixFS directory that links every blob of the image, so that one
// recursive pin (or one `ipfs dag import` of a CAR rooted at it, or one
// pinning-service request) keeps the whole image.
//
// The blobs of an IPFS-enabled image are tied together only by `ipfs://`
// URLs inside JSON, not by IPLD links: pinning the root CID keeps one small
// block. The handle is laid out as an OCI image layout, so `ipfs get
// <handle>` also gives a directory skopeo and friends read as `oci:DIR`:
//
//	oci-layout            {"imageLayoutVersion":"1.0.0"}
//	index.json            an OCI index whose manifests[0] is the root descriptor
//	ipfs-root.json        the root descriptor itself (a link to the root CID)
//	blobs/sha256/<hex>    a link to each blob's CID (no byte is stored twice)
//
// Directories are dag-pb UnixFS directories (CIDv1, sha2-256), built with
// boxo's unixfs/io directories as kubo's `ipfs add -r --cid-version=1
// --raw-leaves` builds them: sorted links, cumulative sizes (Tsize), HAMT
// sharding past the same threshold. The same layout on disk added that way
// gives the same CID.
package pinhandle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Names in a pin handle.
const (
	LayoutFile = ocispec.ImageLayoutFile // "oci-layout"
	IndexFile  = ocispec.ImageIndexFile  // "index.json"
	RootFile   = "ipfs-root.json"
	BlobsDir   = ocispec.ImageBlobsDir // "blobs"
)

// Blob is one blob of an image tree as it was added to IPFS.
type Blob struct {
	Digest digest.Digest
	Size   int64
	CID    cid.Cid
}

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
}

// layoutJSON is the oci-layout file's content, as `ipfs add` of the file
// written by most tools (no trailing newline).
var layoutJSON = []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)

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
	blobs, err := dedupe(in.Blobs)
	if err != nil {
		return cid.Undef, err
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

	dserv := &putter{store: store}
	sizer := newSizer(store)

	// blobs/<algorithm>/<encoded>
	byAlg := map[string][]Blob{}
	for _, b := range blobs {
		alg := b.Digest.Algorithm().String()
		byAlg[alg] = append(byAlg[alg], b)
	}
	tsizes, err := sizer.tsizes(ctx, blobs)
	if err != nil {
		return cid.Undef, err
	}
	blobsDir, err := newDir(dserv)
	if err != nil {
		return cid.Undef, err
	}
	for _, alg := range sortedKeys(byAlg) {
		algDir, err := newDir(dserv)
		if err != nil {
			return cid.Undef, err
		}
		list := byAlg[alg]
		slices.SortFunc(list, func(a, b Blob) int { return strings.Compare(a.Digest.Encoded(), b.Digest.Encoded()) })
		for _, b := range list {
			if err := algDir.AddChild(ctx, b.Digest.Encoded(), &linkNode{c: b.CID, size: tsizes[b.Digest]}); err != nil {
				return cid.Undef, fmt.Errorf("pin handle: blobs/%s/%s: %w", alg, b.Digest.Encoded(), err)
			}
		}
		nd, err := dserv.commit(ctx, algDir)
		if err != nil {
			return cid.Undef, err
		}
		if err := blobsDir.AddChild(ctx, alg, nd); err != nil {
			return cid.Undef, err
		}
	}
	blobsNode, err := dserv.commit(ctx, blobsDir)
	if err != nil {
		return cid.Undef, err
	}

	index, err := indexJSON(target, in.RefName)
	if err != nil {
		return cid.Undef, err
	}
	root, err := newDir(dserv)
	if err != nil {
		return cid.Undef, err
	}
	rootTsize, err := sizer.tsize(ctx, Blob{Size: int64(len(rootDesc)), CID: in.Root})
	if err != nil {
		return cid.Undef, fmt.Errorf("pin handle: %s: %w", RootFile, err)
	}
	entries := []struct {
		name string
		nd   ipld.Node
		data []byte
	}{
		{name: BlobsDir, nd: blobsNode},
		{name: IndexFile, data: index},
		{name: LayoutFile, data: layoutJSON},
		{name: RootFile, nd: &linkNode{c: in.Root, size: rootTsize}},
	}
	for _, e := range entries {
		nd := e.nd
		if nd == nil {
			if nd, err = putFile(ctx, store, sizer, e.data); err != nil {
				return cid.Undef, fmt.Errorf("pin handle: %s: %w", e.name, err)
			}
		}
		if err := root.AddChild(ctx, e.name, nd); err != nil {
			return cid.Undef, fmt.Errorf("pin handle: %s: %w", e.name, err)
		}
	}
	rootNode, err := dserv.commit(ctx, root)
	if err != nil {
		return cid.Undef, err
	}
	return rootNode.Cid(), nil
}

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

// putFile stores a small file as `ipfs add --raw-leaves --cid-version=1`
// would: one raw block when it fits in a chunk, else through Add.
func putFile(ctx context.Context, store ipfs.Store, sizer *sizer, data []byte) (ipld.Node, error) {
	if len(data) <= ipfs.ChunkSize {
		c, err := store.PutBlock(ctx, cid.Raw, data)
		if err != nil {
			return nil, err
		}
		return &linkNode{c: c, size: uint64(len(data))}, nil
	}
	c, err := store.Add(ctx, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	ts, err := sizer.tsize(ctx, Blob{Size: int64(len(data)), CID: c})
	if err != nil {
		return nil, err
	}
	return &linkNode{c: c, size: ts}, nil
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

func dedupe(list []Blob) (map[digest.Digest]Blob, error) {
	out := make(map[digest.Digest]Blob, len(list))
	for _, b := range list {
		if err := b.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: blob %q: %w", ErrInvalidInput, b.Digest, err)
		}
		if !b.CID.Defined() {
			return nil, fmt.Errorf("%w: blob %s has no CID", ErrInvalidInput, b.Digest)
		}
		if b.Size < 0 {
			return nil, fmt.Errorf("%w: blob %s has size %d", ErrInvalidInput, b.Digest, b.Size)
		}
		b.CID = ipfs.V1(b.CID)
		if o, ok := out[b.Digest]; ok {
			if o.CID != b.CID || o.Size != b.Size {
				return nil, fmt.Errorf("%w: blob %s is listed as %s (%d bytes) and %s (%d bytes)", ErrInvalidInput, b.Digest, o.CID, o.Size, b.CID, b.Size)
			}
			continue
		}
		out[b.Digest] = b
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dirPrefix is the CID prefix of directories from `ipfs add -r
// --cid-version=1`.
func dirPrefix() cid.Prefix {
	p, _ := dag.PrefixForCidVersion(1)
	p.MhType = multihash.SHA2_256
	p.MhLength = -1
	return p
}

func newDir(dserv ipld.DAGService) (uio.Directory, error) {
	return uio.NewDirectory(dserv, uio.WithCidBuilder(dirPrefix()))
}
