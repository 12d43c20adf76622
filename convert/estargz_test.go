package convert

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	digest "github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

func threeLayerImage(t testing.TB) v1.Image {
	t.Helper()
	return buildImage(t, false,
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(1, "a", 12, 300<<10)), compGzip, types.OCILayer), annotations: map[string]string{"org.example/keep": "1"}},
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(2, "b", 8, 200<<10)), compZstd, types.OCILayerZStd)},
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(3, "c", 5, 100<<10)), compNone, types.OCIUncompressedLayer)},
	)
}

func mustEstargz(t testing.TB, img v1.Image, opts EstargzOptions) v1.Image {
	t.Helper()
	out, err := ToEstargz(context.Background(), img, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Close(out) })
	return out
}

// openEstargz opens a layer blob as eStargz and checks it against the
// descriptor's TOC digest annotation, chunk by chunk.
func openEstargz(t *testing.T, blob []byte, desc v1.Descriptor) *estargz.Reader {
	t.Helper()
	toc, err := digest.Parse(desc.Annotations[AnnotationTOCDigest])
	if err != nil {
		t.Fatalf("toc annotation: %v", err)
	}
	r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
	if err != nil {
		t.Fatalf("estargz.Open: %v", err)
	}
	ver, err := r.VerifyTOC(toc)
	if err != nil {
		t.Fatalf("VerifyTOC: %v", err)
	}
	// Verify every chunk of every regular file against the TOC.
	root, ok := r.Lookup("")
	if !ok {
		t.Fatal("no root in TOC")
	}
	var walk func(dir string, e *estargz.TOCEntry)
	walk = func(dir string, e *estargz.TOCEntry) {
		e.ForeachChild(func(base string, ce *estargz.TOCEntry) bool {
			name := filepath.Join(dir, base)
			if ce.Type == "dir" {
				walk(name, ce)
				return true
			}
			if ce.Type != "reg" || ce.Size == 0 {
				return true
			}
			name = ce.Name // a hard link resolves to its target's entry
			sr, err := r.OpenFile(name)
			if err != nil {
				t.Fatalf("open %s: %v", name, err)
			}
			for off := int64(0); off < ce.Size; {
				chunk, ok := r.ChunkEntryForOffset(name, off)
				if !ok {
					t.Fatalf("%s: no chunk at %d", name, off)
				}
				v, err := ver.Verifier(chunk)
				if err != nil {
					t.Fatalf("%s: verifier: %v", name, err)
				}
				if _, err := io.Copy(v, io.NewSectionReader(sr, chunk.ChunkOffset, chunk.ChunkSize)); err != nil {
					t.Fatal(err)
				}
				if !v.Verified() {
					t.Fatalf("%s: chunk at %d does not verify", name, off)
				}
				off = chunk.ChunkOffset + chunk.ChunkSize
			}
			return true
		})
	}
	walk("", root)
	return r
}

func TestToEstargz(t *testing.T) {
	src := threeLayerImage(t)
	tmp := t.TempDir()
	out := mustEstargz(t, src, EstargzOptions{ChunkSize: 64 << 10, TempDir: tmp})

	if err := validate.Image(out); err != nil {
		t.Fatalf("converted image invalid: %v", err)
	}
	m, err := out.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s config %s", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 3 {
		t.Fatalf("%d layers", len(m.Layers))
	}
	layers, _ := out.Layers()
	for i, d := range m.Layers {
		if d.MediaType != types.OCILayer {
			t.Errorf("layer %d media type %s", i, d.MediaType)
		}
		blob := blobOf(t, layers[i])
		if hashOf(blob) != d.Digest || int64(len(blob)) != d.Size {
			t.Errorf("layer %d: descriptor does not match blob", i)
		}
		openEstargz(t, blob, d)
		plain := plainOf(t, layers[i])
		if got := d.Annotations[AnnotationUncompressedSize]; got != strconv.Itoa(len(plain)) {
			t.Errorf("layer %d: uncompressed-size %s, want %d", i, got, len(plain))
		}
	}
	if m.Layers[0].Annotations["org.example/keep"] != "1" {
		t.Errorf("source annotation lost: %v", m.Layers[0].Annotations)
	}

	// Same files, same metadata.
	if d := extractTree(t, src).diff(extractTree(t, out)); d != "" {
		t.Errorf("trees differ:\n%s", d)
	}

	// Config: only rootfs changes.
	var sc, oc map[string]json.RawMessage
	raw, _ := src.RawConfigFile()
	json.Unmarshal(raw, &sc)
	raw, _ = out.RawConfigFile()
	json.Unmarshal(raw, &oc)
	for k := range sc {
		if k == "rootfs" {
			continue
		}
		if !bytes.Equal(compactJSON(t, sc[k]), compactJSON(t, oc[k])) {
			t.Errorf("config %q changed: %s -> %s", k, sc[k], oc[k])
		}
	}
	cf, _ := out.ConfigFile()
	for i, l := range layers {
		d, _ := l.DiffID()
		if cf.RootFS.DiffIDs[i] != d {
			t.Errorf("diff_id %d = %s, layer says %s", i, cf.RootFS.DiffIDs[i], d)
		}
	}

	// Close removes every temporary file and later use fails.
	if err := Close(out); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, tmp); len(names) != 0 {
		t.Errorf("temp files left after Close: %v", names)
	}
	if _, err := layers[0].Compressed(); !errors.Is(err, ErrClosed) {
		t.Errorf("Compressed after Close: %v, want ErrClosed", err)
	}
}

