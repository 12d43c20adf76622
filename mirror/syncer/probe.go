package syncer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// The planner's questions as a run answers them: registry HEADs and tag
// lists, and the node's pin set and stored trees.

// registrySources implements sources with registry requests.
type registrySources struct{ o registry.Options }

func (r registrySources) Tags(ctx context.Context, repository string) ([]string, error) {
	repo, err := name.NewRepository(repository, r.o.NameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrBadReference, err)
	}
	return remote.List(repo, r.o.Remote(ctx)...)
}

// Digest resolves the source digest cheaply: a manifest HEAD for a
// registry, the local index for a layout or archive.
func (r registrySources) Digest(ctx context.Context, ref registry.Ref) (string, error) {
	if ref.Kind != registry.KindRegistry {
		src, err := registry.OpenSource(ctx, ref, r.o)
		if err != nil {
			return "", err
		}
		return src.Digest.String(), nil
	}
	d, err := remote.Head(ref.Ref, r.o.Remote(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return "", fmt.Errorf("reading %s: manifest unknown (404): %w", ref.Ref, err)
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", ref.Ref, err)
	}
	return d.Digest.String(), nil
}

func (r registrySources) PushDigest(ctx context.Context, ref string) (string, error) {
	nr, err := name.ParseReference(ref, r.o.NameOptions()...)
	if err != nil {
		return "", err
	}
	d, err := remote.Head(nr, r.o.Remote(ctx)...)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// storeHoldings implements holdings with the store.
type storeHoldings struct {
	store ipfs.Store
	// held are the roots known pinned (from one batched check at the
	// start); read-only once the workers run.
	held map[string]bool
}

// heldBatch is how many roots one batched pin check names.
const heldBatch = 100

// newStoreHoldings asks a node that can answer in batches whether it still
// holds the lockfile's roots, heldBatch at a time, so that a no-op run
// costs a few IPFS calls rather than one per entry. A batch that is not
// all pinned is left to the per-entry check.
func newStoreHoldings(ctx context.Context, store ipfs.Store, lock *lockfile.File) *storeHoldings {
	h := &storeHoldings{store: store}
	bh, ok := store.(ipfs.BatchHolder)
	if !ok || lock == nil {
		return h
	}
	var roots []string
	var cs []cid.Cid
	for _, e := range lock.Images {
		if c, err := ipfs.ParseCID(e.CID); err == nil {
			roots, cs = append(roots, e.CID), append(cs, c)
		}
	}
	h.held = map[string]bool{}
	for i := 0; i < len(cs); i += heldBatch {
		j := min(i+heldBatch, len(cs))
		if all, err := bh.HoldsAll(ctx, cs[i:j]); err == nil && all {
			for _, r := range roots[i:j] {
				h.held[r] = true
			}
		}
	}
	return h
}

func (h *storeHoldings) Holds(ctx context.Context, root string) (bool, error) {
	if h.held[root] {
		return true, nil
	}
	hd, ok := h.store.(ipfs.Holder)
	if !ok {
		return true, nil
	}
	c, err := ipfs.ParseCID(root)
	if err != nil {
		return false, nil
	}
	return hd.Holds(ctx, c)
}

func (h *storeHoldings) Binding(ctx context.Context, e lockfile.Entry) ([]string, error) {
	return verify.EntryBinding(ctx, h.store, e)
}
