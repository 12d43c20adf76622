package pinhandle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// PinTreeOptions configure PinTree.
type PinTreeOptions struct {
	// Handle, when defined, is the image's pin handle: it is pinned too.
	Handle cid.Cid
	// Jobs bounds the pins in flight (default 1: one after the other, in
	// the order PinTree names).
	Jobs int
	// Held, when set, says whether the node keeps c pinned already (an
	// ipfs.Holder's Holds): such a CID is not pinned again, nor counted.
	// When nil, every CID is pinned (kubo's pin add of a pinned CID is
	// cheap).
	Held func(ctx context.Context, c cid.Cid) (bool, error)
}

// PinTree pins an image's whole tree, each CID recursively: the root, then
// every document, config and layer of the tree (in digest order), then the
// pin handle when o names one, so that the image survives a gc without its
// pin handle. It returns how many CIDs it pinned, also when it fails part
// way. `mirror pin ROOT` and `mirror verify --pin` are this.
func PinTree(ctx context.Context, store ipfs.Store, tree *manifests.Tree, o PinTreeOptions) (int, error) {
	type item struct {
		c    cid.Cid
		what string // for errors
	}
	items := []item{{tree.Root, "the root"}}
	seen := map[cid.Cid]bool{tree.Root: true}
	digests := make([]digest.Digest, 0, len(tree.Descs))
	for d := range tree.Descs {
		digests = append(digests, d)
	}
	slices.SortFunc(digests, func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
	for _, d := range digests {
		c, err := manifests.CID(tree.Descs[d])
		if err != nil {
			return 0, fmt.Errorf("image %s: %w", tree.Root, err)
		}
		if !seen[c] {
			seen[c] = true
			items = append(items, item{c, "blob " + string(d)})
		}
	}
	if o.Handle.Defined() && !seen[o.Handle] {
		items = append(items, item{o.Handle, "the pin handle"})
	}
	var pinned atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Jobs, 1))
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if o.Held != nil {
				ok, err := o.Held(gctx, it.c)
				if err != nil {
					return fmt.Errorf("checking the pin of %s %s: %w", it.what, it.c, err)
				}
				if ok {
					return nil
				}
			}
			if err := store.Pin(gctx, it.c); err != nil {
				return fmt.Errorf("pinning %s %s: %w", it.what, it.c, err)
			}
			pinned.Add(1)
			return nil
		})
	}
	err := g.Wait()
	return int(pinned.Load()), err
}
