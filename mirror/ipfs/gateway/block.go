package gateway

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// block returns the block c names, verified: from the node cache, from
// the CID itself (identity), or from the first gateway that sends bytes
// matching c (format=raw). what names it in errors ("" = "block CID").
func (s *Store) block(ctx context.Context, c cid.Cid, what string) (blocks.Block, error) {
	b, _, err := s.leaf(ctx, c, what, false)
	return b, err
}

// leaf is block; with pooled, a block of at most ipfs.ChunkSize bytes is
// read into a buffer from the store's pool, returned with it for the
// caller to give back (s.leaves.Put) once nothing refers to the block.
func (s *Store) leaf(ctx context.Context, c cid.Cid, what string, pooled bool) (blocks.Block, *[]byte, error) {
	if what == "" {
		what = "block " + c.String()
	}
	if b := s.nodes.get(c); b != nil {
		return b, nil, nil
	}
	if c.Prefix().MhType == mh.IDENTITY {
		d, err := mh.Decode(c.Hash())
		if err != nil {
			return nil, nil, fmt.Errorf("gateway: %s: %w", c, err)
		}
		b, err := blocks.NewBlockWithCid(d.Digest, c)
		return b, nil, err
	}
	var blk blocks.Block
	var bp *[]byte
	err := s.fetch(ctx, what, c, "raw", "", func(resp *http.Response, body io.Reader) error {
		if resp.ContentLength > MaxBlockSize {
			return faultf(kindIncomplete, "block %s: the answer is %d bytes, over the %d a block may have", c, resp.ContentLength, MaxBlockSize)
		}
		n := 64 << 10
		if resp.ContentLength >= 0 {
			n = int(resp.ContentLength)
		}
		var buf []byte
		if pooled && n <= ipfs.ChunkSize {
			bp = s.leaves.Get().(*[]byte)
			buf = (*bp)[:0]
		} else {
			buf = make([]byte, 0, n)
		}
		giveBack := func() {
			if bp != nil {
				s.leaves.Put(bp)
				bp = nil
			}
		}
		buf, err := readAllInto(buf, io.LimitReader(body, MaxBlockSize+1))
		if err != nil {
			giveBack()
			return err
		}
		if bp != nil && cap(buf) != cap(*bp) {
			giveBack() // it grew out of the pooled buffer
		}
		if len(buf) > MaxBlockSize {
			giveBack()
			return faultf(kindIncomplete, "block %s: the answer is over the %d bytes a block may have", c, MaxBlockSize)
		}
		if resp.ContentLength >= 0 && int64(len(buf)) != resp.ContentLength {
			giveBack()
			return faultf(kindIncomplete, "block %s: %d bytes of the %d announced", c, len(buf), resp.ContentLength)
		}
		b, ferr := verified(c, buf)
		if ferr != nil {
			giveBack()
			return ferr
		}
		blk = b
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if c.Type() == cid.DagProtobuf && bp == nil && len(blk.RawData()) <= maxCachedNode {
		s.nodes.put(blk)
	}
	return blk, bp, nil
}

// verified returns data as the block c, or a kindIntegrity fault when the
// bytes do not hash to c.
func verified(c cid.Cid, data []byte) (blocks.Block, error) {
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return nil, faultf(kindIntegrity, "block %s: cannot hash it: %v", c, err)
	}
	if !got.Equals(c) {
		return nil, faultf(kindIntegrity, "sent bytes for block %s that hash to %s", c, got)
	}
	return blocks.NewBlockWithCid(data, c)
}

// readAllInto reads r to EOF, appending to buf.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// maxCachedNode bounds the nodes cached: inner nodes (a node of 174 links
// is about 8 KiB), not data.
const maxCachedNode = 64 << 10

// nodeCache keeps verified UnixFS nodes (dag-pb blocks), least recently
// used out first, up to a number of bytes.
type nodeCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[cid.Cid]*list.Element
}

func newNodeCache(max int64) *nodeCache {
	return &nodeCache{max: max, ll: list.New(), items: map[cid.Cid]*list.Element{}}
}

func (n *nodeCache) get(c cid.Cid) blocks.Block {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.items[c]
	if !ok {
		return nil
	}
	n.ll.MoveToFront(e)
	return e.Value.(blocks.Block)
}

func (n *nodeCache) put(b blocks.Block) {
	sz := int64(len(b.RawData()))
	if sz > n.max/16 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.items[b.Cid()]; ok {
		n.ll.MoveToFront(e)
		return
	}
	n.items[b.Cid()] = n.ll.PushFront(b)
	n.size += sz
	for n.size > n.max {
		e := n.ll.Back()
		old := e.Value.(blocks.Block)
		n.ll.Remove(e)
		delete(n.items, old.Cid())
		n.size -= int64(len(old.RawData()))
	}
}

// entityBytes is the query of a CAR request for [from, to) of a file.
func entityBytes(from, to int64) string {
	return "dag-scope=entity&entity-bytes=" + strconv.FormatInt(from, 10) + ":" + strconv.FormatInt(to-1, 10)
}
