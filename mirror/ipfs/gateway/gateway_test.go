package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/gateway"
)

type prng struct{ r *rand.ChaCha8 }

func (p *prng) Read(b []byte) (int, error) { return p.r.Read(b) }

func payload(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(&prng{r: rand.NewChaCha8([32]byte{seed, 16})}, b)
	return b
}

// add adds data to k with the format's settings (or kubo's defaults when
// legacy: CIDv0, dag-pb leaves) and returns its CID.
func add(t testing.TB, k *rig.Kubo, data []byte, legacy bool) cid.Cid {
	t.Helper()
	args := []string{"add", "-Q", "--cid-version=1", "--raw-leaves", "--chunker=size-262144"}
	if legacy {
		args = []string{"add", "-Q", "--chunker=size-100000"}
	}
	out, err := k.RunErr(bytes.NewReader(data), args...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cid.Decode(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logBuffer collects a store's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newStore(t testing.TB, o gateway.Options) (*gateway.Store, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	o.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

func cat(ctx context.Context, s ipfs.Store, c cid.Cid, off, n int64) ([]byte, error) {
	rc, err := s.Cat(ctx, c, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestCat reads files of every shape from kubo's own gateway, whole and by
// ranges that cross segment and block boundaries.
func TestCat(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	for _, fetch := range []gateway.Fetch{gateway.FetchBlocks, gateway.FetchCAR} {
		t.Run(fetchName(fetch), func(t *testing.T) {
			p := newProxy(t, k.GatewayURL())
			s, _ := newStore(t, gateway.Options{Gateways: []string{p.URL}, SegmentSize: 1 << 20, Fetch: fetch})
			testCat(t, k, s)
			if n := p.carRequests(); (n > 0) != (fetch == gateway.FetchCAR) {
				t.Errorf("%d CAR requests", n)
			}
		})
	}
}

func testCat(t *testing.T, k *rig.Kubo, s *gateway.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		size   int
		legacy bool
	}{
		{"empty", 0, false},
		{"one byte", 1, false},
		{"one block", 262144, false},
		{"one block and a byte", 262145, false},
		{"3 MiB", 3 << 20, false},
		{"two levels", 175*262144 + 1000, false},
		{"CIDv0 dag-pb leaves", 1<<20 + 77, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := payload(byte(tc.size), tc.size)
			c := add(t, k, data, tc.legacy)
			n := int64(len(data))
			ranges := [][2]int64{{0, -1}, {0, n}, {0, n + 10}, {n, -1}, {n + 5, 10}, {0, 0}}
			if n > 10 {
				ranges = append(ranges, [2]int64{1, 1}, [2]int64{n - 1, -1}, [2]int64{n / 3, n / 3})
			}
			if n > 3<<20 {
				ranges = append(ranges, [2]int64{1<<20 - 1, 2}, [2]int64{1<<20 + 262143, 3<<20 + 5}, [2]int64{262144 * 174, 262144})
			}
			for _, r := range ranges {
				got, err := cat(ctx, s, c, r[0], r[1])
				if err != nil {
					t.Fatalf("cat %d+%d: %v", r[0], r[1], err)
				}
				from := min(r[0], n)
				to := n
				if r[1] >= 0 {
					to = min(from+r[1], n)
				}
				if !bytes.Equal(got, data[from:to]) {
					t.Fatalf("cat %d+%d: %d bytes, not the %d of the file's [%d,%d)", r[0], r[1], len(got), to-from, from, to)
				}
			}
		})
	}
}

// TestCapabilities: Describe names the gateways (no password), GetBlock
// returns a verified block.
func TestCapabilities(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(3, 1000)
	c := add(t, k, data, false)
	s, _ := newStore(t, gateway.Options{Gateways: []string{k.GatewayURL()}})
	if d := ipfs.Describe(s); d != "trustless gateway "+k.GatewayURL() {
		t.Errorf("Describe = %q", d)
	}
	b, err := s.GetBlock(context.Background(), c)
	if err != nil || !bytes.Equal(b, data) {
		t.Errorf("GetBlock: %v", err)
	}
	two, _ := newStore(t, gateway.Options{Gateways: []string{"https://user:secret@gw.example", "http://127.0.0.1:8080/"}})
	if d := ipfs.Describe(two); strings.Contains(d, "secret") || !strings.Contains(d, "gateways https://user:") || !strings.HasSuffix(d, ", http://127.0.0.1:8080") {
		t.Errorf("Describe = %q", d)
	}
}

func TestReadOnly(t *testing.T) {
	s, _ := newStore(t, gateway.Options{Gateways: []string{"http://127.0.0.1:1"}})
	ctx := context.Background()
	if _, err := s.Add(ctx, strings.NewReader("x")); !errors.Is(err, gateway.ErrReadOnly) {
		t.Errorf("Add: %v", err)
	}
	if err := s.Pin(ctx, cid.Undef); !errors.Is(err, gateway.ErrReadOnly) {
		t.Errorf("Pin: %v", err)
	}
	if _, err := s.PutBlock(ctx, cid.Raw, []byte("x")); !errors.Is(err, gateway.ErrReadOnly) {
		t.Errorf("PutBlock: %v", err)
	}
}

func TestBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "127.0.0.1:8080", "http://", "http://x/?a=b", "https://user:secret@x/#f"} {
		_, err := gateway.New(gateway.Options{Gateways: []string{u}})
		if err == nil {
			t.Errorf("%q: accepted", u)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the password: %v", u, err)
		}
	}
	if _, err := gateway.New(gateway.Options{}); err == nil {
		t.Error("no gateway: accepted")
	}
}

// TestNotFound: content no gateway has is ipfs.ErrNotFound naming the CID
// and each gateway; gateways that cannot be reached are ipfs.ErrUnavailable.
func TestNotFound(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	missing, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	ctx := context.Background()

	s, _ := newStore(t, gateway.Options{Gateways: []string{k.GatewayURL(), dead}, Retries: -1})
	_, err = cat(ctx, s, missing, 0, -1)
	if !errors.Is(err, ipfs.ErrNotFound) {
		t.Fatalf("missing CID: %v, want ErrNotFound", err)
	}
	for _, want := range []string{missing.String(), k.GatewayURL(), dead, "404"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping with one good gateway: %v", err)
	}

	s2, _ := newStore(t, gateway.Options{Gateways: []string{dead}, Retries: 1, Backoff: time.Millisecond})
	if _, err := cat(ctx, s2, missing, 0, -1); !errors.Is(err, ipfs.ErrUnavailable) {
		t.Errorf("dead gateway: %v, want ErrUnavailable", err)
	}
	if err := s2.Ping(ctx); !errors.Is(err, ipfs.ErrUnavailable) {
		t.Errorf("Ping of a dead gateway: %v", err)
	}
}

// TestRetryAfter: a 429 with Retry-After is waited for and retried on the
// same gateway; one asking for longer than MaxRetryAfter is left for the
// next gateway. A 503 without it is retried with backoff.
func TestRetryAfter(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(7, 600_000)
	c := add(t, k, data, false)
	ctx := context.Background()

	for _, tc := range []struct {
		name, status, after string
		minWait             time.Duration
	}{
		{"429 Retry-After 1", "429", "1", time.Second},
		{"503 no Retry-After", "503", "", 0},
		{"503 Retry-After date", "503", "date+2s", 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, k.GatewayURL())
			p.failFirst(tc.status, tc.after)
			s, _ := newStore(t, gateway.Options{Gateways: []string{p.URL}, Backoff: 10 * time.Millisecond})
			start := time.Now()
			got, err := cat(ctx, s, c, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("wrong bytes")
			}
			if d := time.Since(start); d < tc.minWait {
				t.Errorf("done in %s: Retry-After not waited for", d)
			}
		})
	}
	t.Run("Retry-After too long", func(t *testing.T) {
		p := newProxy(t, k.GatewayURL())
		p.failFirst("429", "3600")
		s, lb := newStore(t, gateway.Options{Gateways: []string{p.URL, k.GatewayURL()}, MaxRetryAfter: time.Second})
		start := time.Now()
		got, err := cat(ctx, s, c, 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
		if !strings.Contains(lb.String(), p.URL) {
			t.Errorf("the log does not say %s failed:\n%s", p.URL, lb)
		}
	})
}

