// Package ocidir builds and reads OCI image layouts stored as UnixFS
// directories, over any ipfs.Store: the one directory builder of the
// module. The pin handle (manifests/pinhandle) and the upstream documents
// (manifests/upstream) are both such layouts:
//
//	oci-layout            {"imageLayoutVersion":"1.0.0"}
//	index.json            the layout's index (given as bytes)
//	blobs/sha256/<hex>    a link to each blob's CID (no byte is stored twice)
//	…                     more top-level links the caller names
//
// Directories are dag-pb UnixFS directories (CIDv1, sha2-256), built with
// boxo's unixfs/io directories as kubo's `ipfs add -r --cid-version=1
// --raw-leaves` builds them: sorted links, cumulative sizes (Tsize), HAMT
// sharding past the same threshold. The same layout on disk added that way
// gives the same CID, and `ipfs get <CID>` gives a directory skopeo and
// friends read as `oci:DIR`.
//
// Reading (ReadDir, Blobs, ReadFile) is bounded: entries, blocks and bytes.
package ocidir

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Names in a layout.
const (
	LayoutFile = ocispec.ImageLayoutFile // "oci-layout"
	IndexFile  = ocispec.ImageIndexFile  // "index.json"
	BlobsDir   = ocispec.ImageBlobsDir   // "blobs"
)

// LayoutJSON is the oci-layout file's content, as `ipfs add` of the file
// written by most tools (no trailing newline).
var LayoutJSON = []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)

// Blob is one file of blobs/<algorithm>/<encoded>: a blob already in the
// store (or reachable by it), as it was added.
type Blob struct {
	Digest digest.Digest
	Size   int64
	CID    cid.Cid
}

// Node is a DAG in the store and its cumulative size (what a directory
// link to it records as Tsize).
type Node struct {
	CID   cid.Cid
	Tsize uint64
}

// Link is one more top-level entry of a layout: a file or directory
// already in the store.
type Link struct {
	Name string
	Node Node
}

// Layout is what Build writes.
type Layout struct {
	// Index is index.json's bytes.
	Index []byte
	// Blobs are linked under blobs/<algorithm>/<encoded>. Order does not
	// matter; a digest may repeat with the same CID and size.
	Blobs []Blob
	// Links are more top-level entries (not oci-layout, index.json or
	// blobs).
	Links []Link
}

