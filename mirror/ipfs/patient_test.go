package ipfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// stallStore serves data; catStalls[off] Cats at offset off block until
// cancelled, then readStalls[off] readers stall after 1000 bytes.
type stallStore struct {
	ipfs.Store
	data                  []byte
	catStalls, readStalls map[int64]int
	mu                    sync.Mutex
	calls                 []int64
}

func (s *stallStore) Cat(ctx context.Context, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	s.calls = append(s.calls, off)
	catStall := s.catStalls[off] > 0
	readStall := false
	if catStall {
		s.catStalls[off]--
	} else if s.readStalls[off] > 0 {
		s.readStalls[off]--
		readStall = true
	}
	s.mu.Unlock()
	if catStall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	end := int64(len(s.data))
	if n >= 0 && off+n < end {
		end = off + n
	}
	return &stallReader{ctx: ctx, r: bytes.NewReader(s.data[off:end]), stallAt: 1000, stall: readStall}, nil
}

// stallReader gives stallAt bytes, then stalls until cancelled (once).
type stallReader struct {
	ctx     context.Context
	r       *bytes.Reader
	n       int
	stallAt int
	stall   bool
}

func (r *stallReader) Read(p []byte) (int, error) {
	if r.stall && r.n >= r.stallAt {
		<-r.ctx.Done()
		return 0, r.ctx.Err()
	}
	if r.stall && len(p) > r.stallAt-r.n {
		p = p[:r.stallAt-r.n]
	}
	n, err := r.r.Read(p)
	r.n += n
	return n, err
}

func (r *stallReader) Close() error { return nil }

func TestPatientStore(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)

	// A Cat that stalls once, then a read that stalls after 1000 bytes:
	// retried, then resumed at offset 1000.
	s := &stallStore{data: data, catStalls: map[int64]int{0: 1}, readStalls: map[int64]int{0: 1}}
	ps := ipfs.Patient(s, ipfs.PatientOptions{Timeout: 50 * time.Millisecond, Retries: 2})
	readsAll(t, ps, c, data)
	if len(s.calls) != 3 || s.calls[0] != 0 || s.calls[1] != 0 || s.calls[2] != 1000 {
		t.Errorf("calls at offsets %v", s.calls)
	}

	// Retries exhausted: ErrNotFound, after 1+retries attempts.
	s = &stallStore{data: data, catStalls: map[int64]int{0: 10}}
	ps = ipfs.Patient(s, ipfs.PatientOptions{Timeout: 20 * time.Millisecond, Retries: 2})
	start := time.Now()
	_, err := ps.Cat(context.Background(), c, 0, -1)
	if !errors.Is(err, ipfs.ErrNotFound) || len(s.calls) != 3 {
		t.Errorf("err %v after %d calls", err, len(s.calls))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}

	// A bounded range resumed mid-way still gives exactly its bytes.
	s = &stallStore{data: data, readStalls: map[int64]int{10: 1}}
	ps = ipfs.Patient(s, ipfs.PatientOptions{Timeout: 50 * time.Millisecond, Retries: 1})
	rc, err := ps.Cat(context.Background(), c, 10, 5000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data[10:5010]) {
		t.Errorf("range: %d bytes, %v; calls %v", len(got), err, s.calls)
	}
}

// TestPatientResume: a read that stalls once mid-stream is resumed at the
// offset it reached, the bytes are the file's, and the retry is reported
// once, naming the CID, that offset and the try.
func TestPatientResume(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghijklmnopq"), 3000)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	s := &stallStore{data: data, readStalls: map[int64]int{0: 1}}
	var retries []string
	ps := ipfs.Patient(s, ipfs.PatientOptions{Timeout: 50 * time.Millisecond, Retries: 5, OnRetry: func(rc cid.Cid, off int64, try int) {
		retries = append(retries, fmt.Sprintf("%s@%d#%d", rc, off, try))
	}})
	readsAll(t, ps, c, data)
	if len(s.calls) != 2 || s.calls[1] != 1000 {
		t.Errorf("calls at offsets %v, want [0 1000]", s.calls)
	}
	if want := []string{c.String() + "@1000#2"}; fmt.Sprint(retries) != fmt.Sprint(want) {
		t.Errorf("retries %v, want %v", retries, want)
	}
}

