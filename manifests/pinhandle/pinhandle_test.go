package pinhandle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
)

func carStore(t *testing.T) (*car.Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.car")
	s, err := car.New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

// plain hides every method but ipfs.Store's: a store that cannot return
// blocks, so Build falls back to simulated sizes.
type plain struct{ ipfs.Store }

type prng struct{ r *rand.ChaCha8 }

func (p *prng) Read(b []byte) (int, error) { return p.r.Read(b) }

func payload(seed uint64, n int64) io.Reader {
	return io.LimitReader(&prng{r: rand.NewChaCha8([32]byte{byte(seed), 9})}, n)
}

// dagSize sums every block under c: the true cumulative size.
func dagSize(t *testing.T, s *car.Store, c cid.Cid) uint64 {
	t.Helper()
	b, err := s.GetBlock(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	total := uint64(len(b))
	if c.Type() == cid.DagProtobuf {
		pn, err := merkledag.DecodeProtobuf(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range pn.Links() {
			total += dagSize(t, s, l.Cid)
		}
	}
	return total
}

func TestSimulatedTsize(t *testing.T) {
	s, _ := carStore(t)
	for i, size := range []int64{0, 1, 262144, 262145, 2*262144 + 5, 174 * 262144, 174*262144 + 1, 174*262144*2 + 262144*3 + 7} {
		c, err := s.Add(context.Background(), payload(uint64(i), size))
		if err != nil {
			t.Fatal(err)
		}
		want := dagSize(t, s, c)
		got, err := pinhandle.SimulatedTsize(size)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%d bytes: simulated Tsize %d, DAG %d", size, got, want)
		}
	}
}

func TestBuildSameEverywhere(t *testing.T) {
	ctx := context.Background()
	s, _ := carStore(t)
	img := writeImage(t, s, 100, 600_000, 3_000_000)
	h1, err := pinhandle.Build(ctx, s, img.in)
	if err != nil {
		t.Fatal(err)
	}
	// Shuffled and repeated blobs, root descriptor read from the store,
	// sizes simulated instead of read: the same handle.
	in := img.in
	in.Blobs = append(slices.Clone(in.Blobs), in.Blobs[1])
	rand.Shuffle(len(in.Blobs), func(i, j int) { in.Blobs[i], in.Blobs[j] = in.Blobs[j], in.Blobs[i] })
	in.RootDescriptor = nil
	h2, err := pinhandle.Build(ctx, plain{s}, in)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Errorf("same image, two handles: %s, %s", h1, h2)
	}
	if h1.Type() != cid.DagProtobuf || h1.Version() != 1 {
		t.Errorf("handle %s: want a CIDv1 dag-pb", h1)
	}
	// A ref name changes index.json, so the handle.
	in.RefName = "example:1"
	h3, err := pinhandle.Build(ctx, s, in)
	if err != nil {
		t.Fatal(err)
	}
	if h3 == h1 {
		t.Error("the ref name did not change the handle")
	}
	root, err := pinhandle.RootOf(ctx, s, h1)
	if err != nil || root != img.in.Root {
		t.Errorf("RootOf(handle) = %s, %v; want %s", root, err, img.in.Root)
	}
	if _, err := pinhandle.RootOf(ctx, s, img.in.Root); !errors.Is(err, pinhandle.ErrNotHandle) {
		t.Errorf("RootOf(root) = %v, want ErrNotHandle", err)
	}
	// The handle's files read back through the store.
	rc, err := s.Cat(ctx, root, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, img.root) {
		t.Errorf("root descriptor reads back as %q", b)
	}
}

func TestBuildRejects(t *testing.T) {
	ctx := context.Background()
	s, _ := carStore(t)
	img := writeImage(t, s, 10)
	other := writeImage(t, s, 20)
	for name, mod := range map[string]func(in *pinhandle.Input){
		"no root":          func(in *pinhandle.Input) { in.Root = cid.Undef },
		"target missing":   func(in *pinhandle.Input) { in.Blobs = in.Blobs[:len(in.Blobs)-1] },
		"wrong root bytes": func(in *pinhandle.Input) { in.RootDescriptor = other.root },
		"not a descriptor": func(in *pinhandle.Input) {
			in.RootDescriptor = []byte(`{}`)
			in.Root, _ = s.PutBlock(ctx, cid.Raw, in.RootDescriptor)
		},
		"two CIDs for a digest": func(in *pinhandle.Input) {
			b := in.Blobs[0]
			b.CID = other.in.Blobs[0].CID
			in.Blobs = append(in.Blobs, b)
		},
		"bad digest": func(in *pinhandle.Input) {
			in.Blobs = append(in.Blobs, pinhandle.Blob{Digest: "sha256:abc", CID: in.Root})
		},
		"target's URL disagrees": func(in *pinhandle.Input) {
			for i := range in.Blobs {
				in.Blobs[i].CID = other.in.Blobs[0].CID
				in.Blobs[i].Size = other.in.Blobs[0].Size
			}
			in.Blobs = in.Blobs[len(in.Blobs)-1:]
			in.Blobs[0].Size = int64(len(img.files[in.Blobs[0].Digest]))
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := img.in
			in.Blobs = slices.Clone(in.Blobs)
			mod(&in)
			if _, err := pinhandle.Build(ctx, s, in); !errors.Is(err, pinhandle.ErrInvalidInput) {
				t.Errorf("Build: %v, want ErrInvalidInput", err)
			}
		})
	}
	// A dag-pb CID whose file size disagrees with the blob's.
	in := img.in
	in.Blobs = slices.Clone(in.Blobs)
	big, err := s.Add(ctx, payload(3, 300_000))
	if err != nil {
		t.Fatal(err)
	}
	in.Blobs = append(in.Blobs, pinhandle.Blob{Digest: digest.FromString("x"), Size: 299_999, CID: big})
	if _, err := pinhandle.Build(ctx, s, in); !errors.Is(err, pinhandle.ErrInvalidInput) {
		t.Errorf("Build with a wrong blob size: %v, want ErrInvalidInput", err)
	}
}
