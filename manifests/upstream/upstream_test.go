package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

func carStore(t *testing.T) *car.Store {
	t.Helper()
	s, err := car.New(filepath.Join(t.TempDir(), "x.car"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func blobsOf(res *manifests.Result) []ocidir.Blob {
	var out []ocidir.Blob
	for _, b := range res.Blobs {
		out = append(out, ocidir.Blob{Digest: b.Digest, Size: b.Size, CID: b.CID})
	}
	return out
}

// TestRecordBuildLoad: a Docker manifest list with two platforms, one
// kept, written from a registry through Record: the recorded documents are
// the registry's bytes, read with no GET more than the write's own; the
// layout reads back with the upstream digests, the platform not kept is
// Missing, and every config and layer is linked by the image's own CID.
func TestRecordBuildLoad(t *testing.T) {
	ctx := context.Background()
	var c rig.Counter
	srv := httptest.NewServer(c.Counting(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	idx := rig.Index(t, true,
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 1, 300<<10, true), rig.Layer(t, 2, 1000, true)}}),
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &arm, Layers: []v1.Layer{rig.Layer(t, 3, 1000, true)}}))
	top := rig.Push(t, host+"/up/img:1", idx)

	ro := registry.Options{Insecure: true}
	ref, err := registry.ParseRef(host+"/up/img:1", ro)
	if err != nil {
		t.Fatal(err)
	}
	c.Reset()
	src, err := registry.OpenSource(ctx, ref, ro)
	if err != nil {
		t.Fatal(err)
	}
	node, rec := upstream.Record(src.Node(), digest.Digest(src.Digest.String()))
	s := carStore(t)
	res, err := manifests.NewWriter(s, 2, nil).Write(ctx, node, manifests.Options{Platforms: []v1.Platform{amd}})
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Get("GET manifests"); n != 2 {
		t.Errorf("manifest GETs %d, want 2 (the index, the kept manifest): %v", n, c.Snapshot())
	}
	in, err := rec.Input(blobsOf(res))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Docs) != 2 || len(in.Blobs) != 3 || in.Index[0].Digest.String() != top.String() || in.Index[0].MediaType != manifests.DockerManifestList {
		t.Fatalf("input: index %v, %d docs, %d blobs", in.Index, len(in.Docs), len(in.Blobs))
	}
	n, err := upstream.Build(ctx, s, in)
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic: the same input, shuffled, gives the same layout.
	in2 := in
	in2.Docs = []upstream.Doc{in.Docs[1], in.Docs[0]}
	if n2, err := upstream.Build(ctx, s, in2); err != nil || n2 != n {
		t.Errorf("Build again: %v, %v; want %v", n2, err, n)
	}

	im, err := upstream.Load(ctx, s, n.CID)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(host+"/up/img:1", name.Insecure)
	want, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Top(); !bytes.Equal(got.Bytes, want.Manifest) || got.Digest.String() != top.String() || got.MediaType != manifests.DockerManifestList {
		t.Errorf("top: %s %s, want the registry's bytes", got.MediaType, got.Digest)
	}
	wim, _ := idx.IndexManifest()
	for _, m := range wim.Manifests {
		d := digest.Digest(m.Digest.String())
		doc, held := im.Doc(d)
		switch m.Platform.Architecture {
		case "amd64":
			mr, _ := name.ParseReference(host+"/up/img@"+m.Digest.String(), name.Insecure)
			md, err := remote.Get(mr)
			if err != nil {
				t.Fatal(err)
			}
			if !held || !bytes.Equal(doc.Bytes, md.Manifest) || doc.MediaType != manifests.DockerManifest {
				t.Errorf("amd64 manifest: held %v, %s", held, doc.MediaType)
			}
			mf, _ := v1.ParseManifest(bytes.NewReader(md.Manifest))
			for _, l := range append(mf.Layers, mf.Config) {
				bc, ok := im.Blob(digest.Digest(l.Digest.String()))
				var wantCID string
				for _, b := range res.Blobs {
					if b.Digest.String() == l.Digest.String() {
						wantCID = b.CID.String()
					}
				}
				if !ok || bc.String() != wantCID {
					t.Errorf("blob %s: %s, want the image's %s", l.Digest, bc, wantCID)
				}
			}
		case "arm64":
			if held {
				t.Error("the arm64 manifest was not kept, yet the layout holds it")
			}
			if ms := im.Missing(); len(ms) != 1 || ms[0].Digest != d {
				t.Errorf("missing %v, want the arm64 manifest", ms)
			}
		}
	}
}

// TestBuildChecks: a document whose bytes do not hash to its digest is
// refused; a layout whose file is not its digest's bytes fails Load.
func TestBuildChecks(t *testing.T) {
	ctx := context.Background()
	s := carStore(t)
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2},"layers":[]}`)
	good := upstream.Doc{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Bytes: m}
	bad := good
	bad.Bytes = append(bytes.Clone(m), ' ')
	if _, err := upstream.Build(ctx, s, upstream.Input{Index: []ocispec.Descriptor{good.Descriptor()}, Docs: []upstream.Doc{bad}}); !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Errorf("Build of a wrong document: %v", err)
	}
	if _, err := upstream.Build(ctx, s, upstream.Input{Index: []ocispec.Descriptor{good.Descriptor()}}); !errors.Is(err, upstream.ErrInvalid) {
		t.Errorf("Build without the top document: %v", err)
	}
	// A layout naming the manifest's digest by other bytes.
	other, err := ocidir.PutFile(ctx, s, bad.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	index := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + good.Digest.String() + `","size":` + strconv.Itoa(len(m)) + `}]}`)
	n, err := ocidir.Build(ctx, s, ocidir.Layout{Index: index, Blobs: []ocidir.Blob{{Digest: good.Digest, Size: int64(len(m)), CID: other.CID}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.Load(ctx, s, n.CID); !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Errorf("Load of a tampered layout: %v", err)
	}
	if _, err := upstream.Load(ctx, s, other.CID); !errors.Is(err, upstream.ErrNotUpstream) {
		t.Errorf("Load of a file: %v", err)
	}
	ok, err := upstream.Build(ctx, s, upstream.Input{Index: []ocispec.Descriptor{good.Descriptor()}, Docs: []upstream.Doc{good}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := upstream.Load(ctx, s, ok.CID)
	if err != nil || !bytes.Equal(im.Top().Bytes, m) {
		t.Fatalf("Load: %v", err)
	}
}