func compactJSON(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if len(b) == 0 {
		return nil
	}
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestToEstargzDockerSource(t *testing.T) {
	src := buildImage(t, true,
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(4, "d", 4, 50<<10)), compGzip, types.DockerLayer)},
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(5, "e", 4, 50<<10)), compNone, types.DockerUncompressedLayer)},
	)
	out := mustEstargz(t, src, EstargzOptions{})
	if err := validate.Image(out); err != nil {
		t.Fatal(err)
	}
	m, _ := out.Manifest()
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s config %s", m.MediaType, m.Config.MediaType)
	}
	for i, d := range m.Layers {
		if d.MediaType != types.OCILayer || d.Annotations[AnnotationTOCDigest] == "" {
			t.Errorf("layer %d: %s %v", i, d.MediaType, d.Annotations)
		}
	}
	if d := extractTree(t, src).diff(extractTree(t, out)); d != "" {
		t.Errorf("trees differ:\n%s", d)
	}
}

// A Range read of one chunk of one file, located with the TOC, returns
// exactly that chunk: what a lazy-pulling snapshotter does over IPFS.
func TestEstargzRangeReadChunk(t *testing.T) {
	data := make([]byte, 1<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	tarb := makeTar(t, []tfile{{name: "big/", typ: tar.TypeDir}, {name: "big/data.bin", typ: tar.TypeReg, data: data}, {name: "big/small", typ: tar.TypeReg, data: []byte("hi")}})
	src := buildImage(t, false, testLayerSpec{layer: newBlobLayer(t, tarb, compGzip, types.OCILayer)})
	const chunkSize = 64 << 10
	out := mustEstargz(t, src, EstargzOptions{ChunkSize: chunkSize})
	layers, _ := out.Layers()
	m, _ := out.Manifest()
	blob := blobOf(t, layers[0])
	r := openEstargz(t, blob, m.Layers[0])

	ce, ok := r.ChunkEntryForOffset("big/data.bin", 5*chunkSize+10)
	if !ok {
		t.Fatal("no chunk")
	}
	if ce.ChunkOffset != 5*chunkSize || ce.ChunkSize != chunkSize {
		t.Fatalf("chunk at %d size %d", ce.ChunkOffset, ce.ChunkSize)
	}
	start, end := ce.Offset, ce.NextOffset()
	if start <= 0 || end <= start || end > int64(len(blob)) {
		t.Fatalf("bad offsets %d..%d", start, end)
	}
	// Only the bytes [start, end) of the blob, as an HTTP Range or an IPFS
	// cat with offset/length would return them.
	zr, err := gzip.NewReader(bytes.NewReader(blob[start:end]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := data[ce.ChunkOffset : ce.ChunkOffset+ce.ChunkSize]
	if !bytes.Equal(got, want) {
		t.Fatalf("range read returned %d bytes, not the chunk", len(got))
	}
	if ce.ChunkDigest != digest.FromBytes(want).String() {
		t.Errorf("chunk digest %s", ce.ChunkDigest)
	}
}

func TestEstargzPassthroughAndDeterminism(t *testing.T) {
	src := threeLayerImage(t)
	out1 := mustEstargz(t, src, EstargzOptions{})
	out2 := mustEstargz(t, out1, EstargzOptions{})
	again := mustEstargz(t, src, EstargzOptions{})

	d1, err := out1.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := out2.Digest()
	d3, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("re-converting an eStargz image changed it: %s -> %s", d1, d2)
	}
	if d1 != d3 {
		t.Errorf("conversion is not deterministic: %s vs %s", d1, d3)
	}
	l1, _ := out1.Layers()
	l2, _ := out2.Layers()
	for i := range l1 {
		if !bytes.Equal(blobOf(t, l1[i]), blobOf(t, l2[i])) {
			t.Errorf("layer %d not byte-identical", i)
		}
	}
	c1, _ := out1.RawConfigFile()
	c2, _ := out2.RawConfigFile()
	if !bytes.Equal(c1, c2) {
		t.Error("config changed on pass-through")
	}
}

func TestEstargzPrioritizedFiles(t *testing.T) {
	src := threeLayerImage(t)
	prio := []string{"/a/sub/file003.bin", "b/file002.bin", "/not/there"}
	out := mustEstargz(t, src, EstargzOptions{PrioritizedFiles: prio})
	layers, _ := out.Layers()
	m, _ := out.Manifest()
	for i, want := range []string{"a/sub/file003.bin", "b/file002.bin"} {
		r := openEstargz(t, blobOf(t, layers[i]), m.Layers[i])
		p, ok := r.Lookup(want)
		if !ok {
			t.Fatalf("layer %d: %s missing", i, want)
		}
		lm, ok := r.Lookup(estargz.PrefetchLandmark)
		if !ok {
			t.Fatalf("layer %d: no prefetch landmark", i)
		}
		other, _ := r.Lookup(strings.Replace(want, "003", "001", 1))
		if want == "b/file002.bin" {
			other, _ = r.Lookup("b/file000.bin")
		}
		if !(p.Offset < lm.Offset && lm.Offset < other.Offset) {
			t.Errorf("layer %d: prioritized at %d, landmark %d, other %d", i, p.Offset, lm.Offset, other.Offset)
		}
	}
	// The third layer holds none of them: the prefetch landmark comes first
	// (prefetch nothing), as nerdctl --estargz-record-in makes it.
	r := openEstargz(t, blobOf(t, layers[2]), m.Layers[2])
	lm, ok := r.Lookup(estargz.PrefetchLandmark)
	first, _ := r.Lookup("c/file000.bin")
	if !ok || lm.Offset > first.Offset {
		t.Error("layer 2: prefetch landmark not first")
	}
}

func TestLoadPrioritizedFiles(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "record.json")
	os.WriteFile(rec, []byte(`{"path":"/bin/sh","manifestDigest":"sha256:aa","layerIndex":0}
{"path":"/etc/passwd","manifestDigest":"sha256:aa","layerIndex":1}
{"path":"/bin/sh","manifestDigest":"sha256:aa","layerIndex":0}
`), 0o644)
	txt := filepath.Join(dir, "list.txt")
	os.WriteFile(txt, []byte("# comment\n/bin/sh\n\n  /etc/passwd  \n/bin/sh\n"), 0o644)
	for _, p := range []string{rec, txt} {
		got, err := LoadPrioritizedFiles(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != "/bin/sh,/etc/passwd" {
			t.Errorf("%s: %q", filepath.Base(p), got)
		}
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"path":"/a"} {"nopath":1}`), 0o644)
	if _, err := LoadPrioritizedFiles(bad); err == nil || !strings.Contains(err.Error(), "record 2") {
		t.Errorf("bad record: %v", err)
	}
	if _, err := LoadPrioritizedFiles(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestEstargzCorruptedFooter(t *testing.T) {
	src := buildImage(t, false, testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(6, "f", 3, 10<<10)), compGzip, types.OCILayer)})
	esgz := mustEstargz(t, src, EstargzOptions{})
	m, _ := esgz.Manifest()
	layers, _ := esgz.Layers()
	blob := blobOf(t, layers[0])
	diffID, _ := layers[0].DiffID()

	for name, mutateBlob := range map[string]func([]byte) ([]byte, map[string]string){
		"footer": func(b []byte) ([]byte, map[string]string) {
			b = bytes.Clone(b)
			for i := len(b) - 30; i < len(b)-10; i++ {
				b[i] ^= 0xff
			}
			return b, m.Layers[0].Annotations
		},
		"toc-mismatch": func(b []byte) ([]byte, map[string]string) {
			return b, map[string]string{AnnotationTOCDigest: digest.FromString("other").String()}
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, ann := mutateBlob(blob)
			bl := &blobLayer{blob: b, mt: types.OCILayer, digest: hashOf(b), diffID: diffID}
			img := buildImageRaw(t, false, testLayerSpec{layer: bl, annotations: ann})
			tmp := t.TempDir()
			out, err := ToEstargz(context.Background(), img, EstargzOptions{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			defer Close(out)
			_, err = out.Manifest()
			if !errors.Is(err, ErrInvalidEstargz) {
				t.Fatalf("got %v, want ErrInvalidEstargz", err)
			}
			t.Log(err)
			if names := dirEntries(t, tmp); len(names) != 0 {
				t.Errorf("temp files left after failure: %v", names)
			}
		})
	}
}

func TestEstargzRefusals(t *testing.T) {
	tarb := makeTar(t, randomFiles(7, "g", 2, 1000))
	for _, tc := range []struct {
		mt   types.MediaType
		want error
	}{
		{"application/vnd.oci.image.layer.v1.tar+foo", ErrUnsupportedMediaType},
		{MediaTypeLayerGzipEnc, ErrExclusiveModes},
	} {
		img := buildImageRaw(t, false, testLayerSpec{layer: newBlobLayer(t, tarb, compGzip, tc.mt)})
		_, err := ToEstargz(context.Background(), img, EstargzOptions{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.mt, err, tc.want)
		} else if !strings.Contains(err.Error(), string(tc.mt)) {
			t.Errorf("%s: error does not name the media type: %v", tc.mt, err)
		}
	}
	img := threeLayerImage(t)
	for _, o := range []EstargzOptions{{CompressionLevel: 12}, {ChunkSize: -1}, {Parallelism: -2}} {
		if _, err := ToEstargz(context.Background(), img, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestEstargzDigestMismatch(t *testing.T) {
	bl := newBlobLayer(t, makeTar(t, randomFiles(8, "h", 3, 1000)), compGzip, types.OCILayer)
	bl.digest = hashOf([]byte("something else"))
	img := buildImageRaw(t, false, testLayerSpec{layer: bl})
	tmp := t.TempDir()
	out, err := ToEstargz(context.Background(), img, EstargzOptions{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	defer Close(out)
	if _, err := out.Layers(); !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Fatalf("got %v, want ErrDigestMismatch", err)
	} else {
		t.Log(err)
	}
	if names := dirEntries(t, tmp); len(names) != 0 {
		t.Errorf("temp files left after failure: %v", names)
	}
}

func TestEstargzCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, err := ToEstargz(ctx, threeLayerImage(t), EstargzOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer Close(out)
	cancel()
	if _, err := out.Manifest(); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// Empty layers (an empty tar, as some Dockerfile steps produce) convert too.
func TestEstargzEmptyLayer(t *testing.T) {
	empty := makeTar(t, nil)
	src := buildImage(t, false,
		testLayerSpec{layer: newBlobLayer(t, empty, compGzip, types.OCILayer)},
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(14, "x", 2, 100)), compGzip, types.OCILayer)},
		testLayerSpec{layer: newBlobLayer(t, empty, compGzip, types.OCILayer)}, // the same blob twice
	)
	out := mustEstargz(t, src, EstargzOptions{})
	if err := validate.Image(out); err != nil {
		t.Fatal(err)
	}
	m, _ := out.Manifest()
	layers, _ := out.Layers()
	if m.Layers[0].Digest != m.Layers[2].Digest {
		t.Error("the same source blob gave two results")
	}
	openEstargz(t, blobOf(t, layers[0]), m.Layers[0])
	if d := extractTree(t, src).diff(extractTree(t, out)); d != "" {
		t.Errorf("trees differ:\n%s", d)
	}
}

// Our build (pooled gzip writers, the uncompressed tar as input) gives
// exactly the bytes of estargz.Build with its default gzip compression on
// the compressed source, as nerdctl / ctr-remote call it.
func TestEstargzSameBytesAsUpstreamBuild(t *testing.T) {
	for _, level := range []int{0, 1} {
		bl := newBlobLayer(t, makeTar(t, randomFiles(15, "u", 40, 40<<10)), compGzip, types.OCILayer)
		src := buildImage(t, false, testLayerSpec{layer: bl})
		out := mustEstargz(t, src, EstargzOptions{CompressionLevel: level, ChunkSize: 16 << 10})
		ours := blobOf(t, mustLayer(t, out, 0))

		upLevel := level
		if upLevel == 0 {
			upLevel = gzip.BestCompression
		}
		blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(bl.blob), 0, int64(len(bl.blob))),
			estargz.WithCompressionLevel(upLevel), estargz.WithChunkSize(16<<10), estargz.WithParallelism(DefaultEstargzParallelism))
		if err != nil {
			t.Fatal(err)
		}
		up, err := io.ReadAll(blob)
		blob.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, up) {
			t.Errorf("level %d: our eStargz differs from estargz.Build's (%d vs %d bytes)", level, len(ours), len(up))
		}
	}
}