// TestPatientGivesUp: a read that stalls at every attempt fails, after
// 1+Retries attempts (each reported but the first), with an error that
// wraps ErrNotFound and says it was the read timeout.
func TestPatientGivesUp(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	for _, at := range []string{"cat", "read"} {
		s := &stallStore{data: data, catStalls: map[int64]int{}, readStalls: map[int64]int{}}
		if at == "cat" {
			s.catStalls[0] = 100
		} else {
			s.readStalls[0], s.catStalls[1000] = 1, 100
		}
		var tries []int
		ps := ipfs.Patient(s, ipfs.PatientOptions{Timeout: 20 * time.Millisecond, Retries: 3, OnRetry: func(_ cid.Cid, _ int64, try int) { tries = append(tries, try) }})
		start := time.Now()
		rc, err := ps.Cat(context.Background(), c, 0, -1)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, ipfs.ErrNotFound) || !strings.Contains(err.Error(), "read timeout") {
			t.Errorf("%s: err %v", at, err)
		}
		if fmt.Sprint(tries) != "[2 3 4]" {
			t.Errorf("%s: tries %v", at, tries)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %s", at, d)
		}
	}
	// The caller's own cancellation is not a timeout: its error, no retry.
	s := &stallStore{data: data, catStalls: map[int64]int{0: 100}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	ps := ipfs.Patient(s, ipfs.PatientOptions{Timeout: time.Minute, Retries: 3})
	if _, err := ps.Cat(ctx, c, 0, -1); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("cancelled: %v", err)
	}
}

// blockStore is a stallStore with blocks that stall stalls times.
type blockStore struct {
	stallStore
	stalls int
	gets   int
}

func (b *blockStore) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	b.gets++
	if b.stalls > 0 {
		b.stalls--
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []byte("block"), nil
}

func (b *blockStore) Describe() string { return "test store" }

func (b *blockStore) Holds(context.Context, cid.Cid) (bool, error) { return true, nil }

// TestPatientCapabilities: no timeout is the store itself; otherwise the
// wrapper is a BlockGetter exactly when the store is (its blocks bounded
// and retried too), says what the store is, and unwraps to it.
func TestPatientCapabilities(t *testing.T) {
	b := &blockStore{stalls: 2}
	if got := ipfs.Patient(b, ipfs.PatientOptions{}); got != ipfs.Store(b) {
		t.Errorf("no timeout: %T", got)
	}
	var tries []int
	ps := ipfs.Patient(b, ipfs.PatientOptions{Timeout: 20 * time.Millisecond, Retries: 2, OnRetry: func(_ cid.Cid, _ int64, try int) { tries = append(tries, try) }})
	g, ok := ps.(ipfs.BlockGetter)
	if !ok {
		t.Fatal("not a BlockGetter")
	}
	if data, err := g.GetBlock(context.Background(), cid.Undef); err != nil || string(data) != "block" || b.gets != 3 || fmt.Sprint(tries) != "[2 3]" {
		t.Errorf("GetBlock: %q %v after %d gets, tries %v", data, err, b.gets, tries)
	}
	b.stalls = 10
	if _, err := g.GetBlock(context.Background(), cid.Undef); !errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("GetBlock stalled: %v", err)
	}
	// With a stall wait, a block that does not come is asked again within
	// the timeout, free: 2 wedged gets cost no retry.
	b.stalls, b.gets, tries = 2, 0, nil
	var reasks []time.Duration
	gs := ipfs.Patient(b, ipfs.PatientOptions{Timeout: time.Minute, StallTimeout: 5 * time.Millisecond,
		OnRetry: func(_ cid.Cid, _ int64, try int) { tries = append(tries, try) },
		OnStall: func(_ cid.Cid, _ int64, w time.Duration) { reasks = append(reasks, w) }}).(ipfs.BlockGetter)
	if data, err := gs.GetBlock(context.Background(), cid.Undef); err != nil || string(data) != "block" || b.gets != 3 || len(tries) != 0 || fmt.Sprint(reasks) != "[20ms 40ms]" {
		t.Errorf("GetBlock with a stall wait: %q %v after %d gets, tries %v, re-asks %v", data, err, b.gets, tries, reasks)
	}
	if d := ipfs.Describe(ps); d != "test store" {
		t.Errorf("Describe: %q", d)
	}
	u, ok := ps.(interface{ Unwrap() ipfs.Store })
	if !ok || u.Unwrap() != ipfs.Store(b) {
		t.Fatalf("Unwrap: %v", ok)
	}
	if _, ok := u.Unwrap().(ipfs.Holder); !ok {
		t.Error("the unwrapped store lost its Holder")
	}
	if _, ok := ipfs.Patient(&stallStore{}, ipfs.PatientOptions{Timeout: time.Second}).(ipfs.BlockGetter); ok {
		t.Error("a store without blocks became a BlockGetter")
	}
}

