package rig

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RandomBytes returns n deterministic pseudo-random (incompressible) bytes.
func RandomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8(seedKey(seed)))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func seedKey(seed uint64) [32]byte {
	var k [32]byte
	for i := 0; i < 8; i++ {
		k[i] = byte(seed >> (8 * i))
	}
	return k
}

// TarFile is one file of a test layer.
type TarFile struct {
	Name string
	Data []byte
}

// Tar builds a deterministic tar (fixed times, modes, owners).
func Tar(files ...TarFile) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		_ = tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		_, _ = tw.Write(f.Data)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// Gzip compresses deterministically.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// Layer returns a gzip layer holding one file of size random bytes from
// seed; docker picks Docker's media type, else OCI's.
func Layer(t testing.TB, seed uint64, size int, docker bool) v1.Layer {
	t.Helper()
	gz := Gzip(Tar(TarFile{Name: fmt.Sprintf("data/%d.bin", seed), Data: RandomBytes(seed, size)}))
	mt := types.OCILayer
	if docker {
		mt = types.DockerLayer
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ImageSpec describes a test image.
type ImageSpec struct {
	Platform *v1.Platform
	Layers   []v1.Layer
	Docker   bool
}

// Image builds an image: the layers on an empty base, the platform in the
// config, OCI or Docker media types.
func Image(t testing.TB, s ImageSpec) v1.Image {
	t.Helper()
	base := empty.Image
	if s.Docker {
		base = mutate.MediaType(base, types.DockerManifestSchema2)
		base = mutate.ConfigMediaType(base, types.DockerConfigJSON)
	} else {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, s.Layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if s.Platform != nil {
		cf.OS, cf.Architecture, cf.Variant = s.Platform.OS, s.Platform.Architecture, s.Platform.Variant
	}
	cf.Config.Env = []string{"PATH=/usr/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Index builds an index of images, each with its config's platform.
func Index(t testing.TB, docker bool, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	if docker {
		idx = mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	}
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		p := cf.Platform()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return idx
}

// MultiPlatform builds the standard test index: linux/amd64, linux/arm64
// and linux/arm/v7, each with its own layers plus one shared base layer.
func MultiPlatform(t testing.TB, seed uint64, layerSize int) v1.ImageIndex {
	t.Helper()
	shared := Layer(t, seed, layerSize, false)
	var imgs []v1.Image
	for i, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}} {
		p := p
		layers := []v1.Layer{shared, Layer(t, seed+uint64(10*i+1), layerSize, false), Layer(t, seed+uint64(10*i+2), layerSize/3+7, false)}
		imgs = append(imgs, Image(t, ImageSpec{Platform: &p, Layers: layers}))
	}
	return Index(t, false, imgs...)
}

// Push writes an image or index to a registry reference.
func Push(t testing.TB, ref string, node any) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	switch n := node.(type) {
	case v1.Image:
		err = remote.Write(r, n)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, n)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return Digest(t, node)
}

// Digest of an image or index.
func Digest(t testing.TB, node any) v1.Hash {
	t.Helper()
	var (
		h   v1.Hash
		err error
	)
	switch n := node.(type) {
	case v1.Image:
		h, err = n.Digest()
	case v1.ImageIndex:
		h, err = n.Digest()
	}
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// WriteLayout writes node to a new OCI layout at dir, named refName.
func WriteLayout(t testing.TB, dir string, node any, refName string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName}))
	}
	switch n := node.(type) {
	case v1.Image:
		err = p.AppendImage(n, opts...)
	case v1.ImageIndex:
		err = p.AppendIndex(n, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// WriteArchive writes img as a docker save tarball.
func WriteArchive(t testing.TB, path, tag string, img v1.Image) {
	t.Helper()
	tg, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tg, img); err != nil {
		t.Fatal(err)
	}
}

// SourceBlobs maps every layer and config digest of an image or index (one
// level of children) to its bytes.
func SourceBlobs(t testing.TB, node any) map[string][]byte {
	t.Helper()
	var imgs []v1.Image
	switch n := node.(type) {
	case v1.Image:
		imgs = append(imgs, n)
	case v1.ImageIndex:
		im, err := n.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range im.Manifests {
			img, err := n.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
	}
	out := map[string][]byte{}
	for _, img := range imgs {
		cfg, err := img.RawConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cn, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		out[cn.String()] = cfg
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[d.String()] = b
		}
	}
	return out
}
