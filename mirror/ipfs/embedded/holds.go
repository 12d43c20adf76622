package embedded

import (
	"context"

	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
)

// Holds implements ipfs.Holder from the node's local pin set.
func (s *Store) Holds(ctx context.Context, c cid.Cid) (bool, error) {
	_, pinned, err := s.api.Pin().IsPinned(ctx, path.FromCid(c))
	if err != nil {
		return false, err
	}
	return pinned, nil
}
