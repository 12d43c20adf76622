package ipfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
)

// PatientOptions configure Patient.
type PatientOptions struct {
	// Timeout bounds each wait: for the store to answer a read, then for
	// each next bytes of it, and for each block. It is no bound on a whole
	// transfer, which may legitimately be long. <= 0: no bound.
	Timeout time.Duration
	// Retries is how many times a wait that timed out is tried again
	// since the last bytes arrived (a read resumes at the offset reached).
	Retries int
	// Resumes is how many times, beyond Retries, a read that had
	// delivered bytes since its last timeout is resumed when it stalls
	// again. A bitswap session can stop asking its peers midway (boxo
	// drops peers whose answers were late, and on a loaded machine with
	// loopback latencies they are late); a new read at the offset reached
	// starts a new session. With Retries 0 (nerdctl's default, so that an
	// absent CID fails after one timeout), Resumes still rescues those.
	Resumes int
	// StallTimeout is a shorter wait for a read that was answering: once
	// an attempt has delivered bytes, a wait of StallTimeout with no next
	// bytes resumes it at once at the offset reached, without counting
	// against Retries or Resumes. A bitswap session that stopped asking
	// its peers (see Resumes) then costs StallTimeout instead of a whole
	// Timeout. It also paces a read waiting for its first bytes (at the
	// start, or after a stall): within Timeout, such a read is asked again,
	// as free, after four stall waits, then after twice as long each time
	// (8 s, 16 s, 32 s with 2 s), because a session can also wedge before
	// its first block while the content is there. Bytes that come slowly
	// but steadily are a slow link, not a stall: the stall wait of a read
	// grows to four times the longest gap it saw (the time a resumed read
	// took to its first bytes included). The whole wait without bytes is
	// still bounded by Timeout; then Retries and Resumes count as without
	// it. <= 0, or >= Timeout: none of this.
	StallTimeout time.Duration
	// OnStall, when set, is called before a read is asked again for free
	// (a stall, or no first bytes yet): c is being read at offset, and it
	// had waited waited.
	OnStall func(c cid.Cid, offset int64, waited time.Duration)
	// OnRetry, when set, is called before each new attempt: c is being
	// read at offset (0 for a block), and try is the attempt about to
	// start, 2 to Retries+1. It may be called from several goroutines.
	OnRetry func(c cid.Cid, offset int64, try int)
}

// Patient returns s with every read bounded by o.Timeout and retried
// o.Retries times, as nerdctl's --read-timeout and --read-retry-num do: a
// bitswap fetch that stops making progress (no provider answers any more)
// is asked again where it stopped rather than waited on forever. A read
// whose retries ran out fails with an error wrapping ErrNotFound.
//
// With no timeout Patient returns s itself. Otherwise the store it returns
// is a BlockGetter (each block bounded the same way) when s is one, and a
// Describer; every other capability of s is reached through its Unwrap.
func Patient(s Store, o PatientOptions) Store {
	if o.Timeout <= 0 {
		return s
	}
	o.Retries, o.Resumes = max(o.Retries, 0), max(o.Resumes, 0)
	if o.StallTimeout >= o.Timeout {
		o.StallTimeout = 0
	}
	p := &patientStore{Store: s, o: o}
	if g, ok := s.(BlockGetter); ok {
		return &patientBlocks{patientStore: p, g: g}
	}
	return p
}

type patientStore struct {
	Store
	o PatientOptions
}

// Describe is the wrapped store's.
func (s *patientStore) Describe() string { return Describe(s.Store) }

// Unwrap returns the wrapped store, for its other capabilities.
func (s *patientStore) Unwrap() Store { return s.Store }

func (s *patientStore) retried(c cid.Cid, offset int64, try int) {
	if s.o.OnRetry != nil {
		s.o.OnRetry(c, offset, try)
	}
}

// firstWait is how long an attempt may wait for its first bytes, in a
// wait without bytes that began at idle, the attempt's slice ending at
// sliceEnd: to the slice's end, then asked again for free (reask), when
// StallTimeout paces and that comes first; else to the end of Timeout.
func (s *patientStore) firstWait(idle, sliceEnd time.Time) (wait time.Duration, reask bool) {
	left := s.o.Timeout - time.Since(idle)
	if s.o.StallTimeout > 0 {
		if w := time.Until(sliceEnd); w < left {
			return max(w, time.Millisecond), true
		}
	}
	return max(left, time.Millisecond), false
}

func (s *patientStore) timeoutErr(what string, c cid.Cid) error {
	return fmt.Errorf("%s %s: %w: no answer within the read timeout (%s, %d retries)", what, c, ErrNotFound, s.o.Timeout, s.o.Retries)
}

func (s *patientStore) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	r := &patientReader{ctx: ctx, s: s, c: c, off: offset, length: length}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

type patientBlocks struct {
	*patientStore
	g BlockGetter
}

// GetBlock waits for c up to Timeout, asked again as a read waiting for
// its first bytes is (StallTimeout), then retried Retries times.
func (b *patientBlocks) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	for try := 1; ; try++ {
		start, slice := time.Now(), 4*b.o.StallTimeout
		for {
			wait, reask := b.firstWait(start, time.Now().Add(slice))
			actx, cancel := context.WithTimeout(ctx, wait)
			data, err := b.g.GetBlock(actx, c)
			expired := actx.Err() != nil && ctx.Err() == nil
			cancel()
			if err == nil || !expired {
				return data, err
			}
			if !reask {
				break
			}
			if b.o.OnStall != nil {
				b.o.OnStall(c, 0, slice)
			}
			slice *= 2
		}
		if try > b.o.Retries {
			return nil, b.timeoutErr("ipfs block get", c)
		}
		b.retried(c, 0, try+1)
	}
}

