package convert

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// benchLayer builds a gzip layer of size bytes of random content spread over
// files of fileSize bytes (kept in memory, outside the timer).
func benchLayer(b *testing.B, size, fileSize int) *blobLayer {
	b.Helper()
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	var tarb bytes.Buffer
	tw := tar.NewWriter(&tarb)
	buf := make([]byte, fileSize)
	for i := 0; i*fileSize < size; i++ {
		r.Read(buf)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/f%05d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(fileSize)}); err != nil {
			b.Fatal(err)
		}
		tw.Write(buf)
	}
	tw.Close()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(tarb.Bytes())
	zw.Close()
	return &blobLayer{blob: gz.Bytes(), tar: tarb.Bytes(), mt: types.OCILayer, digest: hashOf(gz.Bytes()), diffID: hashOf(tarb.Bytes())}
}

// BenchmarkEstargz64MiB converts a 64 MiB layer of random files (1 MiB each)
// to eStargz, end to end (verify, spool, build, write the result); MB/s is
// per source byte. Sub-benchmarks: the default gzip level (9) and level 1.
//
//	go test -run '^$' -bench Estargz64MiB -benchtime 3x ./convert/
func BenchmarkEstargz64MiB(b *testing.B) {
	const size = 64 << 20
	l := benchLayer(b, size, 1<<20)
	img := buildImageRaw(b, false, testLayerSpec{layer: l})
	for _, level := range []int{0, 1} {
		b.Run(fmt.Sprintf("level=%d", map[int]int{0: 9, 1: 1}[level]), func(b *testing.B) {
			b.SetBytes(int64(len(l.tar)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := ToEstargz(context.Background(), img, EstargzOptions{CompressionLevel: level, TempDir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := out.Layers(); err != nil {
					b.Fatal(err)
				}
				Close(out)
			}
		})
	}
}

// BenchmarkEncrypt64MiB encrypts (and decrypts) a 64 MiB layer.
func BenchmarkEncrypt64MiB(b *testing.B) {
	const size = 64 << 20
	l := benchLayer(b, size, 1<<20)
	img := buildImageRaw(b, false, testLayerSpec{layer: l})
	dir := b.TempDir()
	k, err := writeKeys(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encrypt", func(b *testing.B) {
		b.SetBytes(int64(len(l.blob)))
		for b.Loop() {
			out, err := Encrypt(context.Background(), img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, TempDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := out.Layers(); err != nil {
				b.Fatal(err)
			}
			Close(out)
		}
	})
	enc, err := Encrypt(context.Background(), img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	if err != nil {
		b.Fatal(err)
	}
	defer Close(enc)
	b.Run("decrypt", func(b *testing.B) {
		b.SetBytes(int64(len(l.blob)))
		for b.Loop() {
			out, err := Decrypt(context.Background(), enc, DecryptOptions{Keys: []string{k.priv}, TempDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := out.Layers(); err != nil {
				b.Fatal(err)
			}
			Close(out)
		}
	})
}
