package ocidir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// The readers' bounds.
const (
	// MaxEntries bounds the links ReadDir lists of one directory.
	MaxEntries = 1 << 16
	// MaxBlocks bounds the blocks read to list or search one directory
	// (a HAMT-sharded one has many).
	MaxBlocks = 4096
)

// Entry is one link of a directory.
type Entry struct {
	Name  string
	CID   cid.Cid
	Tsize uint64
}

// ReadDir lists the directory c names, basic or HAMT-sharded, in name
// order for a basic one. Every block read is checked against its CID; at
// most max entries are listed (max ≤ 0: MaxEntries), else ErrLimit. The
// store must return blocks (ipfs.BlockGetter); a CID that is not a UnixFS
// directory is ErrNotLayout.
func ReadDir(ctx context.Context, store ipfs.Store, c cid.Cid, max int) ([]Entry, error) {
	if max <= 0 || max > MaxEntries {
		max = MaxEntries
	}
	d, err := openDir(ctx, store, c)
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = d.ForEachLink(ctx, func(l *ipld.Link) error {
		if len(out) >= max {
			return fmt.Errorf("%w: directory %s has more than %d entries", ErrLimit, c, max)
		}
		out = append(out, Entry{Name: l.Name, CID: l.Cid, Tsize: l.Size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", c, err)
	}
	return out, nil
}

// Lookup returns the CID of path ("blobs/sha256/<hex>", "index.json") below
// the directory c; a missing name is ipfs.ErrNotFound.
func Lookup(ctx context.Context, store ipfs.Store, c cid.Cid, path string) (cid.Cid, error) {
	cur := c
	for _, name := range strings.Split(path, "/") {
		if name == "" {
			continue
		}
		d, err := openDir(ctx, store, cur)
		if err != nil {
			return cid.Undef, err
		}
		nd, err := d.Find(ctx, name)
		if errors.Is(err, os.ErrNotExist) {
			return cid.Undef, fmt.Errorf("%s/%s: %w", c, path, ipfs.ErrNotFound)
		}
		if err != nil {
			return cid.Undef, fmt.Errorf("%s/%s: %w", c, path, err)
		}
		cur = nd.Cid()
	}
	return cur, nil
}

// DirNode returns the Node of the directory c names: its CID and
// cumulative size (its block's length plus the sizes its links record).
func DirNode(ctx context.Context, store ipfs.Store, c cid.Cid) (Node, error) {
	g, err := newGetter(store)
	if err != nil {
		return Node{}, err
	}
	nd, err := g.Get(ctx, c)
	if err != nil {
		return Node{}, err
	}
	pn, ok := nd.(*dag.ProtoNode)
	if !ok {
		return Node{}, fmt.Errorf("%s: %w", c, ErrNotLayout)
	}
	if fsn, err := ft.FSNodeFromBytes(pn.Data()); err != nil || (fsn.Type() != ft.TDirectory && fsn.Type() != ft.THAMTShard) {
		return Node{}, fmt.Errorf("%s: %w", c, ErrNotLayout)
	}
	ts, err := pn.Size()
	if err != nil {
		return Node{}, err
	}
	return Node{CID: c, Tsize: ts}, nil
}

// Blobs lists a layout's blobs/<algorithm>/<encoded> files: digest → CID.
// Names that are not digests are skipped; at most max blobs are listed
// (max ≤ 0: MaxEntries), else ErrLimit.
func Blobs(ctx context.Context, store ipfs.Store, layout cid.Cid, max int) (map[digest.Digest]cid.Cid, error) {
	if max <= 0 || max > MaxEntries {
		max = MaxEntries
	}
	bc, err := Lookup(ctx, store, layout, BlobsDir)
	if err != nil {
		return nil, err
	}
	algs, err := ReadDir(ctx, store, bc, 16)
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]cid.Cid{}
	for _, a := range algs {
		if !digest.Algorithm(a.Name).Available() {
			continue
		}
		files, err := ReadDir(ctx, store, a.CID, max-len(out))
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", BlobsDir, a.Name, err)
		}
		for _, f := range files {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name), f.Name)
			if d.Validate() != nil {
				continue
			}
			out[d] = f.CID
		}
	}
	return out, nil
}

// ReadFile reads the whole file c names, at most max bytes (else
// ErrLimit).
func ReadFile(ctx context.Context, store ipfs.Store, c cid.Cid, max int64) ([]byte, error) {
	rc, err := store.Cat(ctx, c, 0, max+1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrLimit, c, max)
	}
	return b, nil
}

func openDir(ctx context.Context, store ipfs.Store, c cid.Cid) (uio.Directory, error) {
	if c.Type() != cid.DagProtobuf {
		return nil, fmt.Errorf("%s: %w (codec %#x, not dag-pb)", c, ErrNotLayout, c.Type())
	}
	g, err := newGetter(store)
	if err != nil {
		return nil, err
	}
	nd, err := g.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	pn, ok := nd.(*dag.ProtoNode)
	if !ok {
		return nil, fmt.Errorf("%s: %w", c, ErrNotLayout)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil || (fsn.Type() != ft.TDirectory && fsn.Type() != ft.THAMTShard) {
		return nil, fmt.Errorf("%s: %w", c, ErrNotLayout)
	}
	d, err := uio.NewDirectoryFromNode(g, pn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", c, ErrNotLayout, err)
	}
	return d, nil
}

// getter is the read-only ipld.DAGService the readers walk directories
// with: blocks from the store's GetBlock, each checked against its CID,
// at most MaxBlocks of them.
type getter struct {
	get  func(context.Context, cid.Cid) ([]byte, error)
	left atomic.Int64
}

func newGetter(store ipfs.Store) (*getter, error) {
	get := getBlockFunc(store)
	if get == nil {
		return nil, errors.New("layout: this store cannot read blocks")
	}
	g := &getter{get: get}
	g.left.Store(MaxBlocks)
	return g, nil
}

func (g *getter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	if g.left.Add(-1) < 0 {
		return nil, fmt.Errorf("%w: more than %d blocks", ErrLimit, MaxBlocks)
	}
	data, err := g.get(ctx, c)
	if err != nil {
		return nil, err
	}
	if got, err := c.Prefix().Sum(data); err != nil || !got.Equals(c) {
		return nil, fmt.Errorf("block %s does not hash to its CID", c)
	}
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return nil, err
	}
	var nd ipld.Node
	switch c.Type() {
	case cid.DagProtobuf:
		nd, err = dag.DecodeProtobufBlock(b)
	case cid.Raw:
		nd, err = dag.DecodeRawBlock(b)
	default:
		err = fmt.Errorf("codec %#x is neither dag-pb nor raw", c.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("block %s: %w: %v", c, ErrNotLayout, err)
	}
	return nd, nil
}

func (g *getter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	go func() {
		defer close(out)
		for _, c := range cs {
			nd, err := g.Get(ctx, c)
			select {
			case out <- &ipld.NodeOption{Node: nd, Err: err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

var errReadOnly = errors.New("layout: the reader's DAG service is read-only")

func (g *getter) Add(context.Context, ipld.Node) error        { return errReadOnly }
func (g *getter) AddMany(context.Context, []ipld.Node) error  { return errReadOnly }
func (g *getter) Remove(context.Context, cid.Cid) error       { return errReadOnly }
func (g *getter) RemoveMany(context.Context, []cid.Cid) error { return errReadOnly }
