package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
)

func TestParseRange(t *testing.T) {
	d := digest.FromString("x")
	for _, tc := range []struct {
		h, ifRange    string
		start, length int64
		partial, bad  bool
	}{
		{"", "", 0, 100, false, false},
		{"bytes=0-0", "", 0, 1, true, false},
		{"bytes=10-19", "", 10, 10, true, false},
		{"bytes=90-", "", 90, 10, true, false},
		{"bytes=90-1000", "", 90, 10, true, false},
		{"bytes=-5", "", 95, 5, true, false},
		{"bytes=-500", "", 0, 100, true, false},
		{"bytes=100-", "", 0, 0, false, true},
		{"bytes=20-10", "", 0, 0, false, true},
		{"bytes=-0", "", 0, 0, false, true},
		{"bytes=x-y", "", 0, 0, false, true},
		{"bytes=0-1,3-4", "", 0, 100, false, false},
		{"bytes=0-1, 5-", "", 0, 100, false, false},
		{"items=0-1", "", 0, 100, false, false},
		{"Bytes=0-1", "", 0, 2, true, false},
		{"bytes=+1-2", "", 0, 0, false, true},
		{"bytes=1-+2", "", 0, 0, false, true},
		{"bytes=- 5", "", 0, 0, false, true},
		{"bytes=-", "", 0, 0, false, true},
		{"bytes=99999999999999999999-", "", 0, 0, false, true},
		{"bytes=0-1", `"sha256:other"`, 0, 100, false, false},
		{"bytes=0-1", `"` + d.String() + `"`, 0, 2, true, false},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Range", tc.h)
		if tc.ifRange != "" {
			r.Header.Set("If-Range", tc.ifRange)
		}
		br, err := parseRange(r, d, 100)
		start, length, partial := br.start, br.length, br.partial
		if (err != nil) != tc.bad || (!tc.bad && (start != tc.start || length != tc.length || partial != tc.partial)) {
			t.Errorf("%q: %d %d %v %v; want %d %d %v bad=%v", tc.h, start, length, partial, err, tc.start, tc.length, tc.partial, tc.bad)
		}
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, int](3, 10)
	c.add("a", 1, 4)
	c.add("b", 2, 4)
	if _, ok := c.get("a"); !ok {
		t.Fatal("a missing")
	}
	c.add("c", 3, 4) // 12 bytes > 10: evicts the least recent, b
	if _, ok := c.get("b"); ok {
		t.Error("b not evicted by bytes")
	}
	c.add("d", 4, 1)
	c.add("e", 5, 1) // 4 entries > 3: evicts a
	if _, ok := c.get("a"); ok {
		t.Error("a not evicted by count")
	}
	c.add("huge", 6, 11)
	if _, ok := c.get("huge"); ok {
		t.Error("an entry over the byte bound was kept")
	}
	if n, b := c.len(); n != 3 || b != 6 {
		t.Errorf("len %d, %d bytes", n, b)
	}
}

func TestFlight(t *testing.T) {
	var f flight[string, int]
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan int, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := f.do(context.Background(), "k", func(ctx context.Context) (int, error) {
				calls.Add(1)
				<-release
				return 42, nil
			})
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 42 {
			t.Errorf("got %d", v)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls", calls.Load())
	}

	// A waiter giving up does not cancel the call for the others; the
	// last one does.
	started := make(chan struct{})
	cancelled := make(chan struct{})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	fn := func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return 0, ctx.Err()
	}
	go f.do(ctx1, "x", fn)
	<-started
	done2 := make(chan error, 1)
	go func() { _, _, err := f.do(ctx2, "x", fn); done2 <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel1()
	select {
	case <-cancelled:
		t.Fatal("call cancelled while a waiter remains")
	case <-time.After(50 * time.Millisecond):
	}
	cancel2()
	<-cancelled
	if err := <-done2; !errors.Is(err, context.Canceled) {
		t.Errorf("second waiter: %v", err)
	}
}

func TestCopyHoldback(t *testing.T) {
	src := []byte("abcdefghij")
	for _, size := range []int{2, 3, 4, 10, 11, 64} {
		var out bytes.Buffer
		ended := false
		n, err := copyHoldback(&out, bytes.NewReader(src), make([]byte, size), func() error { ended = true; return nil })
		if err != nil || n != int64(len(src)) || out.String() != string(src) || !ended {
			t.Errorf("buf %d: %d %q %v ended=%v", size, n, out.String(), err, ended)
		}
		// A source that fails at its end: everything but the last byte.
		out.Reset()
		ended = false
		bad := errors.New("mismatch")
		n, err = copyHoldback(&out, io.MultiReader(bytes.NewReader(src), iotest.ErrReader(bad)), make([]byte, size), func() error { ended = true; return nil })
		if err != bad || ended || out.String() == string(src) || !strings.HasPrefix(string(src), out.String()) || n != int64(out.Len()) {
			t.Errorf("failing source, buf %d: %d %q %v ended=%v", size, n, out.String(), err, ended)
		}
	}
	// Empty.
	var out bytes.Buffer
	if n, err := copyHoldback(&out, bytes.NewReader(nil), make([]byte, 8), func() error { return nil }); n != 0 || err != nil {
		t.Errorf("empty: %d %v", n, err)
	}
}

// TestStripViewCancelled (issue 13 item 2): the url-free rewrite stops when
// its context ends (no client waits any more), and such a stop is not kept:
// the next request computes the view afresh.
func TestStripViewCancelled(t *testing.T) {
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2,"urls":["ipfs://x","http://evil/"]},"layers":[]}`)
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	tr := &manifests.Tree{RootDescriptor: md, Docs: map[digest.Digest][]byte{md.Digest: raw}, Descs: map[digest.Digest]ocispec.Descriptor{md.Digest: md}}
	s, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	im := newImage(tr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := stripView(ctx, tr); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rewrite: %v", err)
	}
	if _, err := s.view(ctx, im, true); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled view: %v", err)
	}
	v, err := s.view(context.Background(), im, true)
	if err != nil || bytes.Contains(v.docs[v.target.Digest].raw, []byte("urls")) {
		t.Fatalf("view after a cancelled one: %v", err)
	}
}
