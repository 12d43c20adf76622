package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	offline "github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"golang.org/x/sync/errgroup"
)

// file is the root of a UnixFS file being read.
type file struct {
	c    cid.Cid
	blk  blocks.Block // the verified root block
	node ipld.Node    // blk decoded
	size int64
}

// segData is a fetched segment: its bytes, every block of which was
// checked against its CID, and what gives back its memory.
type segData struct {
	r    io.Reader
	free func()
}

// segment fetches bytes [from, to) of f: by raw blocks (FetchBlocks), or
// by one CAR request per gateway (FetchCAR, and any file whose shape the
// block planner does not follow).
func (s *Store) segment(ctx context.Context, f *file, from, to int64) (*segData, error) {
	if s.opts.Fetch != FetchCAR {
		d, err := s.segmentBlocks(ctx, f, from, to)
		if !errors.Is(err, errShape) {
			return d, err
		}
	}
	return s.segmentCAR(ctx, f, from, to)
}

// segmentCAR asks each gateway in turn for [from, to) of f as a CAR until
// one answers with every block the range needs.
func (s *Store) segmentCAR(ctx context.Context, f *file, from, to int64) (*segData, error) {
	bp := s.bufs.Get().(*[]byte)
	buf := (*bp)[:to-from]
	what := fmt.Sprintf("bytes %d-%d of %s", from, to-1, f.c)
	err := s.fetch(ctx, what, f.c, "car", entityBytes(from, to), func(resp *http.Response, body io.Reader) error {
		return s.readSegment(ctx, f, from, to, buf, body)
	})
	if err != nil {
		s.bufs.Put(bp)
		return nil, err
	}
	return &segData{r: bytes.NewReader(buf), free: func() { s.bufs.Put(bp) }}, nil
}

func blockOf(c cid.Cid, f *file, from, to int64) string {
	return fmt.Sprintf("block %s of %s (for bytes %d-%d)", c, f.c, from, to-1)
}

// errShape says the block planner does not follow this file's DAG.
var errShape = errors.New("gateway: a DAG shape the block planner does not follow")

