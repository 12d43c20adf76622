package convert

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

// verified wraps r, the blob of desc, in the one verifying reader
// (manifests.VerifyReader): a read that ends on content other than desc's
// digest and size fails with manifests.ErrDigestMismatch instead of io.EOF.
// A digest it cannot verify (not sha256, malformed) is a mismatch too.
func verified(r io.Reader, desc v1.Descriptor) (*manifests.VerifyReader, error) {
	what := "layer " + desc.Digest.String()
	vr, err := manifests.NewVerifyReader(r, digest.Digest(desc.Digest.String()), desc.Size, what)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, manifests.ErrDigestMismatch)
	}
	return vr, nil
}

// hashWriter counts and hashes what is written through it.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashWriter(w io.Writer) *hashWriter { return &hashWriter{w: w, h: sha256.New()} }

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (hw *hashWriter) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", hw.h.Sum(nil))}
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress sniffs r (gzip, zstd or plain tar, whatever the media type says:
// some registries mislabel) and returns the uncompressed stream.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("opening zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// readCloser joins a reader and the closers behind it.
type readCloser struct {
	io.Reader
	closers []io.Closer
}

func (rc *readCloser) Close() error {
	var first error
	for _, c := range rc.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