// TestPatientResumes: with Retries 0 (serve's default), a read that had
// delivered bytes and then stalls is still resumed, up to Resumes times;
// a read that never delivers a byte is not (an absent CID fails after one
// timeout), and a stall right after a resume that brought nothing is not
// resumed again.
func TestPatientResumes(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghijklmnopq"), 3000)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	opts := ipfs.PatientOptions{Timeout: 50 * time.Millisecond, Resumes: 2}

	// Stalls after 1000 bytes at offsets 0 and 1000: two resumes, whole.
	s := &stallStore{data: data, readStalls: map[int64]int{0: 1, 1000: 1}}
	readsAll(t, ipfs.Patient(s, opts), c, data)
	if fmt.Sprint(s.calls) != "[0 1000 2000]" {
		t.Errorf("calls at offsets %v, want [0 1000 2000]", s.calls)
	}

	// A third stall after progress is one too many.
	s = &stallStore{data: data, readStalls: map[int64]int{0: 1, 1000: 1, 2000: 1}}
	rc, err := ipfs.Patient(s, opts).Cat(context.Background(), c, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ipfs.ErrNotFound) || len(got) != 3000 {
		t.Errorf("after 3 stalls: read %d bytes, %v; want 3000 and ErrNotFound", len(got), err)
	}

	// Nothing ever arrives: one attempt, no resume.
	s = &stallStore{data: data, catStalls: map[int64]int{0: 100}}
	if _, err := ipfs.Patient(s, opts).Cat(context.Background(), c, 0, -1); !errors.Is(err, ipfs.ErrNotFound) || len(s.calls) != 1 {
		t.Errorf("absent: %d calls, %v; want 1 and ErrNotFound", len(s.calls), err)
	}

	// Progress, a stall, then the resumed read stalls before its first
	// byte: not resumed again.
	s = &stallStore{data: data, readStalls: map[int64]int{0: 1}, catStalls: map[int64]int{1000: 100}}
	rc, err = ipfs.Patient(s, opts).Cat(context.Background(), c, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ipfs.ErrNotFound) || len(got) != 1000 || fmt.Sprint(s.calls) != "[0 1000]" {
		t.Errorf("stall, then nothing: read %d bytes, calls %v, %v; want 1000, [0 1000], ErrNotFound", len(got), s.calls, err)
	}
}

// TestPatientStallTimeout: a read that was answering and then stalls is
// resumed after StallTimeout, not Timeout, and for free (Retries and
// Resumes 0), with OnStall told the offset; OnRetry is not called.
func TestPatientStallTimeout(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghijklmnopq"), 3000)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	s := &stallStore{data: data, readStalls: map[int64]int{0: 1, 1000: 1}}
	var stalls []string
	opts := ipfs.PatientOptions{Timeout: time.Minute, StallTimeout: 30 * time.Millisecond,
		OnStall: func(rc cid.Cid, off int64, gap time.Duration) { stalls = append(stalls, fmt.Sprintf("%s@%d", rc, off)) },
		OnRetry: func(cid.Cid, int64, int) { t.Error("OnRetry called for a stall") }}
	ps := ipfs.Patient(s, opts)
	t0 := time.Now()
	readsAll(t, ps, c, data)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("two stalls took %s: the stall wait was not used", d)
	}
	if fmt.Sprint(s.calls) != "[0 1000 2000]" {
		t.Errorf("calls at offsets %v, want [0 1000 2000]", s.calls)
	}
	if want := []string{c.String() + "@1000", c.String() + "@2000"}; fmt.Sprint(stalls) != fmt.Sprint(want) {
		t.Errorf("stalls %v, want %v", stalls, want)
	}

	// The read resumed after a stall stalls again before its first bytes:
	// that costs four stall waits, not the minute, and is free too.
	s = &stallStore{data: data, readStalls: map[int64]int{0: 1}, catStalls: map[int64]int{1000: 1}}
	stalls = nil
	t0 = time.Now()
	readsAll(t, ipfs.Patient(s, opts), c, data)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("a stall right after a resume took %s", d)
	}
	if fmt.Sprint(s.calls) != "[0 1000 1000]" || len(stalls) != 2 {
		t.Errorf("calls at offsets %v, stalls %v; want [0 1000 1000] and two", s.calls, stalls)
	}
}