// segmentBlocks plans the blocks [from, to) needs from the file's nodes
// (boxo's UnixFS node: its links and their block sizes), fetches the inner
// nodes (cached) and then the leaves concurrently as raw blocks, each from
// the best gateway that gives it whole. The range is then read from them,
// as the reader asks, by boxo's UnixFS file reader; should that reader
// need a block the plan left out, the rest of the range comes as a CAR.
func (s *Store) segmentBlocks(ctx context.Context, f *file, from, to int64) (*segData, error) {
	bs := newSegmentStore()
	if err := bs.Put(ctx, f.blk); err != nil {
		return nil, err
	}
	var leaves []cid.Cid
	var walk func(nd *merkledag.ProtoNode, off int64, depth int) error
	walk = func(nd *merkledag.ProtoNode, off int64, depth int) error {
		fsn, err := unixfs.FSNodeFromBytes(nd.Data())
		if err != nil || depth > 64 {
			return errShape
		}
		links, sizes := nd.Links(), fsn.BlockSizes()
		if len(links) != len(sizes) {
			return errShape
		}
		// The children in the range: raw leaves to fetch later, inner
		// nodes (or dag-pb leaves) fetched now, together, then walked.
		type child struct {
			c   cid.Cid
			off int64
			nd  *merkledag.ProtoNode
		}
		var kids []*child
		pos := off + int64(len(fsn.Data()))
		for i, l := range links {
			end := pos + int64(sizes[i])
			if end > from && pos < to {
				switch l.Cid.Type() {
				case cid.Raw, cid.DagProtobuf:
					kids = append(kids, &child{c: l.Cid, off: pos})
				default:
					return errShape
				}
			}
			pos = end
		}
		g, gctx := errgroup.WithContext(ctx)
		for _, k := range kids {
			if k.c.Type() != cid.DagProtobuf {
				continue
			}
			g.Go(func() error {
				blk, err := s.block(gctx, k.c, blockOf(k.c, f, from, to))
				if err != nil {
					return err
				}
				if k.nd, err = merkledag.DecodeProtobuf(blk.RawData()); err != nil {
					return errShape
				}
				return bs.Put(gctx, blk)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for _, k := range kids {
			if k.nd == nil {
				leaves = append(leaves, k.c)
			} else if err := walk(k.nd, k.off, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	root, ok := f.node.(*merkledag.ProtoNode)
	if !ok {
		return nil, errShape
	}
	if err := walk(root, 0, 0); err != nil {
		return nil, err
	}
	// The leaves' buffers go back to the pool once the range is read
	// (nothing else refers to them: leaves are never cached).
	bufs := make([]*[]byte, len(leaves))
	free := func() {
		for i, bp := range bufs {
			if bp != nil {
				s.leaves.Put(bp)
				bufs[i] = nil
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range leaves {
		g.Go(func() error {
			blk, bp, err := s.leaf(gctx, l, blockOf(l, f, from, to), true)
			if err != nil {
				return err
			}
			bufs[i] = bp
			return bs.Put(gctx, blk)
		})
	}
	if err := g.Wait(); err != nil {
		free()
		return nil, err
	}
	dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	dr, err := uio.NewDagReader(ctx, f.node, dag)
	if err == nil {
		_, err = dr.Seek(from, io.SeekStart)
	}
	if err != nil {
		free()
		if bs.missed().Defined() {
			return nil, errShape
		}
		return nil, &contentError{fmt.Errorf("gateway: reading the UnixFS file %s: %w", f.c, err)}
	}
	lz := &lazySegment{s: s, ctx: ctx, f: f, dr: dr, bs: bs, pos: from, to: to}
	return &segData{r: lz, free: func() {
		dr.Close()
		free()
		if lz.rest != nil {
			lz.rest.free()
		}
	}}, nil
}

// lazySegment reads a range from its blocks as the reader asks.
type lazySegment struct {
	s       *Store
	ctx     context.Context
	f       *file
	dr      uio.DagReader
	bs      *missRecorder
	pos, to int64
	rest    *segData // the rest of the range as a CAR, if the plan fell short
}

func (l *lazySegment) Read(p []byte) (int, error) {
	if l.rest != nil {
		return l.rest.r.Read(p)
	}
	if l.pos >= l.to {
		return 0, io.EOF
	}
	if int64(len(p)) > l.to-l.pos {
		p = p[:l.to-l.pos]
	}
	n, err := l.dr.Read(p)
	l.pos += int64(n)
	if err == nil || (errors.Is(err, io.EOF) && l.pos >= l.to) {
		return n, nil
	}
	if !l.bs.missed().Defined() && !errors.Is(err, io.EOF) {
		return n, &contentError{fmt.Errorf("gateway: reading the UnixFS file %s: %w", l.f.c, err)}
	}
	// A block the plan left out, or a file shorter than its nodes say:
	// the rest of the range as a CAR, which settles it.
	rest, ferr := l.s.segmentCAR(l.ctx, l.f, l.pos, l.to)
	if ferr != nil {
		return n, ferr
	}
	l.rest = rest
	return n, nil
}

// readSegment reads one CAR answer: every block verified into a blockstore
// of its own, then the range read from it by boxo's UnixFS file reader,
// which finds any block the gateway left out.
func (s *Store) readSegment(ctx context.Context, f *file, from, to int64, buf []byte, body io.Reader) error {
	// The range's blocks, the nodes on their path, and room for a block
	// each side when a range does not start or end on a block boundary.
	limit := (to - from) + 4*MaxBlockSize + 1<<20
	maxBlocks := int(limit / 256)
	lr := &limitReader{r: body, left: limit, limit: limit}
	br, err := carv2.NewBlockReader(lr, carv2.WithTrustedCAR(true),
		carv2.MaxAllowedHeaderSize(64<<10), carv2.MaxAllowedSectionSize(MaxBlockSize+512))
	if err != nil {
		return lr.fault(err, "reading the CAR header")
	}
	if br.Version != 1 {
		return faultf(kindIncomplete, "sent a CARv%d, not the CARv1 of a trustless answer", br.Version)
	}
	bs := newSegmentStore()
	if err := bs.Put(ctx, f.blk); err != nil {
		return err
	}
	n := 0
	for {
		raw, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return lr.fault(err, fmt.Sprintf("reading the CAR after %d blocks", n))
		}
		if n++; n > maxBlocks {
			return faultf(kindIncomplete, "sent over %d blocks for %d bytes", maxBlocks, to-from)
		}
		blk, err := verified(raw.Cid(), raw.RawData())
		if err != nil {
			return err
		}
		if err := bs.Put(ctx, blk); err != nil {
			return err
		}
		if blk.Cid().Type() == cid.DagProtobuf && len(blk.RawData()) <= maxCachedNode {
			s.nodes.put(blk)
		}
	}
	return s.assemble(ctx, f, bs, from, buf)
}

// assemble reads [from, from+len(buf)) of f with boxo's UnixFS file reader
// from bs alone (an offline blockservice), which finds any block missing.
func (s *Store) assemble(ctx context.Context, f *file, bs *missRecorder, from int64, buf []byte) error {
	dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dr, err := uio.NewDagReader(rctx, f.node, dag)
	if err == nil {
		_, err = dr.Seek(from, io.SeekStart)
	}
	if err == nil {
		_, err = io.ReadFull(dr, buf)
	}
	if err == nil {
		return nil
	}
	if m := bs.missed(); m.Defined() {
		return faultf(kindIncomplete, "its CAR lacks block %s", m)
	}
	// Every block the reader asked for was there and verified: the file
	// itself is malformed, whoever sends it.
	return &contentError{fmt.Errorf("gateway: reading the UnixFS file %s: %w", f.c, err)}
}

// contentError is a fault of the content, not of a gateway: no other
// gateway is tried.
type contentError struct{ err error }

func (e *contentError) Error() string { return e.err.Error() }
func (e *contentError) Unwrap() error { return e.err }

func newSegmentStore() *missRecorder {
	return &missRecorder{Blockstore: blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()), blockstore.NoPrefix())}
}

// missRecorder is a blockstore that remembers the first block asked of it
// that it did not have.
type missRecorder struct {
	blockstore.Blockstore
	mu   sync.Mutex
	miss cid.Cid
}

func (m *missRecorder) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := m.Blockstore.Get(ctx, c)
	if ipld.IsNotFound(err) {
		m.mu.Lock()
		if !m.miss.Defined() {
			m.miss = c
		}
		m.mu.Unlock()
	}
	return b, err
}

func (m *missRecorder) missed() cid.Cid {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.miss
}

// limitReader fails reads past a number of bytes and remembers the
// transport's own errors, so that a CAR parse error can be told from a
// broken connection.
type limitReader struct {
	r      io.Reader
	left   int64
	limit  int64
	over   bool
	netErr error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.over = true
		return 0, errTooLong
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		l.netErr = err
	}
	return n, err
}

var errTooLong = errors.New("gateway: the answer is too long")

// fault classifies an error of the CAR reader.
func (l *limitReader) fault(err error, doing string) error {
	switch {
	case l.netErr != nil:
		return l.netErr // the connection: once() classifies it
	case l.over:
		return faultf(kindIncomplete, "%s: the answer goes on past the %d bytes the range can need", doing, l.limit)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return faultf(kindIncomplete, "%s: the CAR is truncated", doing)
	}
	return faultf(kindIncomplete, "%s: not a valid CAR: %v", doing, err)
}
