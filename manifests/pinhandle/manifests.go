package pinhandle

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// FromResult is the Input for an image the manifests writer just wrote.
func FromResult(r *manifests.Result, refName string) Input {
	in := Input{Root: r.Root, RootDescriptor: r.RootDescriptor, RefName: refName}
	for _, b := range r.Blobs {
		in.Blobs = append(in.Blobs, Blob{Digest: b.Digest, Size: b.Size, CID: b.CID})
	}
	return in
}

// FromTree is the Input for an image resolved from IPFS (manifests.Resolve):
// every descriptor of the tree, by the CID of its ipfs:// URL. The root
// descriptor's bytes are left for Build to read from the store.
func FromTree(t *manifests.Tree, refName string) (Input, error) {
	in := Input{Root: t.Root, RefName: refName}
	digests := make([]digest.Digest, 0, len(t.Descs))
	for d := range t.Descs {
		digests = append(digests, d)
	}
	slices.SortFunc(digests, func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
	for _, d := range digests {
		desc := t.Descs[d]
		c, err := manifests.CID(desc)
		if err != nil {
			return Input{}, fmt.Errorf("image %s: %w", t.Root, err)
		}
		in.Blobs = append(in.Blobs, Blob{Digest: desc.Digest, Size: desc.Size, CID: c})
	}
	return in, nil
}

// Builder returns a function that builds the pin handle of every image
// written to store, linking its upstream documents when up's CID is set:
// what syncer.Options.PinHandle takes. With a store that pins the handle
// comes back pinned; with a car.Store, name it as the CAR's root.
func Builder(store ipfs.Store) func(ctx context.Context, r *manifests.Result, up ocidir.Node) (cid.Cid, error) {
	return func(ctx context.Context, r *manifests.Result, up ocidir.Node) (cid.Cid, error) {
		in := FromResult(r, "")
		in.Upstream = up
		return Build(ctx, store, in)
	}
}
