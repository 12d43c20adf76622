package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/path"
	pin "github.com/ipfs/boxo/pinning/pinner"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/core/coreiface/options"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Holds implements ipfs.Holder from the node's local pin set.
func (s *Store) Holds(ctx context.Context, c cid.Cid) (bool, error) {
	_, pinned, err := s.api.Pin().IsPinned(ctx, path.FromCid(c))
	if err != nil {
		return false, err
	}
	return pinned, nil
}

// Unpin implements ipfs.Unpinner: it removes c's recursive (or direct)
// pin from the node's pin set, as `ipfs pin rm` does.
func (s *Store) Unpin(ctx context.Context, c cid.Cid) error {
	err := s.api.Pin().Rm(ctx, path.FromCid(c), options.Pin.RmRecursive(true))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pin.ErrNotPinned):
		return fmt.Errorf("ipfs pin rm %s: %w", c, ipfs.ErrNotPinned)
	}
	return fmt.Errorf("ipfs pin rm %s: %w", c, classify(ctx, err))
}
