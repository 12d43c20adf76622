package oci_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// mirrorUpstream writes the image at ref into store as sync's plain mode
// does (keeping platforms ps), with its upstream layout and a pin handle
// linking it; it returns the layout and the handle.
func mirrorUpstream(t *testing.T, store *car.Store, ref string, ps ...v1.Platform) (cid.Cid, cid.Cid) {
	t.Helper()
	ctx := context.Background()
	ro := registry.Options{Insecure: true}
	r, _ := registry.ParseRef(ref, ro)
	src, err := registry.OpenSource(ctx, r, ro)
	if err != nil {
		t.Fatal(err)
	}
	node, rec := upstream.Record(src.Node(), digest.Digest(src.Digest.String()))
	res, err := manifests.NewWriter(store, 4, nil).Write(ctx, node, manifests.Options{Platforms: ps})
	if err != nil {
		t.Fatal(err)
	}
	var blobs []ocidir.Blob
	for _, b := range res.Blobs {
		blobs = append(blobs, ocidir.Blob{Digest: b.Digest, Size: b.Size, CID: b.CID})
	}
	in, err := rec.Input(blobs)
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.Build(ctx, store, in)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pinhandle.Builder(store)(ctx, res, up)
	if err != nil {
		t.Fatal(err)
	}
	return up.CID, h
}

func remoteDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}

// TestPullUpstream: the upstream documents written back keep their digests
// — to a registry and to an OCI layout, from the upstream layout or the
// pin handle; a partial index only by one kept platform; an
// IPFS-enabled root has no upstream documents.
func TestPullUpstream(t *testing.T) {
	ctx := context.Background()
	src, dst := inProcessRegistry(t), inProcessRegistry(t)
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	idx := rig.Index(t, true,
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 81, 300<<10, true)}}),
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &arm, Layers: []v1.Layer{rig.Layer(t, 82, 999, true)}}))
	top := rig.Push(t, src+"/up/app:1", idx).String()
	store, err := car.New(filepath.Join(t.TempDir(), "s.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	up, handle := mirrorUpstream(t, store, src+"/up/app:1")
	o := oci.PullOptions{Registry: registry.Options{Insecure: true}}

	for i, c := range []cid.Cid{up, handle} {
		ref := dst + "/faithful/app:" + []string{"a", "b"}[i]
		res, err := oci.PullUpstream(ctx, store, c, ref, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest.String() != top || remoteDigest(t, ref) != top {
			t.Errorf("%s: pushed %s, registry has %s; want upstream %s", ref, res.Digest, remoteDigest(t, ref), top)
		}
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := oci.PullUpstream(ctx, store, handle, "oci:"+dir+":1", o); err != nil {
		t.Fatal(err)
	}
	lp, _ := layout.FromPath(dir)
	li, _ := lp.ImageIndex()
	lim, _ := li.IndexManifest()
	if len(lim.Manifests) != 1 || lim.Manifests[0].Digest.String() != top {
		t.Errorf("layout index %+v, want %s", lim.Manifests, top)
	}
	if raw, _ := idx.RawManifest(); !bytes.Equal(mustRead(t, filepath.Join(dir, "blobs", "sha256", top[len("sha256:"):])), raw) {
		t.Error("the layout's index is not the upstream bytes")
	}
	// Read by a client we did not write: oras resolves the tag in the
	// layout and checks the index's digest (skopeo 1.9's oci: transport
	// skips the Docker media types the upstream index keeps).
	if out, err := rig.Oras(t, "manifest", "fetch", "--oci-layout", "--descriptor", dir+":1"); err != nil || !strings.Contains(out, top) {
		t.Errorf("oras manifest fetch --oci-layout %s:1: %v\n%s", dir, err, out)
	}

	// Only amd64 kept.
	part, _ := mirrorUpstream(t, store, src+"/up/app:1", amd)
	if _, err := oci.PullUpstream(ctx, store, part, dst+"/faithful/part:1", o); !errors.Is(err, oci.ErrPartialUpstream) {
		t.Errorf("partial index: %v, want ErrPartialUpstream", err)
	}
	po := o
	po.Platforms = []v1.Platform{amd}
	res, err := oci.PullUpstream(ctx, store, part, dst+"/faithful/part:1", po)
	if err != nil {
		t.Fatal(err)
	}
	wim, _ := idx.IndexManifest()
	for _, m := range wim.Manifests {
		if m.Platform.Architecture == "amd64" && (res.Digest != m.Digest || remoteDigest(t, dst+"/faithful/part:1") != m.Digest.String()) {
			t.Errorf("one platform: %s, want the upstream amd64 manifest %s", res.Digest, m.Digest)
		}
	}
	po.Platforms = []v1.Platform{arm}
	if _, err := oci.PullUpstream(ctx, store, part, dst+"/faithful/part:2", po); !errors.Is(err, oci.ErrNoMatchingPlatform) {
		t.Errorf("a platform not kept: %v", err)
	}

	// No upstream documents: the IPFS-enabled root, a handle without them.
	root, err := pinhandle.RootOf(ctx, store, handle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.PullUpstream(ctx, store, root, dst+"/faithful/x:1", o); !errors.Is(err, oci.ErrNoUpstream) {
		t.Errorf("a root CID: %v, want ErrNoUpstream", err)
	}
	if _, err := oci.PullUpstream(ctx, store, up, "docker-archive:"+filepath.Join(t.TempDir(), "x.tar"), o); !errors.Is(err, registry.ErrBadReference) {
		t.Errorf("docker-archive: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
