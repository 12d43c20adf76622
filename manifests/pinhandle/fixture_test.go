package pinhandle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// image is a small IPFS-enabled image written into a store as the format
// says: every blob added with the fixed settings, every descriptor carrying
// its ipfs:// URL, a root descriptor naming the index.
type image struct {
	in    pinhandle.Input
	files map[digest.Digest][]byte // every blob's bytes
	root  []byte
}

// layerTar is a gzipped tar holding one file of n pseudo-random bytes.
func layerTar(t *testing.T, seed uint64, n int) (gz []byte, diffID digest.Digest) {
	t.Helper()
	content := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), 1}).Read(content)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "data.bin", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	tw.Close()
	var gb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gb, gzip.NoCompression)
	zw.Write(tb.Bytes())
	zw.Close()
	return gb.Bytes(), digest.FromBytes(tb.Bytes())
}

func writeImage(t *testing.T, store ipfs.Store, layerSizes ...int) *image {
	t.Helper()
	ctx := context.Background()
	img := &image{files: map[digest.Digest][]byte{}}
	add := func(mt string, b []byte) ocispec.Descriptor {
		c, err := store.Add(ctx, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(b)
		img.files[d] = b
		img.in.Blobs = append(img.in.Blobs, pinhandle.Blob{Digest: d, Size: int64(len(b)), CID: c})
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b)), URLs: []string{ipfs.URL(c)}}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i, n := range layerSizes {
		gz, diffID := layerTar(t, uint64(i), n)
		layers = append(layers, add(ocispec.MediaTypeImageLayerGzip, gz))
		diffIDs = append(diffIDs, diffID)
	}
	cfg := add(ocispec.MediaTypeImageConfig, mustJSON(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
	}))
	man := add(ocispec.MediaTypeImageManifest, mustJSON(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    layers,
	}))
	man.Platform = &ocispec.Platform{Architecture: "amd64", OS: "linux"}
	idx := add(ocispec.MediaTypeImageIndex, mustJSON(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{man},
	}))
	img.root = mustJSON(idx)
	rc, err := store.Add(ctx, bytes.NewReader(img.root))
	if err != nil {
		t.Fatal(err)
	}
	img.in.Root = rc
	img.in.RootDescriptor = img.root
	return img
}

// writeLayout writes the handle's layout to a directory, as a user would
// lay it out by hand: the input to `ipfs add -r`.
func writeLayout(t *testing.T, dir string, img *image, index []byte) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644))
	must(os.WriteFile(filepath.Join(dir, "ipfs-root.json"), img.root, 0o644))
	for d, b := range img.files {
		must(os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644))
	}
}