// Build writes the layout's directory nodes (and its two small files) to
// store with PutBlock and returns the top directory. The blobs and links
// must be in the store, or reachable by it, already: Build never reads
// them, only, for files of more than one block, their root block (to learn
// their cumulative size); with a store that cannot return blocks it
// computes that size from the blob size and the format's import settings.
//
// Stores that pin (kubo, embedded) pin every block PutBlock writes, so the
// layout comes back pinned recursively; with the car store, name it as
// the CAR root (car.Store.Finish) or link it from what is.
func Build(ctx context.Context, store ipfs.Store, l Layout) (Node, error) {
	blobs, err := Dedupe(l.Blobs)
	if err != nil {
		return Node{}, err
	}
	seen := map[string]bool{BlobsDir: true, IndexFile: true, LayoutFile: true}
	for _, lk := range l.Links {
		if lk.Name == "" || strings.ContainsAny(lk.Name, "/\x00") || lk.Name == "." || lk.Name == ".." {
			return Node{}, fmt.Errorf("%w: %q is not an entry name", ErrInvalidInput, lk.Name)
		}
		if seen[lk.Name] {
			return Node{}, fmt.Errorf("%w: two entries named %q", ErrInvalidInput, lk.Name)
		}
		if !lk.Node.CID.Defined() {
			return Node{}, fmt.Errorf("%w: entry %q has no CID", ErrInvalidInput, lk.Name)
		}
		seen[lk.Name] = true
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
		return Node{}, err
	}
	blobsDir, err := newDir(dserv)
	if err != nil {
		return Node{}, err
	}
	for _, alg := range sortedKeys(byAlg) {
		algDir, err := newDir(dserv)
		if err != nil {
			return Node{}, err
		}
		list := byAlg[alg]
		slices.SortFunc(list, func(a, b Blob) int { return strings.Compare(a.Digest.Encoded(), b.Digest.Encoded()) })
		for _, b := range list {
			if err := algDir.AddChild(ctx, b.Digest.Encoded(), &linkNode{c: b.CID, size: tsizes[b.Digest]}); err != nil {
				return Node{}, fmt.Errorf("layout: blobs/%s/%s: %w", alg, b.Digest.Encoded(), err)
			}
		}
		nd, err := dserv.commit(ctx, algDir)
		if err != nil {
			return Node{}, err
		}
		if err := blobsDir.AddChild(ctx, alg, nd); err != nil {
			return Node{}, err
		}
	}
	blobsNode, err := dserv.commit(ctx, blobsDir)
	if err != nil {
		return Node{}, err
	}

	root, err := newDir(dserv)
	if err != nil {
		return Node{}, err
	}
	type entry struct {
		name string
		nd   ipld.Node
		data []byte
	}
	entries := []entry{
		{name: BlobsDir, nd: blobsNode},
		{name: IndexFile, data: l.Index},
		{name: LayoutFile, data: LayoutJSON},
	}
	for _, lk := range l.Links {
		entries = append(entries, entry{name: lk.Name, nd: &linkNode{c: lk.Node.CID, size: lk.Node.Tsize}})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	for _, e := range entries {
		nd := e.nd
		if nd == nil {
			n, err := putFile(ctx, store, sizer, e.data)
			if err != nil {
				return Node{}, fmt.Errorf("layout: %s: %w", e.name, err)
			}
			nd = &linkNode{c: n.CID, size: n.Tsize}
		}
		if err := root.AddChild(ctx, e.name, nd); err != nil {
			return Node{}, fmt.Errorf("layout: %s: %w", e.name, err)
		}
	}
	rootNode, err := dserv.commit(ctx, root)
	if err != nil {
		return Node{}, err
	}
	ts, err := rootNode.Size()
	if err != nil {
		return Node{}, err
	}
	return Node{CID: rootNode.Cid(), Tsize: ts}, nil
}

// PutFile stores a file as `ipfs add --raw-leaves --cid-version=1` would:
// one raw block (PutBlock) when it fits in a chunk, else through Add.
func PutFile(ctx context.Context, store ipfs.Store, data []byte) (Node, error) {
	return putFile(ctx, store, newSizer(store), data)
}

func putFile(ctx context.Context, store ipfs.Store, sizer *sizer, data []byte) (Node, error) {
	if len(data) <= ipfs.ChunkSize {
		c, err := store.PutBlock(ctx, cid.Raw, data)
		if err != nil {
			return Node{}, err
		}
		return Node{CID: c, Tsize: uint64(len(data))}, nil
	}
	c, err := store.Add(ctx, bytes.NewReader(data))
	if err != nil {
		return Node{}, err
	}
	ts, err := sizer.tsize(ctx, Blob{Size: int64(len(data)), CID: c})
	if err != nil {
		return Node{}, err
	}
	return Node{CID: c, Tsize: ts}, nil
}

// FileNode is the Node of a file of b.Size bytes already in the store
// (b.Digest is only named in errors): a raw block's Tsize is its length,
// a dag-pb file's is read from its root block (checked against b.Size),
// or, with a store that cannot return blocks, computed from b.Size.
func FileNode(ctx context.Context, store ipfs.Store, b Blob) (Node, error) {
	ts, err := newSizer(store).tsize(ctx, b)
	if err != nil {
		return Node{}, err
	}
	return Node{CID: b.CID, Tsize: ts}, nil
}

// Dedupe validates blobs and returns them by digest: every digest valid,
// every CID defined (as CIDv1), no size negative, no digest listed with
// two CIDs or sizes.
func Dedupe(list []Blob) (map[digest.Digest]Blob, error) {
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
