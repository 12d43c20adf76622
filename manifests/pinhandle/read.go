package pinhandle

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// maxRootDescriptor bounds the root descriptor read from a store.
const maxRootDescriptor = 1 << 20

func readSmall(ctx context.Context, store ipfs.Store, c cid.Cid) ([]byte, error) {
	rc, err := store.Cat(ctx, c, 0, maxRootDescriptor+1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if len(b) > maxRootDescriptor {
		return nil, fmt.Errorf("%s is over %d bytes: not a root descriptor", c, maxRootDescriptor)
	}
	return b, nil
}

// RootOf returns the image root CID a pin handle links as ipfs-root.json.
// It returns ErrNotHandle when c is not a pin handle (a root descriptor, a
// blob, any other directory). The store must be able to return blocks
// (car, embedded, kubo).
func RootOf(ctx context.Context, store ipfs.Store, c cid.Cid) (cid.Cid, error) {
	links, err := handleLinks(ctx, store, c)
	if err != nil {
		return cid.Undef, err
	}
	root, ok := links[RootFile]
	if !ok {
		return cid.Undef, fmt.Errorf("%s: %w: an OCI layout without %s", c, ErrNotHandle, RootFile)
	}
	return root, nil
}

// UpstreamOf returns the upstream documents' directory a pin handle links
// (UpstreamDir): ErrNotHandle when c is not a pin handle, ipfs.ErrNotFound
// when the handle links none (an image written in another mode than
// plain, or before upstream documents were kept).
func UpstreamOf(ctx context.Context, store ipfs.Store, c cid.Cid) (cid.Cid, error) {
	links, err := handleLinks(ctx, store, c)
	if err != nil {
		return cid.Undef, err
	}
	if _, ok := links[RootFile]; !ok {
		return cid.Undef, fmt.Errorf("%s: %w: an OCI layout without %s", c, ErrNotHandle, RootFile)
	}
	up, ok := links[UpstreamDir]
	if !ok {
		return cid.Undef, fmt.Errorf("pin handle %s links no upstream documents: %w", c, ipfs.ErrNotFound)
	}
	return up, nil
}

// handleLinks reads the top directory of a would-be pin handle.
func handleLinks(ctx context.Context, store ipfs.Store, c cid.Cid) (map[string]cid.Cid, error) {
	if c.Type() != cid.DagProtobuf {
		return nil, fmt.Errorf("%s: %w (codec %#x, not dag-pb)", c, ErrNotHandle, c.Type())
	}
	if _, ok := store.(ipfs.BlockGetter); !ok {
		return nil, errors.New("pin handle: this store cannot read blocks")
	}
	entries, err := ocidir.ReadDir(ctx, store, c, 64)
	if errors.Is(err, ocidir.ErrNotLayout) || errors.Is(err, ocidir.ErrLimit) {
		return nil, fmt.Errorf("%s: %w: %v", c, ErrNotHandle, err)
	}
	if err != nil {
		return nil, err
	}
	links := map[string]cid.Cid{}
	for _, e := range entries {
		links[e.Name] = e.CID
	}
	for _, name := range []string{LayoutFile, IndexFile, BlobsDir} {
		if _, ok := links[name]; !ok {
			return nil, fmt.Errorf("%s: %w: no %s", c, ErrNotHandle, name)
		}
	}
	return links, nil
}
