package manifests

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// VerifyReader checks, while it streams, that what it reads has exactly the
// size and sha256 digest expected. At the end (or on the first excess byte)
// a mismatch is returned instead of io.EOF, so a consumer that copies until
// EOF never takes a wrong blob for a good one.
type VerifyReader struct {
	r      io.Reader
	h      hash.Hash
	want   digest.Digest
	size   int64
	n      int64
	what   string
	err    error
	closer io.Closer
}

// NewVerifyReader wraps r. what names the content in errors (e.g. the CID).
func NewVerifyReader(r io.Reader, want digest.Digest, size int64, what string) (*VerifyReader, error) {
	if want.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("%s: unsupported digest algorithm %q", what, want.Algorithm())
	}
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	v := &VerifyReader{r: r, h: sha256.New(), want: want, size: size, what: what}
	if c, ok := r.(io.Closer); ok {
		v.closer = c
	}
	return v, nil
}

func (v *VerifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	// Never read past the declared size by more than one byte: that one
	// byte is enough to detect an overlong blob.
	if rem := v.size - v.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.n > v.size {
		v.err = fmt.Errorf("%s: %w: more than the %d bytes of %s", v.what, ErrDigestMismatch, v.size, v.want)
		return 0, v.err
	}
	v.h.Write(p[:n])
	if err == io.EOF {
		if v.n != v.size {
			v.err = fmt.Errorf("%s: %w: got %d bytes, want %d for %s", v.what, ErrDigestMismatch, v.n, v.size, v.want)
			return n, v.err
		}
		got := digest.NewDigest(digest.SHA256, v.h)
		if got != v.want {
			v.err = fmt.Errorf("%s: %w: got %s, want %s", v.what, ErrDigestMismatch, got, v.want)
			return n, v.err
		}
		v.err = io.EOF
	} else if err != nil {
		v.err = err
	}
	return n, err
}

// Close closes the underlying reader, if it is a Closer.
func (v *VerifyReader) Close() error {
	if v.closer != nil {
		return v.closer.Close()
	}
	return nil
}