type patientReader struct {
	ctx    context.Context
	s      *patientStore
	c      cid.Cid
	off    int64 // offset of the next byte
	length int64 // bytes still wanted; < 0: to the end
	tries  int   // timed-out attempts since the last progress
	// resumes counts the stalls after progress resumed beyond Retries;
	// progressed says bytes arrived since the last timed-out attempt.
	resumes    int
	progressed bool

	// The wait without bytes that Timeout bounds began at idleSince (an
	// attempt's start, the start of a read of a flowing attempt); free
	// re-asks do not restart it. flowing says this attempt delivered
	// bytes; slice is how long the next attempt waits for its first
	// bytes before it is asked again, sliceEnd when the current one's
	// ends; gap is the longest a read waited for bytes that came (and a
	// resumed read for its first ones, when learn is set).
	idleSince time.Time
	opened    time.Time
	flowing   bool
	learn     bool
	slice     time.Duration
	sliceEnd  time.Time
	gap       time.Duration
	kind      waitKind      // what the armed timer ends
	armed     time.Duration // the wait the timer was last set to

	rc      io.ReadCloser
	cancel  context.CancelFunc
	timer   *time.Timer
	expired *atomic.Bool
}

// waitKind is what a timed-out wait was.
type waitKind int

const (
	waitTimeout waitKind = iota // Timeout without bytes: Retries count
	waitStall                   // a flowing attempt stopped: free
	waitReask                   // no first bytes within a slice: free
)

// stallWait is the wait for next bytes of a flowing attempt.
func (r *patientReader) stallWait() time.Duration {
	return max(r.s.o.StallTimeout, 4*r.gap)
}

// next is the wait the next timer is armed with, and what it ends.
func (r *patientReader) next() (time.Duration, waitKind) {
	if !r.flowing {
		w, reask := r.s.firstWait(r.idleSince, r.sliceEnd)
		if reask {
			return w, waitReask
		}
		return w, waitTimeout
	}
	left := r.s.o.Timeout - time.Since(r.idleSince)
	if w := r.stallWait(); r.s.o.StallTimeout > 0 && w < left {
		return w, waitStall
	}
	return max(left, time.Millisecond), waitTimeout
}

// arm sets the timer for the next wait.
func (r *patientReader) arm() {
	r.armed, r.kind = r.next()
	r.timer.Reset(r.armed)
}

// attempt starts one timed attempt: a context cancelled when the timer
// fires, and the flag that says it fired.
func (r *patientReader) attempt() context.Context {
	actx, cancel := context.WithCancel(r.ctx)
	expired := &atomic.Bool{}
	r.cancel, r.expired = cancel, expired
	r.flowing, r.opened = false, time.Now()
	if r.slice == 0 {
		r.slice = 4 * r.stallWait()
	}
	r.sliceEnd = r.opened.Add(r.slice)
	r.armed, r.kind = r.next()
	r.timer = time.AfterFunc(r.armed, func() { expired.Store(true); cancel() })
	return actx
}

func (r *patientReader) open() error {
	if r.idleSince.IsZero() {
		r.idleSince = time.Now()
	}
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
// tried again, and says so through OnStall or OnRetry.
func (r *patientReader) retry() bool {
	if !r.expired.Load() || r.ctx.Err() != nil {
		return false
	}
	switch r.kind {
	case waitStall, waitReask:
		// Free: a flowing attempt stopped, or no first bytes yet within
		// Timeout. Each re-ask waits twice as long as the one before.
		waited := r.armed
		if r.kind == waitStall {
			r.learn = true
		} else {
			waited = r.slice
			r.slice *= 2
		}
		if r.s.o.OnStall != nil {
			r.s.o.OnStall(r.c, r.off, waited)
		}
		return true
	}
	switch {
	case r.tries < r.s.o.Retries:
		r.tries++
	case r.progressed && r.resumes < r.s.o.Resumes:
		r.resumes++
	default:
		return false
	}
	r.progressed = false
	r.idleSince, r.slice = time.Now(), 0
	r.s.retried(r.c, r.off, r.tries+r.resumes+1)
	return true
}

func (r *patientReader) timeoutErr(err error) error {
	if r.expired.Load() && r.ctx.Err() == nil {
		return r.s.timeoutErr("ipfs cat", r.c)
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
		t0 := time.Now()
		if r.flowing {
			// The caller's time between reads is not a wait for IPFS.
			r.idleSince = t0
		}
		r.arm()
		n, err := r.rc.Read(p)
		r.timer.Stop()
		r.off += int64(n)
		if r.length > 0 {
			r.length -= int64(n)
		}
		if n > 0 {
			switch {
			case r.flowing:
				r.gap = max(r.gap, time.Since(t0))
			case r.learn:
				r.gap, r.learn = max(r.gap, time.Since(r.opened)), false
			}
			r.flowing, r.slice = true, 0
			r.tries, r.progressed = 0, true
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
