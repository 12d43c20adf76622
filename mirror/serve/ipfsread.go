package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// patientStore bounds how long one read from IPFS may wait and retries
// reads that time out, as nerdctl's --read-timeout and --read-retry-num do.
// The timeout bounds the wait for an answer to Cat and then each wait for
// more bytes (not a whole transfer, which may legitimately be long); a read
// that times out mid-stream is resumed at the offset reached.
type patientStore struct {
	ipfs.Store
	timeout time.Duration
	retries int
}

func (s *patientStore) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	if s.timeout <= 0 {
		return s.Store.Cat(ctx, c, offset, length)
	}
	r := &patientReader{ctx: ctx, s: s, c: c, off: offset, length: length}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

type patientReader struct {
	ctx    context.Context
	s      *patientStore
	c      cid.Cid
	off    int64 // offset of the next byte
	length int64 // bytes still wanted; < 0: to the end
	tries  int   // timed-out attempts since the last progress

	rc      io.ReadCloser
	cancel  context.CancelFunc
	timer   *time.Timer
	expired *atomic.Bool
}

// attempt starts one timed attempt: a context cancelled when the timer
// fires, and the flag that says it fired.
func (r *patientReader) attempt() context.Context {
	actx, cancel := context.WithCancel(r.ctx)
	expired := &atomic.Bool{}
	r.cancel, r.expired = cancel, expired
	r.timer = time.AfterFunc(r.s.timeout, func() { expired.Store(true); cancel() })
	return actx
}

func (r *patientReader) open() error {
	for {
		actx := r.attempt()
		rc, err := r.s.Store.Cat(actx, r.c, r.off, r.length)
		r.timer.Stop()
		if err == nil {
			r.rc = rc
			return nil
		}
		r.cancel()
		if !r.retry() {
			return r.timeoutErr(err)
		}
	}
}

// retry reports whether the attempt that just failed timed out and may be
// tried again.
func (r *patientReader) retry() bool {
	if !r.expired.Load() || r.ctx.Err() != nil || r.tries >= r.s.retries {
		return false
	}
	r.tries++
	return true
}

func (r *patientReader) timeoutErr(err error) error {
	if r.expired.Load() && r.ctx.Err() == nil {
		return fmt.Errorf("ipfs cat %s: %w: no answer within the read timeout (%s, %d retries)", r.c, ipfs.ErrNotFound, r.s.timeout, r.s.retries)
	}
	return err
}

func (r *patientReader) Read(p []byte) (int, error) {
	for {
		if r.length == 0 {
			return 0, io.EOF
		}
		if r.length > 0 && int64(len(p)) > r.length {
			p = p[:r.length]
		}
		r.timer.Reset(r.s.timeout)
		n, err := r.rc.Read(p)
		r.timer.Stop()
		r.off += int64(n)
		if r.length > 0 {
			r.length -= int64(n)
		}
		if n > 0 {
			r.tries = 0
		}
		if err == nil || errors.Is(err, io.EOF) {
			return n, err
		}
		if !r.retry() {
			return n, r.timeoutErr(err)
		}
		// Resume where we are.
		r.rc.Close()
		r.cancel()
		if oerr := r.open(); oerr != nil {
			return n, oerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *patientReader) Close() error {
	r.timer.Stop()
	err := r.rc.Close()
	r.cancel()
	return err
}

// budgetStore fails reads once more than limit bytes were read through it
// in all: one resolve (root, indexes, manifests) cannot make the server
// hold more than that, however many documents a hostile index lists.
type budgetStore struct {
	ipfs.Store
	limit int64
	used  atomic.Int64
}

func (s *budgetStore) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.Store.Cat(ctx, c, offset, length)
	if err != nil {
		return nil, err
	}
	return &budgetReader{ReadCloser: rc, s: s}, nil
}

type budgetReader struct {
	io.ReadCloser
	s *budgetStore
}

func (r *budgetReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if r.s.used.Add(int64(n)) > r.s.limit {
		return n, fmt.Errorf("%w: its documents are over %d bytes", ErrTreeTooLarge, r.s.limit)
	}
	return n, err
}
