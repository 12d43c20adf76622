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
	// Timeout. The attempt a stall starts waits four times the stall wait
	// for its first bytes, then once more the whole Timeout (also free);
	// if they take long, the link is slow rather than the session
	// stalled, and the stall wait of that read grows to four times the
	// longest wait seen. OnStall says each of these resumes. <= 0, or
	// >= Timeout: no shorter wait.
	StallTimeout time.Duration
	// OnStall, when set, is called before a read is resumed after such a
	// stall: c is being read at offset, and it had waited gap.
	OnStall func(c cid.Cid, offset int64, gap time.Duration)
	// OnRetry, when set, is called before each new attempt: c is being
	// read at offset (0 for a block), and try is the attempt about to
	// start, 2 to Retries+1. It may be called from several goroutines.
	OnRetry func(c cid.Cid, offset int64, try int, waited time.Duration)
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

func (s *patientStore) retried(c cid.Cid, offset int64, try int, waited time.Duration) {
	if s.o.OnRetry != nil {
		s.o.OnRetry(c, offset, try, waited)
	}
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

func (b *patientBlocks) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	for try := 1; ; try++ {
		actx, cancel := context.WithTimeout(ctx, b.o.Timeout)
		data, err := b.g.GetBlock(actx, c)
		expired := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil || !expired {
			return data, err
		}
		if try > b.o.Retries {
			return nil, b.timeoutErr("ipfs block get", c)
		}
		b.retried(c, 0, try+1, b.o.Timeout)
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
	// flowing says this attempt has delivered bytes; gap is the longest
	// a read then waited for next bytes, and an attempt started after a
	// stall for its first ones (a slow link, not a stall); stalled says
	// the wait now armed is the stall wait, not Timeout; afterStall that
	// this attempt was started by a stall, at opened.
	flowing    bool
	gap        time.Duration
	stalled    bool
	afterStall bool
	learn      bool // the next first bytes after a stall are timed into gap
	opened     time.Time
	armed      time.Duration // the wait the timer was last set to

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
	r.armed = r.firstWait()
	r.timer = time.AfterFunc(r.armed, func() { expired.Store(true); cancel() })
	return actx
}

func (r *patientReader) open() error {
	r.flowing, r.stalled, r.opened = false, false, time.Now()
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
// tried again, and says so through OnRetry.
func (r *patientReader) retry() bool {
	if !r.expired.Load() || r.ctx.Err() != nil {
		return false
	}
	if r.stalled {
		// It was answering: a stall, resumed at once and for free.
		if r.s.o.OnStall != nil {
			r.s.o.OnStall(r.c, r.off, r.armed)
		}
		r.afterStall, r.learn = true, true
		return true
	}
	if r.afterStall {
		// The short first wait after a stall ran out: once more, free,
		// with the whole Timeout (each stall needed bytes before it).
		if r.s.o.OnStall != nil {
			r.s.o.OnStall(r.c, r.off, r.armed)
		}
		r.afterStall = false
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
	r.s.retried(r.c, r.off, r.tries+r.resumes+1, r.armed)
	return true
}

// wait is how long the next read may wait for bytes: the stall wait once
// this attempt is answering, firstWait before.
func (r *patientReader) wait() time.Duration {
	if r.s.o.StallTimeout <= 0 || !r.flowing {
		return r.firstWait()
	}
	return min(max(r.s.o.StallTimeout, 4*r.gap), r.s.o.Timeout)
}

// firstWait is how long an attempt may wait for its first bytes: Timeout,
// but after a stall (the peers were answering a moment ago) four times
// the stall wait, so that a session that stalls again right away costs
// seconds, not a whole Timeout; if that runs out too, the attempt after
// it (free as well: each stall needed bytes before it) has the whole
// Timeout.
func (r *patientReader) firstWait() time.Duration {
	if !r.afterStall {
		return r.s.o.Timeout
	}
	return min(4*max(r.s.o.StallTimeout, 4*r.gap), r.s.o.Timeout)
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
		wait := r.wait()
		r.stalled = r.flowing && wait < r.s.o.Timeout
		t0 := time.Now()
		r.armed = wait
		r.timer.Reset(wait)
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
			r.afterStall = false
			r.flowing = true
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
