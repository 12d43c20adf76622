package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// synthSpec describes a synthetic layer: a tar of files filled with
// deterministic pseudo-random bytes (incompressible) or pseudo-random words
// (compressible, about 3:1 with gzip), optionally gzipped. The same spec
// always gives the same bytes, so a layer is never held in memory: every
// read regenerates it.
type synthSpec struct {
	Seed     uint64
	Size     int64 // payload bytes (the files' contents, before tar framing)
	FileSize int64 // size of each file (the last one may be smaller); 0: one file
	Text     bool  // compressible words instead of random bytes
	Gzip     int   // gzip level; 0: an uncompressed tar
}

// synthLayer is a v1.Layer over a synthSpec. Digest, DiffID and Size come
// from one streaming pre-pass (newSynthLayer); Compressed and Uncompressed
// regenerate the bytes.
type synthLayer struct {
	spec    synthSpec
	digest  v1.Hash
	diffID  v1.Hash
	size    int64 // blob size (compressed when gzipped)
	tarSize int64
}

var _ v1.Layer = (*synthLayer)(nil)

func newSynthLayer(s synthSpec) (*synthLayer, error) {
	l := &synthLayer{spec: s}
	tarHash := sha256.New()
	tarCount := &countWriter{w: tarHash}
	var (
		blobHash  hash.Hash
		blobCount *countWriter
		zw        *gzip.Writer
		w         io.Writer = tarCount
	)
	if s.Gzip != 0 {
		blobHash = sha256.New()
		blobCount = &countWriter{w: blobHash}
		var err error
		if zw, err = gzip.NewWriterLevel(blobCount, s.Gzip); err != nil {
			return nil, err
		}
		w = io.MultiWriter(tarCount, zw)
	}
	if err := s.writeTar(w); err != nil {
		return nil, err
	}
	l.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tarHash.Sum(nil))}
	l.tarSize = tarCount.n
	if zw == nil {
		l.digest, l.size = l.diffID, l.tarSize
		return l, nil
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(blobHash.Sum(nil))}
	l.size = blobCount.n
	return l, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeTar writes the layer's tar: fixed names, modes, owners and times.
func (s synthSpec) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	g := newGen(s.Seed, s.Text)
	buf := make([]byte, 256<<10)
	fileSize := s.FileSize
	if fileSize <= 0 {
		fileSize = max(s.Size, 1)
	}
	left := s.Size
	for i := 0; left > 0 || i == 0; i++ {
		n := min(left, fileSize)
		hdr := &tar.Header{
			Name:     fmt.Sprintf("data/%d/%06d.bin", s.Seed, i),
			Mode:     0o644,
			Size:     n,
			Typeflag: tar.TypeReg,
			ModTime:  time.Unix(1700000000, 0),
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		for n > 0 {
			b := buf[:min(n, int64(len(buf)))]
			g.fill(b)
			if _, err := tw.Write(b); err != nil {
				return err
			}
			n -= int64(len(b))
			left -= int64(len(b))
		}
		if s.Size == 0 {
			break
		}
	}
	return tw.Close()
}

// gen produces the file contents.
type gen struct {
	r    *rand.ChaCha8
	text bool
	tail []byte // text carried over between fills
}

func newGen(seed uint64, text bool) *gen {
	var k [32]byte
	for i := 0; i < 8; i++ {
		k[i] = byte(seed >> (8 * i))
	}
	k[31] = 0xbe
	return &gen{r: rand.NewChaCha8(k), text: text}
}

// words is the vocabulary of the compressible content: 256 words, so each
// random byte picks one.
var words = func() [][]byte {
	base := []string{"layer", "image", "index", "manifest", "config", "blob", "digest", "registry",
		"mirror", "content", "address", "kubo", "node", "block", "chunk", "file", "tar", "gzip",
		"stream", "verify", "pin", "cache", "serve", "pull", "push", "sync", "tag", "lock", "root",
		"platform", "linux", "amd64"}
	var out [][]byte
	for i := 0; len(out) < 256; i++ {
		w := base[i%len(base)]
		if i >= len(base) {
			w += strconv.Itoa(i / len(base))
		}
		sep := " "
		if i%17 == 0 {
			sep = "\n"
		}
		out = append(out, []byte(w+sep))
	}
	return out
}()

func (g *gen) fill(b []byte) {
	if !g.text {
		_, _ = g.r.Read(b)
		return
	}
	n := copy(b, g.tail)
	g.tail = g.tail[n:]
	var rb [8]byte
	for n < len(b) {
		_, _ = g.r.Read(rb[:])
		for _, c := range rb {
			w := words[c]
			m := copy(b[n:], w)
			n += m
			if m < len(w) {
				g.tail = append(g.tail[:0], w[m:]...)
				return
			}
		}
	}
}

// reader streams the tar, gzipped when the spec says so.
func (s synthSpec) reader(compressed bool) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		if !compressed || s.Gzip == 0 {
			pw.CloseWithError(s.writeTar(pw))
			return
		}
		zw, err := gzip.NewWriterLevel(pw, s.Gzip)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if err := s.writeTar(zw); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(zw.Close())
	}()
	return pr
}

func (l *synthLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *synthLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *synthLayer) Size() (int64, error)                 { return l.size, nil }
func (l *synthLayer) Compressed() (io.ReadCloser, error)   { return l.spec.reader(true), nil }
func (l *synthLayer) Uncompressed() (io.ReadCloser, error) { return l.spec.reader(false), nil }
func (l *synthLayer) MediaType() (types.MediaType, error) {
	if l.spec.Gzip != 0 {
		return types.OCILayer, nil // application/vnd.oci.image.layer.v1.tar+gzip
	}
	return types.OCIUncompressedLayer, nil // application/vnd.oci.image.layer.v1.tar
}

// synthImage is an OCI image of the given layers; label makes its config
// (hence its digest) unique.
func synthImage(label string, layers ...*synthLayer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for _, l := range layers {
		mt, _ := l.MediaType()
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: mt})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/bin"}
	cf.Config.Labels = map[string]string{"mirror-bench": label}
	return mutate.ConfigFile(img, cf)
}

// imageBytes is what a mirror of img reads from the source: every layer,
// the config and the manifest.
func imageBytes(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// pushImages writes images to the registry, a few at once.
func pushImages(ctx context.Context, refs []string, imgs []v1.Image) error {
	sem := make(chan struct{}, 4)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := range refs {
		r, err := name.ParseReference(refs[i], name.Insecure)
		if err != nil {
			return err
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := remote.Write(r, imgs[i], remote.WithContext(ctx), remote.WithJobs(2)); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("pushing %s: %w", refs[i], err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}
