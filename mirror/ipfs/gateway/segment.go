package gateway

import (
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
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
)

// file is the root of a UnixFS file being read.
type file struct {
	c    cid.Cid
	blk  blocks.Block // the verified root block
	node ipld.Node    // blk decoded
	size int64
}

// segment fetches bytes [from, to) of f into buf (len to-from): one CAR
// request (dag-scope=entity, entity-bytes) per gateway until one answers
// with every block the range needs, each checked against its CID.
func (s *Store) segment(ctx context.Context, f *file, from, to int64, buf []byte) error {
	what := fmt.Sprintf("bytes %d-%d of %s", from, to-1, f.c)
	return s.fetch(ctx, what, f.c, "car", entityBytes(from, to), func(resp *http.Response, body io.Reader) error {
		return s.readSegment(ctx, f, from, to, buf, body)
	})
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
	bs := &missRecorder{Blockstore: blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()), blockstore.NoPrefix())}
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
		if blk.Cid().Type() == cid.DagProtobuf {
			s.nodes.put(blk)
		}
	}
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