// TestPerGateway: no more than PerGateway requests are in flight to one
// gateway, however many segments a Cat reads ahead.
func TestPerGateway(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(9, 6<<20)
	c := add(t, k, data, false)
	p := newProxy(t, k.GatewayURL())
	p.delay = 20 * time.Millisecond
	s, _ := newStore(t, gateway.Options{Gateways: []string{p.URL}, PerGateway: 2, Window: 8, SegmentSize: 512 << 10})
	got, err := cat(context.Background(), s, c, 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%v", err)
	}
	if m := p.maxInFlight(); m > 2 || m < 2 {
		t.Errorf("%d requests in flight at most, want 2", m)
	}
}

// TestSharedWork: two gateways share a Cat's segments.
func TestSharedWork(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(10, 8<<20)
	c := add(t, k, data, false)
	a, b := newProxy(t, k.GatewayURL()), newProxy(t, k.GatewayURL())
	a.delay, b.delay = 10*time.Millisecond, 10*time.Millisecond
	s, _ := newStore(t, gateway.Options{Gateways: []string{a.URL, b.URL}, PerGateway: 2, SegmentSize: 512 << 10})
	got, err := cat(context.Background(), s, c, 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%v", err)
	}
	if a.count() < 3 || b.count() < 3 {
		t.Errorf("requests: %d to the first gateway, %d to the second: the work is not shared", a.count(), b.count())
	}
}

