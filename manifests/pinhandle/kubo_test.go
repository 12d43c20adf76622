package pinhandle_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

func kuboStore(t *testing.T, n *rig.Kubo) *kubo.Store {
	t.Helper()
	s, err := kubo.New(n.APIAddr, kubo.Options{Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSameAsKuboAddR: the handle built through the RPC store, through the
// CAR store and with simulated sizes equals what `ipfs add -r
// --cid-version=1 --raw-leaves` makes of the same layout on disk.
func TestSameAsKuboAddR(t *testing.T) {
	ctx := context.Background()
	n := rig.StartKubo(t, rig.KuboOptions{})
	ks := kuboStore(t, n)
	img := writeImage(t, ks, 1000, 262144, 5_000_000)
	img.in.RefName = "example.com/app:1.0"
	h, err := pinhandle.Build(ctx, ks, img.in)
	if err != nil {
		t.Fatal(err)
	}
	index := []byte(run(n, "cat", h.String()+"/index.json"))
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil || len(idx.Manifests) != 1 ||
		idx.Manifests[0].Annotations[ocispec.AnnotationRefName] != "example.com/app:1.0" ||
		idx.Manifests[0].Digest != img.in.Blobs[len(img.in.Blobs)-1].Digest {
		t.Fatalf("index.json = %s (%v)", index, err)
	}

	dir := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, dir, img, index)
	want := run(n, "add", "-r", "-Q", "--cid-version=1", "--raw-leaves", "--pin=false", dir)
	if h.String() != want {
		t.Fatalf("handle %s, ipfs add -r %s", h, want)
	}

	cs, _ := carStore(t)
	cimg := writeImage(t, cs, 1000, 262144, 5_000_000)
	cimg.in.RefName = img.in.RefName
	hc, err := pinhandle.Build(ctx, cs, cimg.in)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := pinhandle.Build(ctx, plain{ks}, img.in)
	if err != nil {
		t.Fatal(err)
	}
	if hc != h || hs != h {
		t.Errorf("handles differ: kubo %s, car %s, simulated sizes %s", h, hc, hs)
	}
	if got, want := run(n, "files", "stat", "--format=<cumulsize>", "/ipfs/"+h.String()), fmt.Sprint(dirSize(t, n, h)); got != want {
		t.Errorf("cumulative size %s, blocks add up to %s", got, want)
	}
}

// dirSize adds up the sizes of every block under c (the image has no
// repeated block, so this is the cumulative size).
func dirSize(t *testing.T, n *rig.Kubo, c cid.Cid) int {
	t.Helper()
	var st struct{ TotalSize int }
	if err := json.Unmarshal([]byte(run(n, "dag", "stat", "--progress=false", "--enc=json", c.String())), &st); err != nil {
		t.Fatal(err)
	}
	return st.TotalSize
}

// TestShardedLikeKubo: with thousands of blobs blobs/sha256 outgrows a
// basic directory; the handle must shard it as kubo does.
func TestShardedLikeKubo(t *testing.T) {
	ctx := context.Background()
	n := rig.StartKubo(t, rig.KuboOptions{})
	ks := kuboStore(t, n)
	img := writeImage(t, ks, 10)
	dir := filepath.Join(t.TempDir(), "layout")
	for i := range 3000 {
		b := []byte(fmt.Sprintf("blob %d", i))
		c, err := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum(b)
		if err != nil {
			t.Fatal(err)
		}
		img.files[digest.FromBytes(b)] = b
		img.in.Blobs = append(img.in.Blobs, pinhandle.Blob{Digest: digest.FromBytes(b), Size: int64(len(b)), CID: c})
	}
	h, err := pinhandle.Build(ctx, ks, img.in)
	if err != nil {
		t.Fatal(err)
	}
	writeLayout(t, dir, img, []byte(run(n, "cat", h.String()+"/index.json")))
	want := run(n, "add", "-r", "-Q", "--cid-version=1", "--raw-leaves", "--pin=false", dir)
	if h.String() != want {
		t.Fatalf("handle %s, ipfs add -r %s", h, want)
	}
	// And the directory really is sharded (else the test proves little).
	sha, err := cid.Decode(strings.TrimPrefix(run(n, "resolve", "/ipfs/"+h.String()+"/blobs/sha256"), "/ipfs/"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := output(n, "block", "get", sha.String())
	if err != nil {
		t.Fatal(err)
	}
	pn, err := merkledag.DecodeProtobuf(raw)
	if err != nil {
		t.Fatal(err)
	}
	if fsn, err := ft.FSNodeFromBytes(pn.Data()); err != nil || fsn.Type() != ft.THAMTShard {
		t.Errorf("blobs/sha256 is not a HAMT shard (%v)", err)
	}
}

// TestPinKeepsImage: a CAR rooted at the handle, imported into a fresh node
// without pinning roots; pinning the handle alone keeps every blob through
// repo gc, while pinning the root CID alone keeps one block.
func TestPinKeepsImage(t *testing.T) {
	ctx := context.Background()
	cs, path := carStore(t)
	img := writeImage(t, cs, 700, 3_000_000)
	h, err := pinhandle.Build(ctx, cs, img.in)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Finish(h); err != nil {
		t.Fatal(err)
	}

	n := rig.StartKubo(t, rig.KuboOptions{})
	// The root CID alone keeps one block.
	run(n, "dag", "import", "--pin-roots=false", path)
	run(n, "pin", "add", img.in.Root.String())
	run(n, "repo", "gc")
	lost := 0
	for _, b := range img.in.Blobs {
		if _, err := n.RunErr(nil, "block", "stat", "--offline", b.CID.String()); err != nil {
			lost++
		}
	}
	if lost != len(img.in.Blobs) {
		t.Errorf("pinning the root CID kept %d of %d blobs; the format links none", len(img.in.Blobs)-lost, len(img.in.Blobs))
	}

	// The handle keeps them all.
	run(n, "dag", "import", "--pin-roots=false", path)
	run(n, "pin", "add", h.String())
	run(n, "repo", "gc")
	for _, b := range img.in.Blobs {
		out, err := output(n, "cat", "--offline", b.CID.String())
		if err != nil {
			t.Fatalf("blob %s lost after gc: %v", b.Digest, err)
		}
		if digest.FromBytes(out) != b.Digest {
			t.Errorf("blob %s reads back as %s", b.Digest, digest.FromBytes(out))
		}
	}
	if got := run(n, "cat", "--offline", h.String()+"/ipfs-root.json"); got != string(img.root) {
		t.Errorf("ipfs-root.json = %s", got)
	}
	// And `ipfs get` of the handle is an OCI layout whose blobs hash right.
	out := filepath.Join(t.TempDir(), "got")
	run(n, "get", "--offline", "-o", out, h.String())
	for d, b := range img.files {
		got, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", d.Encoded()))
		if err != nil || sha256.Sum256(got) != sha256.Sum256(b) {
			t.Errorf("blobs/sha256/%s: %v", d.Encoded(), err)
		}
	}
}

// TestSkopeoReadsHandle: `ipfs get <handle>` is an OCI layout skopeo copies.
func TestSkopeoReadsHandle(t *testing.T) {
	skopeo := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	ctx := context.Background()
	n := rig.StartKubo(t, rig.KuboOptions{})
	ks := kuboStore(t, n)
	img := writeImage(t, ks, 500, 2_000_000)
	img.in.RefName = "app"
	h, err := pinhandle.Build(ctx, ks, img.in)
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	run(n, "get", "-o", layout, h.String())
	for _, src := range []string{"oci:" + layout, "oci:" + layout + ":app"} {
		dst := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command(skopeo, "--override-os", "linux", "--override-arch", "amd64",
			"copy", "--quiet", src, "dir:"+dst)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy %s: %v\n%s", src, err, out)
		}
		for d := range img.files {
			man, _ := os.ReadFile(filepath.Join(dst, "manifest.json"))
			if digest.FromBytes(man) == d {
				continue // the manifest itself is stored as manifest.json
			}
			if strings.Contains(string(man), d.String()) {
				b, err := os.ReadFile(filepath.Join(dst, d.Encoded()))
				if err != nil || digest.FromBytes(b) != d {
					t.Errorf("%s: blob %s missing or corrupt: %v", src, d, err)
				}
			}
		}
	}
}

// run runs the ipfs CLI on n's repo and returns its trimmed stdout.
func run(n *rig.Kubo, args ...string) string { return strings.TrimSpace(n.Run(args...)) }

// output runs the ipfs CLI on n's repo and returns its stdout as is.
func output(n *rig.Kubo, args ...string) ([]byte, error) {
	s, err := n.RunErr(nil, args...)
	return []byte(s), err
}
