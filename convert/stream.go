package convert

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// verifyReader hashes what passes through it and, at EOF, fails with
// ErrDigestMismatch when the content does not match want (and size, when >= 0).
type verifyReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want v1.Hash
	size int64
	what string
	err  error
}

func newVerifyReader(r io.Reader, want v1.Hash, size int64, what string) *verifyReader {
	return &verifyReader{r: r, h: sha256.New(), want: want, size: size, what: what}
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		got := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", v.h.Sum(nil))}
		switch {
		case v.want.Algorithm != "sha256":
			err = fmt.Errorf("%s: cannot verify digest algorithm %q: %w", v.what, v.want.Algorithm, ErrDigestMismatch)
		case got != v.want:
			err = fmt.Errorf("%s: content is %s, want %s: %w", v.what, got, v.want, ErrDigestMismatch)
		case v.size >= 0 && v.n != v.size:
			err = fmt.Errorf("%s: content is %d bytes, want %d: %w", v.what, v.n, v.size, ErrDigestMismatch)
		}
		v.err = err
	} else if err != nil {
		v.err = err
	}
	return n, err
}

// ctxReader fails reads once ctx is done, so long copies stop on cancel.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
