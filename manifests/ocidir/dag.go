package ocidir

import (
	"context"
	"errors"
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// putter is the ipld.DAGService boxo's directories write through: every
// node becomes a Store.PutBlock, so the handle works the same with every
// store. Links to blobs (linkNode) are never written: the blobs are in the
// store already.
type putter struct {
	store ipfs.Store
}

func (p *putter) Add(ctx context.Context, nd ipld.Node) error {
	var codec uint64
	switch nd.(type) {
	case *linkNode:
		return nil
	case *dag.ProtoNode:
		codec = cid.DagProtobuf
	case *dag.RawNode:
		codec = cid.Raw
	default:
		return fmt.Errorf("layout: unexpected node type %T", nd)
	}
	c, err := p.store.PutBlock(ctx, codec, nd.RawData())
	if err != nil {
		return fmt.Errorf("layout: storing block %s: %w", nd.Cid(), err)
	}
	if ipfs.V1(c) != ipfs.V1(nd.Cid()) {
		return fmt.Errorf("layout: the store named block %s %s", nd.Cid(), c)
	}
	return nil
}

func (p *putter) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := p.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

// commit stores a finished directory (a HAMT stores its shards itself).
func (p *putter) commit(ctx context.Context, d uio.Directory) (ipld.Node, error) {
	nd, err := d.GetNode()
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	if err := p.Add(ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

var errWriteOnly = errors.New("layout: the builder's DAG service is write-only")

func (p *putter) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	return nil, errWriteOnly
}

func (p *putter) GetMany(_ context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for range cs {
		out <- &ipld.NodeOption{Err: errWriteOnly}
	}
	close(out)
	return out
}

func (p *putter) Remove(context.Context, cid.Cid) error       { return errWriteOnly }
func (p *putter) RemoveMany(context.Context, []cid.Cid) error { return errWriteOnly }

// linkNode stands for a node already in the store, known by its CID and
// cumulative size (Tsize): all a directory link needs.
type linkNode struct {
	c    cid.Cid
	size uint64
}

var _ ipld.Node = (*linkNode)(nil)

func (n *linkNode) Cid() cid.Cid             { return n.c }
func (n *linkNode) Size() (uint64, error)    { return n.size, nil }
func (n *linkNode) RawData() []byte          { return nil }
func (n *linkNode) String() string           { return n.c.String() }
func (n *linkNode) Loggable() map[string]any { return map[string]any{"cid": n.c} }
func (n *linkNode) Links() []*ipld.Link      { return nil }
func (n *linkNode) Stat() (*ipld.NodeStat, error) {
	return &ipld.NodeStat{Hash: n.c.String(), CumulativeSize: int(n.size)}, nil
}
func (n *linkNode) Copy() ipld.Node           { c := *n; return &c }
func (n *linkNode) Tree(string, int) []string { return nil }
func (n *linkNode) Resolve([]string) (any, []string, error) {
	return nil, nil, errors.New("layout: link placeholder cannot be resolved")
}
func (n *linkNode) ResolveLink([]string) (*ipld.Link, []string, error) {
	return nil, nil, errors.New("layout: link placeholder cannot be resolved")
}

var _ blocks.Block = (*linkNode)(nil)
