package car_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// sizes cover the edges of the layout: empty, one byte, one chunk minus,
// exactly and plus one, one full first-level node plus one (depth 2), and
// a ~50 MiB layer.
var sizes = []int64{0, 1, 262143, 262144, 262145, 174 * 262144, 174*262144 + 1, 50<<20 + 12345}

// payload is a deterministic pseudo-random stream of n bytes.
func payload(seed uint64, n int64) io.Reader {
	return io.LimitReader(&prng{r: rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})}, n)
}

type prng struct{ r *rand.ChaCha8 }

func (p *prng) Read(b []byte) (int, error) { return p.r.Read(b) }

func sum(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func newStore(t *testing.T) (*car.Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.car")
	s, err := car.New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

// TestCIDsMatchKubo adds the same bytes through a real daemon's RPC API and
// through the CAR store: the CIDs must be equal, size by size.
func TestCIDsMatchKubo(t *testing.T) {
	n := rig.StartKubo(t, rig.KuboOptions{})
	ks, err := kubo.New(n.APIAddr, kubo.Options{Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := newStore(t)
	ctx := context.Background()
	for i, size := range sizes {
		want, err := ks.Add(ctx, payload(uint64(i), size))
		if err != nil {
			t.Fatalf("kubo add %d bytes: %v", size, err)
		}
		got, err := cs.Add(ctx, payload(uint64(i), size))
		if err != nil {
			t.Fatalf("car add %d bytes: %v", size, err)
		}
		if got != want {
			t.Errorf("%d bytes: car store made %s, kubo %s", size, got, want)
		} else {
			t.Logf("%9d bytes: %s (both)", size, got)
		}
	}
	// A block put must agree too.
	for _, codec := range []uint64{cid.Raw} {
		data := []byte(`{"mediaType":"application/vnd.oci.image.index.v1+json"}`)
		want, err := ks.PutBlock(ctx, codec, data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cs.PutBlock(ctx, codec, data)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("block put: car %s, kubo %s", got, want)
		}
	}
}

// TestDagImport writes every size into a CAR, imports it into a fresh
// daemon, collects garbage and reads every file back byte for byte.
func TestDagImport(t *testing.T) {
	cs, path := newStore(t)
	ctx := context.Background()
	roots := make([]cid.Cid, len(sizes))
	for i, size := range sizes {
		c, err := cs.Add(ctx, payload(uint64(i), size))
		if err != nil {
			t.Fatal(err)
		}
		roots[i] = c
	}
	if err := cs.Finish(roots...); err != nil {
		t.Fatal(err)
	}
	checkCAR(t, path, roots)

	n := rig.StartKubo(t, rig.KuboOptions{})
	run(n, "dag", "import", path)
	run(n, "repo", "gc")
	for i, size := range sizes {
		out, err := output(n, "cat", roots[i].String())
		if err != nil {
			t.Fatalf("ipfs cat %s (%d bytes): %v", roots[i], size, err)
		}
		if int64(len(out)) != size || sha256.Sum256(out) != sum(t, payload(uint64(i), size)) {
			t.Errorf("ipfs cat %s: %d bytes, not the %d added", roots[i], len(out), size)
		}
	}
}

// checkCAR reads the file with go-car, verifying every block's hash, and
// checks the header's roots.
func checkCAR(t *testing.T, path string, roots []cid.Cid) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br, err := carv2.NewBlockReader(f)
	if err != nil {
		t.Fatalf("go-car: %v", err)
	}
	if br.Version != 1 {
		t.Errorf("CAR version %d, want 1", br.Version)
	}
	if len(br.Roots) != len(roots) {
		t.Fatalf("roots %v, want %v", br.Roots, roots)
	}
	for i := range roots {
		if br.Roots[i] != roots[i] {
			t.Errorf("root %d = %s, want %s", i, br.Roots[i], roots[i])
		}
	}
	seen := map[cid.Cid]bool{}
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("go-car: %v", err)
		}
		c2, err := b.Cid().Prefix().Sum(b.RawData())
		if err != nil || c2 != b.Cid() {
			t.Fatalf("block %s: hash mismatch", b.Cid())
		}
		if seen[b.Cid()] {
			t.Errorf("block %s written twice", b.Cid())
		}
		seen[b.Cid()] = true
	}
}

func TestCatAndDedup(t *testing.T) {
	cs, path := newStore(t)
	ctx := context.Background()
	const size = 3*262144 + 17
	c, err := cs.Add(ctx, payload(1, size))
	if err != nil {
		t.Fatal(err)
	}
	nb, nbytes := cs.Len()
	again, err := cs.Add(ctx, payload(1, size))
	if err != nil || again != c {
		t.Fatalf("second add: %s, %v", again, err)
	}
	if nb2, nbytes2 := cs.Len(); nb2 != nb || nbytes2 != nbytes {
		t.Errorf("second add wrote blocks: %d/%d -> %d/%d", nb, nbytes, nb2, nbytes2)
	}
	all, _ := io.ReadAll(payload(1, size))
	for _, tc := range []struct{ off, n int64 }{{0, -1}, {0, 10}, {262140, 10}, {size - 5, -1}, {size - 5, 100}, {524288, 262144}} {
		rc, err := cs.Cat(ctx, c, tc.off, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		end := int64(len(all))
		if tc.n >= 0 && tc.off+tc.n < end {
			end = tc.off + tc.n
		}
		if !bytes.Equal(got, all[tc.off:end]) {
			t.Errorf("cat %d+%d: %d bytes, differ", tc.off, tc.n, len(got))
		}
	}
	if _, err := cs.Cat(ctx, mustCID(t, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"), 0, -1); !errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("cat of a missing CID: %v, want ErrNotFound", err)
	}
	if err := cs.Pin(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := cs.Finish(); !errors.Is(err, car.ErrNoRoots) {
		t.Errorf("Finish(): %v", err)
	}
	missing := mustCID(t, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
	if err := cs.Finish(missing); !errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("Finish(missing root): %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Finish left %s", path)
	}
	if err := cs.Finish(c); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Add(ctx, bytes.NewReader([]byte("x"))); !errors.Is(err, car.ErrFinished) {
		t.Errorf("Add after Finish: %v", err)
	}
	// Still readable after Finish.
	rc, err := cs.Cat(ctx, c, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, all) {
		t.Error("cat after Finish differs")
	}
	rc.Close()
	checkCAR(t, path, []cid.Cid{c})
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestBoundedMemory adds 512 MiB and samples the heap meanwhile: the store
// must stream, never hold the layer.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cs, _ := newStore(t)
	// Start from a collected heap: earlier tests' garbage is not ours.
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		// The live heap as of the last GC: garbage between collections
		// does not count, retained memory does.
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	const size = 512 << 20
	if _, err := cs.Add(context.Background(), payload(9, size)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	t.Logf("peak live heap while adding %d MiB: %.1f MiB", size>>20, float64(peak.Load())/(1<<20))
	if peak.Load() > 32<<20 {
		t.Errorf("peak heap %d MiB: the store does not stream", peak.Load()>>20)
	}
}

func TestAddCancelled(t *testing.T) {
	cs, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cs.Add(ctx, payload(1, 1<<20)); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a cancelled context: %v", err)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConcurrentAdds adds overlapping content from several goroutines, as
// the writer does with --jobs: every CID must be right and every block
// written once.
func TestConcurrentAdds(t *testing.T) {
	cs, path := newStore(t)
	ref, _ := newStore(t)
	ctx := context.Background()
	const workers = 8
	got := make([]cid.Cid, workers)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			c, err := cs.Add(ctx, payload(uint64(w%3), int64(w%3+1)*700000))
			got[w] = c
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for w := range workers {
		want, err := ref.Add(ctx, payload(uint64(w%3), int64(w%3+1)*700000))
		if err != nil {
			t.Fatal(err)
		}
		if got[w] != want {
			t.Errorf("worker %d: %s, want %s", w, got[w], want)
		}
	}
	if err := cs.Finish(got[0], got[1], got[2]); err != nil {
		t.Fatal(err)
	}
	checkCAR(t, path, got[:3])
}

// run runs the ipfs CLI on n's repo and returns its trimmed stdout.
func run(n *rig.Kubo, args ...string) string { return strings.TrimSpace(n.Run(args...)) }

// output runs the ipfs CLI on n's repo and returns its stdout as is.
func output(n *rig.Kubo, args ...string) ([]byte, error) {
	s, err := n.RunErr(nil, args...)
	return []byte(s), err
}
