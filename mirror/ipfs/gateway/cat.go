package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
)

// Cat implements ipfs.Store: the bytes [offset, offset+length) of the
// UnixFS file c names (length < 0: to the end), every block checked
// against its CID. A range past the end is cut at the end.
func (s *Store) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if offset < 0 {
		return nil, fmt.Errorf("gateway: cat %s: negative offset %d", c, offset)
	}
	blk, err := s.block(ctx, c, "")
	if err != nil {
		return nil, err
	}
	clip := func(size int64) (int64, int64) {
		end := size
		if length >= 0 && offset+length < end {
			end = offset + length
		}
		return min(offset, end), end
	}
	switch c.Type() {
	case cid.Raw:
		from, to := clip(int64(len(blk.RawData())))
		return io.NopCloser(bytes.NewReader(blk.RawData()[from:to])), nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("gateway: cat %s: a block of codec 0x%x is not a UnixFS file", c, c.Type())
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		return nil, fmt.Errorf("gateway: cat %s: %w", c, err)
	}
	fsn, err := unixfs.FSNodeFromBytes(nd.(*merkledag.ProtoNode).Data())
	if err != nil {
		return nil, fmt.Errorf("gateway: cat %s: not UnixFS: %w", c, err)
	}
	if t := fsn.Type(); t != unixfs.TFile && t != unixfs.TRaw {
		return nil, fmt.Errorf("gateway: cat %s: a UnixFS %s, not a file", c, t)
	}
	f := &file{c: c, blk: blk, node: nd, size: int64(fsn.FileSize())}
	from, to := clip(f.size)
	r := &catReader{s: s, f: f}
	r.ctx, r.cancel = context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, r.cancel)
	r.stopClose = stop
	seg := s.opts.SegmentSize
	for a := from; a < to; {
		b := min(to, (a/seg+1)*seg)
		r.segs = append(r.segs, &segment{from: a, to: b, done: make(chan struct{}), head: make(chan struct{})})
		a = b
	}
	r.window = make(chan struct{}, s.opts.Window)
	r.wg.Add(1)
	go r.schedule()
	return r, nil
}

// segment is one range of a Cat, fetched ahead of the reader.
type segment struct {
	from, to int64
	done     chan struct{} // closed when data or err is set
	head     chan struct{} // closed when the reader waits for this one
	data     *segData
	err      error
	owned    int64 // bytes of the store's budget held
	once     sync.Once
}

type catReader struct {
	s         *Store
	f         *file
	ctx       context.Context
	cancel    context.CancelFunc
	stopClose func() bool
	segs      []*segment
	window    chan struct{} // a slot per segment launched and not yet read
	failed    atomic.Bool   // a segment failed: launch no more
	wg        sync.WaitGroup

	next int       // the segment being read
	cur  io.Reader // its bytes, once fetched
	got  int64     // bytes of it read
	err  error
}

// schedule launches the segments in order: each takes a window slot and,
// unless the reader already waits for it, its size from the store's
// budget.
func (r *catReader) schedule() {
	defer r.wg.Done()
	for _, sg := range r.segs {
		select {
		case r.window <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		if r.failed.Load() {
			return
		}
		if !r.acquire(sg) {
			return
		}
		r.wg.Add(1)
		go r.fetch(sg)
	}
}

// acquire takes sg's bytes from the budget, or nothing once the reader
// waits for sg (so that one Cat always progresses). false when cancelled.
func (r *catReader) acquire(sg *segment) bool {
	n := sg.to - sg.from
	select {
	case <-sg.head:
		return true
	default:
	}
	actx, stop := context.WithCancel(r.ctx)
	defer stop()
	go func() {
		select {
		case <-sg.head:
			stop()
		case <-actx.Done():
		}
	}()
	if err := r.s.budget.Acquire(actx, n); err == nil {
		sg.owned = n
		return true
	}
	return r.ctx.Err() == nil
}

func (r *catReader) fetch(sg *segment) {
	defer r.wg.Done()
	sg.data, sg.err = r.s.segment(r.ctx, r.f, sg.from, sg.to)
	if sg.err != nil {
		r.failed.Store(true)
	}
	close(sg.done)
}

// release gives sg's buffer and budget back (once).
func (r *catReader) release(sg *segment) {
	sg.once.Do(func() {
		if sg.owned > 0 {
			r.s.budget.Release(sg.owned)
		}
		if sg.data != nil {
			sg.data.free()
			sg.data = nil
		}
	})
}

func (r *catReader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.next >= len(r.segs) {
			return 0, io.EOF
		}
		sg := r.segs[r.next]
		if r.cur == nil {
			close(sg.head)
			select {
			case <-sg.done:
			case <-r.ctx.Done():
				r.err = fmt.Errorf("gateway: cat %s: %w", r.f.c, r.ctx.Err())
				if r.s.ctx.Err() != nil {
					r.err = ErrClosed
				}
				return 0, r.err
			}
			if sg.err != nil {
				r.err = sg.err
				return 0, r.err
			}
			r.cur, r.got = sg.data.r, 0
		}
		if want := sg.to - sg.from - r.got; int64(len(p)) > want {
			p = p[:want]
		}
		n, err := r.cur.Read(p)
		r.got += int64(n)
		if r.got == sg.to-sg.from {
			r.advance()
		} else if errors.Is(err, io.EOF) {
			err = fmt.Errorf("gateway: cat %s: bytes %d-%d: %d bytes, short", r.f.c, sg.from, sg.to-1, r.got)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.err = err
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

// advance is done with the segment being read.
func (r *catReader) advance() {
	r.release(r.segs[r.next])
	<-r.window
	r.next++
	r.cur = nil
}

// Close stops the fetches in flight and gives their buffers back.
func (r *catReader) Close() error {
	r.cancel()
	r.stopClose()
	r.wg.Wait()
	for _, sg := range r.segs {
		r.release(sg) // no fetch runs any more
	}
	if r.err == nil {
		r.err = fmt.Errorf("gateway: cat %s: read after Close", r.f.c)
	}
	return nil
}
