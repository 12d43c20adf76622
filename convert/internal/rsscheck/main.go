// Command rsscheck measures the memory of an eStargz conversion of one big
// layer: it writes a gzip layer of -size MiB of random files to a temporary
// directory, converts it with convert.ToEstargz, streams the result to a
// hash, and prints the sizes, the time and the peak RSS (VmHWM). Run it under
// /usr/bin/time -v for an outside view:
//
//	go build -o /tmp/rsscheck ./convert/internal/rsscheck
//	/usr/bin/time -v /tmp/rsscheck -size 512
//
// It is a measuring tool for developers, not part of mirror.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ipfs-mirror/mirror/convert"
	"github.com/klauspost/compress/gzip"
)

func main() {
	size := flag.Int("size", 512, "layer size in MiB (uncompressed)")
	fileKiB := flag.Int("filekib", 1024, "size of each file in the layer, KiB")
	level := flag.Int("level", 0, "eStargz gzip level (0: default, 9)")
	dir := flag.String("dir", "", "temporary directory (default: os.TempDir())")
	flag.Parse()
	if err := run(*size, *fileKiB, *level, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "rsscheck:", err)
		os.Exit(1)
	}
}

func run(sizeMiB, fileKiB, level int, dir string) error {
	tmp, err := os.MkdirTemp(dir, "rsscheck-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	t0 := time.Now()
	src := filepath.Join(tmp, "layer.tar.gz")
	diffID, err := writeLayer(src, sizeMiB, fileKiB)
	if err != nil {
		return err
	}
	l, err := newFileLayer(src, diffID)
	if err != nil {
		return err
	}
	fmt.Printf("source: %d MiB uncompressed, %d bytes gzip, written in %s, VmHWM so far %s\n", sizeMiB, l.size, time.Since(t0).Round(time.Millisecond), vmHWM())

	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	if err != nil {
		return err
	}
	t1 := time.Now()
	out, err := convert.ToEstargz(context.Background(), img, convert.EstargzOptions{CompressionLevel: level, TempDir: tmp})
	if err != nil {
		return err
	}
	defer convert.Close(out)
	layers, err := out.Layers()
	if err != nil {
		return err
	}
	conv := time.Since(t1)
	rc, err := layers[0].Compressed()
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		return err
	}
	d, _ := layers[0].Digest()
	fmt.Printf("eStargz: %d bytes, %s, converted in %s (%.1f MB/s of uncompressed source)\n", n, d, conv.Round(time.Millisecond), float64(sizeMiB<<20)/conv.Seconds()/1e6)
	if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != d.String() {
		return fmt.Errorf("streamed %s, descriptor says %s", got, d)
	}
	fmt.Printf("peak RSS (VmHWM): %s\n", vmHWM())
	return nil
}

// writeLayer writes a gzip tar of random files and returns its diff ID.
func writeLayer(path string, sizeMiB, fileKiB int) (v1.Hash, error) {
	f, err := os.Create(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return v1.Hash{}, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	r := rand.NewChaCha8([32]byte{42})
	buf := make([]byte, 1<<10)
	for i := 0; i*fileKiB < sizeMiB<<10; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%04d/f%07d", i/1000, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(fileKiB) << 10}); err != nil {
			return v1.Hash{}, err
		}
		for range fileKiB {
			r.Read(buf)
			if _, err := tw.Write(buf); err != nil {
				return v1.Hash{}, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return v1.Hash{}, err
	}
	if err := bw.Flush(); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", diff.Sum(nil))}, nil
}

// fileLayer is a gzip layer read from a file.
type fileLayer struct {
	path           string
	size           int64
	digest, diffID v1.Hash
}

func newFileLayer(path string, diffID v1.Hash) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: path, size: n, diffID: diffID, digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return nil, fmt.Errorf("not needed") }

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
