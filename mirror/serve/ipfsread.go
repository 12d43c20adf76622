package serve

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// budgetStore fails reads once more than limit bytes were read through it
// in all: one resolve (root, indexes, manifests) cannot make the server
// hold more than that, however many documents a hostile index lists.
type budgetStore struct {
	ipfs.Store
	limit int64
	used  atomic.Int64
}

func (s *budgetStore) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.Store.Cat(ctx, c, offset, length)
	if err != nil {
		return nil, err
	}
	return &budgetReader{ReadCloser: rc, s: s}, nil
}

type budgetReader struct {
	io.ReadCloser
	s *budgetStore
}

func (r *budgetReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if r.s.used.Add(int64(n)) > r.s.limit {
		return n, fmt.Errorf("%w: its documents are over %d bytes", ErrTreeTooLarge, r.s.limit)
	}
	return n, err
}
