package ocidir

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// getBlockFunc returns how to read one block from store (its
// ipfs.BlockGetter), or nil when it cannot.
func getBlockFunc(store ipfs.Store) func(context.Context, cid.Cid) ([]byte, error) {
	if g, ok := store.(ipfs.BlockGetter); ok {
		return g.GetBlock
	}
	return nil
}

// sizer learns the cumulative size (Tsize) of blob DAGs: what a directory
// link to them records.
type sizer struct {
	get func(context.Context, cid.Cid) ([]byte, error) // nil: simulate
}

func newSizer(store ipfs.Store) *sizer { return &sizer{get: getBlockFunc(store)} }

// tsize is the cumulative size of the DAG b.CID names. A raw block's is its
// length. A dag-pb file's is its root block's length plus the sizes its
// links record; the root block is read from the store and checked against
// b.Size, or, when the store cannot return blocks, the DAG is assumed to
// have been built with the format's import settings and its size is
// computed from b.Size.
func (s *sizer) tsize(ctx context.Context, b Blob) (uint64, error) {
	switch b.CID.Type() {
	case cid.Raw:
		return uint64(b.Size), nil
	case cid.DagProtobuf:
	default:
		return 0, fmt.Errorf("%w: blob %s: CID %s has codec %#x, want raw or dag-pb", ErrInvalidInput, b.Digest, b.CID, b.CID.Type())
	}
	if s.get == nil {
		return SimulatedTsize(b.Size)
	}
	data, err := s.get(ctx, b.CID)
	if err != nil {
		return 0, fmt.Errorf("reading the root block of %s: %w", b.CID, err)
	}
	if c, err := b.CID.Prefix().Sum(data); err != nil || c != b.CID {
		return 0, fmt.Errorf("the root block of %s does not hash to its CID", b.CID)
	}
	pn, err := merkledag.DecodeProtobuf(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", b.CID, err)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return 0, fmt.Errorf("%s: not a UnixFS node: %w", b.CID, err)
	}
	if t := fsn.Type(); t != ft.TFile && t != ft.TRaw {
		return 0, fmt.Errorf("%w: blob %s: %s is a UnixFS %s, not a file", ErrInvalidInput, b.Digest, b.CID, t)
	}
	if fsn.FileSize() != uint64(b.Size) {
		return 0, fmt.Errorf("%w: blob %s: %s is a %d-byte file, the blob %d bytes", ErrInvalidInput, b.Digest, b.CID, fsn.FileSize(), b.Size)
	}
	total := uint64(len(data))
	for _, l := range pn.Links() {
		total += l.Size
	}
	return total, nil
}

// tsizes computes every blob's Tsize, reading root blocks a few at a time.
func (s *sizer) tsizes(ctx context.Context, blobs map[digest.Digest]Blob) (map[digest.Digest]uint64, error) {
	out := make(map[digest.Digest]uint64, len(blobs))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for d, b := range blobs {
		g.Go(func() error {
			ts, err := s.tsize(gctx, b)
			if err != nil {
				return fmt.Errorf("layout: blob %s: %w", d, err)
			}
			mu.Lock()
			out[d] = ts
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// SimulatedTsize is the cumulative size of the DAG `ipfs add` builds for a
// file of size bytes with the format's settings (balanced layout, 256 KiB
// chunks, raw leaves, CIDv1 sha2-256, 174 links per node), computed from
// the size alone: each internal node is encoded with placeholder CIDs of
// the real length, so its size is exact.
func SimulatedTsize(size int64) (uint64, error) {
	if size < 0 {
		return 0, errors.New("negative size")
	}
	if size <= ipfs.ChunkSize {
		return uint64(size), nil // one raw leaf
	}
	leaves := (size + ipfs.ChunkSize - 1) / ipfs.ChunkSize
	depth, span := 1, int64(ipfs.MaxFileLinks)
	for span < leaves {
		span *= ipfs.MaxFileLinks
		depth++
	}
	sim := &simulator{size: size, full: map[int]subtree{}}
	t, err := sim.node(depth, 0)
	return t.tsize, err
}

type subtree struct{ tsize, fileSize uint64 }

type simulator struct {
	size int64
	full map[int]subtree // full subtrees by depth (all chunks full)
}

var (
	rawPlaceholder, _ = cid.V1Builder{Codec: cid.Raw, MhType: multihash.SHA2_256}.Sum(nil)
	pbPlaceholder, _  = cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}.Sum(nil)
)

// node returns the subtree of the given depth whose first leaf is leaf.
func (s *simulator) node(depth int, leaf int64) (subtree, error) {
	if depth == 0 {
		n := min(int64(ipfs.ChunkSize), s.size-leaf*ipfs.ChunkSize)
		return subtree{tsize: uint64(n), fileSize: uint64(n)}, nil
	}
	span := int64(1)
	for range depth - 1 {
		span *= ipfs.MaxFileLinks
	}
	last := (s.size - 1) / ipfs.ChunkSize // index of the last leaf
	fullTree := leaf+span*ipfs.MaxFileLinks-1 < last
	if fullTree {
		if t, ok := s.full[depth]; ok {
			return t, nil
		}
	}
	fsn := ft.NewFSNode(ft.TFile)
	pn := new(merkledag.ProtoNode)
	var sum uint64
	for i := int64(0); i < ipfs.MaxFileLinks && leaf+i*span <= last; i++ {
		child, err := s.node(depth-1, leaf+i*span)
		if err != nil {
			return subtree{}, err
		}
		ph := pbPlaceholder
		if depth == 1 {
			ph = rawPlaceholder
		}
		if err := pn.AddRawLink("", &ipld.Link{Cid: ph, Size: child.tsize}); err != nil {
			return subtree{}, err
		}
		fsn.AddBlockSize(child.fileSize)
		sum += child.tsize
	}
	data, err := fsn.GetBytes()
	if err != nil {
		return subtree{}, err
	}
	pn.SetData(data)
	enc, err := pn.EncodeProtobuf(false)
	if err != nil {
		return subtree{}, err
	}
	t := subtree{tsize: uint64(len(enc)) + sum, fileSize: fsn.FileSize()}
	if fullTree {
		s.full[depth] = t
	}
	return t, nil
}