// TestIdleTimeout: a gateway that stops sending mid-answer is given up
// after IdleTimeout and the next one completes.
func TestIdleTimeout(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(11, 2<<20)
	c := add(t, k, data, false)
	p := newProxy(t, k.GatewayURL())
	p.stall = true
	s, lb := newStore(t, gateway.Options{Gateways: []string{p.URL, k.GatewayURL()}, IdleTimeout: 300 * time.Millisecond, Retries: -1})
	start := time.Now()
	got, err := cat(context.Background(), s, c, 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
	if !strings.Contains(lb.String(), "no bytes for") {
		t.Errorf("the log does not say the gateway went quiet:\n%s", lb)
	}
}

// TestConcurrentCats: many Cats at once under a budget of one segment all
// complete (each may always hold the segment it reads), and so do Cats
// closed half read.
func TestConcurrentCats(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(12, 5<<20)
	c := add(t, k, data, false)
	s, _ := newStore(t, gateway.Options{Gateways: []string{k.GatewayURL()}, SegmentSize: 256 << 10, MaxBuffer: 256 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			rc, err := s.Cat(ctx, c, int64(i)*1000, -1)
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			if i%2 == 1 {
				// Read a little, then close with segments in flight.
				if _, err := io.ReadFull(rc, make([]byte, 300<<10)); err != nil {
					errs <- err
				}
				return
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				errs <- err
			} else if !bytes.Equal(got, data[i*1000:]) {
				errs <- errors.New("wrong bytes")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// All the budget came back.
	if !gateway.BudgetFree(s) {
		t.Error("the Cats did not give back all the budget")
	}
	if got, err := cat(ctx, s, c, 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after: %v", err)
	}
}

// TestClose: Cat after Close fails; a read in flight stops.
func TestClose(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(13, 3<<20)
	c := add(t, k, data, false)
	s, err := gateway.New(gateway.Options{Gateways: []string{k.GatewayURL()}, SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Cat(context.Background(), c, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("a read after the store's Close went on")
	}
	rc.Close()
	if _, err := s.Cat(context.Background(), c, 0, -1); !errors.Is(err, gateway.ErrClosed) {
		t.Errorf("Cat after Close: %v", err)
	}
}