// TestPatientStallTimeoutFirstBytes: a read whose first bytes do not come
// within four stall waits is asked again, free (Retries 0), each time
// waiting twice as long: a first answer slower than that still arrives.
func TestPatientStallTimeoutFirstBytes(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	s := &slowStore{data: data, first: 200 * time.Millisecond, chunk: 512}
	var waits []time.Duration
	ps := ipfs.Patient(s, ipfs.PatientOptions{Timeout: time.Minute, StallTimeout: 20 * time.Millisecond,
		OnStall: func(_ cid.Cid, _ int64, w time.Duration) { waits = append(waits, w) },
		OnRetry: func(cid.Cid, int64, int) { t.Error("a re-ask was counted as a retry") }})
	readsAll(t, ps, c, data)
	// 80 ms, 160 ms, then 320 ms is long enough.
	if len(waits) < 2 || waits[0] != 80*time.Millisecond || waits[1] != 160*time.Millisecond {
		t.Errorf("re-asked after %v, want [80ms 160ms]", waits)
	}
}

// TestPatientReaskBounded: a read that never answers is asked again
// within Timeout, and then fails as without a stall wait (Retries 0):
// ErrNotFound after about Timeout, not sooner and not much later.
func TestPatientReaskBounded(t *testing.T) {
	data := []byte("never")
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	s := &stallStore{data: data, catStalls: map[int64]int{0: 100}}
	t0 := time.Now()
	_, err := ipfs.Patient(s, ipfs.PatientOptions{Timeout: 300 * time.Millisecond, StallTimeout: 10 * time.Millisecond}).Cat(context.Background(), c, 0, -1)
	d := time.Since(t0)
	if !errors.Is(err, ipfs.ErrNotFound) || d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("after %s: %v; want ErrNotFound after 300ms", d, err)
	}
	// 40, 80 ms re-asks, then the rest of the 300 ms: 3 or 4 attempts.
	if n := len(s.calls); n < 3 || n > 4 {
		t.Errorf("%d attempts, want 3 or 4", n)
	}
}

// TestPatientSlowLink: bytes that come steadily but slower than
// StallTimeout are a slow link, not a stall: after the first stall the
// resumed read's first bytes take as long, and the stall wait of that
// read grows, so the rest is read without stalls.
func TestPatientSlowLink(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghij"), 100)
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	s := &slowStore{data: data, delay: 40 * time.Millisecond, chunk: 100}
	var stalls []int64
	ps := ipfs.Patient(s, ipfs.PatientOptions{Timeout: time.Minute, StallTimeout: 5 * time.Millisecond,
		OnStall: func(_ cid.Cid, off int64, _ time.Duration) { stalls = append(stalls, off) }})
	readsAll(t, ps, c, data)
	// The first reads are asked again (the 5 ms stall wait, the 20 ms and
	// 40 ms first waits are shorter than the link's 40 ms); once a resumed
	// read's first bytes took 40 ms, the stall wait grows past the gap and
	// the rest of the 1000 bytes comes without a stall.
	for _, off := range stalls {
		if off > 300 {
			t.Errorf("asked again at offset %d (all at %v): the stall wait did not grow", off, stalls)
			break
		}
	}
}

// readsAll reads c from ps to the end and wants data.
func readsAll(t *testing.T, ps ipfs.Store, c cid.Cid, data []byte) {
	t.Helper()
	rc, err := ps.Cat(context.Background(), c, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes, %v", len(got), len(data), err)
	}
}

// slowStore answers a reader's first read after first, every read after
// delay, chunk bytes at a time, and honours cancellation.
type slowStore struct {
	ipfs.Store
	data         []byte
	first, delay time.Duration
	chunk        int
}

func (s *slowStore) Cat(ctx context.Context, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	return &slowReader{ctx: ctx, r: bytes.NewReader(s.data[off:]), s: s}, nil
}

type slowReader struct {
	ctx   context.Context
	r     *bytes.Reader
	s     *slowStore
	reads int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.r.Len() == 0 {
		return 0, io.EOF
	}
	d := r.s.delay
	if r.reads++; r.reads == 1 {
		d += r.s.first
	}
	select {
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	case <-time.After(d):
	}
	if len(p) > r.s.chunk {
		p = p[:r.s.chunk]
	}
	return r.r.Read(p)
}

func (r *slowReader) Close() error { return nil }
