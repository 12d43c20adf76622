package pinhandle

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"

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
	if c.Type() != cid.DagProtobuf {
		return cid.Undef, fmt.Errorf("%s: %w (codec %#x, not dag-pb)", c, ErrNotHandle, c.Type())
	}
	get := getBlockFunc(store)
	if get == nil {
		return cid.Undef, errors.New("pin handle: this store cannot read blocks")
	}
	data, err := get(ctx, c)
	if err != nil {
		return cid.Undef, err
	}
	pn, err := merkledag.DecodeProtobuf(data)
	if err != nil {
		return cid.Undef, fmt.Errorf("%s: %w: %v", c, ErrNotHandle, err)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil || fsn.Type() != ft.TDirectory {
		return cid.Undef, fmt.Errorf("%s: %w: not a UnixFS directory", c, ErrNotHandle)
	}
	links := map[string]cid.Cid{}
	for _, l := range pn.Links() {
		links[l.Name] = l.Cid
	}
	for _, name := range []string{LayoutFile, IndexFile, BlobsDir} {
		if _, ok := links[name]; !ok {
			return cid.Undef, fmt.Errorf("%s: %w: no %s", c, ErrNotHandle, name)
		}
	}
	root, ok := links[RootFile]
	if !ok {
		return cid.Undef, fmt.Errorf("%s: %w: an OCI layout without %s", c, ErrNotHandle, RootFile)
	}
	return root, nil
}
