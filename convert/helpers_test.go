package convert

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
)

// tfile is one entry of a test tar layer.
type tfile struct {
	name string
	typ  byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink
	data []byte
	mode int64
	link string
}

func makeTar(t testing.TB, files []tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, ModTime: mt, Linkname: f.link, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
			if f.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if f.typ == tar.TypeReg {
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if f.typ == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomFiles makes a tree with dirs, small and large (multi-chunk) files,
// a symlink and a hard link. seed makes it reproducible.
func randomFiles(seed uint64, prefix string, n int, maxSize int) []tfile {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	files := []tfile{
		{name: prefix + "/", typ: tar.TypeDir},
		{name: prefix + "/sub/", typ: tar.TypeDir},
	}
	for i := range n {
		size := r.IntN(maxSize + 1)
		data := make([]byte, size)
		for j := range data {
			// half random, half compressible text
			if j%2 == 0 {
				data[j] = byte(r.UintN(256))
			} else {
				data[j] = 'a' + byte(j%26)
			}
		}
		dir := prefix
		if i%2 == 1 {
			dir = prefix + "/sub"
		}
		files = append(files, tfile{name: fmt.Sprintf("%s/file%03d.bin", dir, i), typ: tar.TypeReg, data: data, mode: 0o640})
	}
	files = append(files,
		tfile{name: prefix + "/empty", typ: tar.TypeReg},
		tfile{name: prefix + "/link", typ: tar.TypeSymlink, link: "file000.bin", mode: 0o777},
		tfile{name: prefix + "/hard", typ: tar.TypeLink, link: prefix + "/file000.bin"},
	)
	return files
}

type compression string

const (
	compGzip compression = "gzip"
	compZstd compression = "zstd"
	compNone compression = "none"
)

// blobLayer is a test layer made from bytes: a real layer, computed digests.
type blobLayer struct {
	blob   []byte
	tar    []byte
	mt     types.MediaType
	digest v1.Hash
	diffID v1.Hash
}

func newBlobLayer(t testing.TB, tarb []byte, c compression, mt types.MediaType) *blobLayer {
	t.Helper()
	var blob []byte
	switch c {
	case compGzip:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(tarb)
		zw.Close()
		blob = buf.Bytes()
	case compZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		blob = enc.EncodeAll(tarb, nil)
	default:
		blob = tarb
	}
	return &blobLayer{blob: blob, tar: tarb, mt: mt, digest: hashOf(blob), diffID: hashOf(tarb)}
}

func hashOf(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}

type testLayerSpec struct {
	layer       v1.Layer
	annotations map[string]string
}

// buildImage makes an OCI (or Docker when docker is set) image of the layers,
// with a config that has history, env and labels.
func buildImage(t testing.TB, docker bool, layers ...testLayerSpec) v1.Image {
	t.Helper()
	img := buildImageRaw(t, docker, layers...)
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("test image invalid: %v", err)
	}
	return img
}

// buildImageRaw is buildImage without validation (for broken layers).
func buildImageRaw(t testing.TB, docker bool, layers ...testLayerSpec) v1.Image {
	t.Helper()
	base := empty.Image
	if docker {
		base = mutate.MediaType(base, types.DockerManifestSchema2)
		base = mutate.ConfigMediaType(base, types.DockerConfigJSON)
	} else {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	var adds []mutate.Addendum
	for i, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:       l.layer,
			Annotations: l.annotations,
			History:     v1.History{CreatedBy: fmt.Sprintf("RUN step %d", i), Created: v1.Time{Time: time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC)}},
			MediaType:   mtOf(t, l.layer),
		})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/usr/bin", "A=b"}, Labels: map[string]string{"x": "y"}, Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tree is the extracted content of an image: path → description.
type tree map[string]string

// extractTree applies the layers' tars in order (no whiteouts in our tests)
// and describes each entry: type, mode, link target, content hash.
// Entries eStargz adds (TOC, landmarks) are skipped.
func extractTree(t testing.TB, img v1.Image) tree {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := tree{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")
			switch name {
			case "stargz.index.json", ".prefetch.landmark", ".no.prefetch.landmark":
				continue
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = fmt.Sprintf("type=%c mode=%o link=%s size=%d sha=%x mtime=%d", h.Typeflag, h.Mode, h.Linkname, len(data), sha256.Sum256(data), h.ModTime.Unix())
		}
		rc.Close()
	}
	return out
}

func (tr tree) diff(other tree) string {
	var lines []string
	for k, v := range tr {
		if ov, ok := other[k]; !ok {
			lines = append(lines, "- "+k+" "+v)
		} else if ov != v {
			lines = append(lines, "~ "+k+": "+v+" != "+ov)
		}
	}
	for k, v := range other {
		if _, ok := tr[k]; !ok {
			lines = append(lines, "+ "+k+" "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func blobOf(t testing.TB, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	return readAll(t, rc, err)
}

func plainOf(t testing.TB, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	return readAll(t, rc, err)
}

func readAll(t testing.TB, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirEntries lists the names in dir (to check temp files are gone).
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func mtOf(t testing.TB, l v1.Layer) types.MediaType {
	t.Helper()
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return mt
}
