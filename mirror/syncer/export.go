package syncer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
)

// PinHandleOf builds (and, on a pinning store, pins) the pin handle of the
// image root names, from the tree as stored: only its JSON documents are
// read.
func PinHandleOf(ctx context.Context, store ipfs.Store, root cid.Cid, refName string) (cid.Cid, error) {
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return cid.Undef, err
	}
	in, err := pinhandle.FromTree(tree, refName)
	if err != nil {
		return cid.Undef, err
	}
	return pinhandle.Build(ctx, store, in)
}

// ExportCAR writes every block of the image root names — root descriptor,
// documents, config and layer DAGs, and its pin handle — to a CAR file at
// path, rooted at the pin handle (so `ipfs dag import` or a pinning service
// that pins the CAR's root keeps the whole image). Blobs are read from
// store and re-chunked with the format's settings; a CID that does not come
// out the same is an error. It returns the handle's CID.
func ExportCAR(ctx context.Context, store ipfs.Store, root cid.Cid, path, refName string) (cid.Cid, error) {
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return cid.Undef, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return cid.Undef, err
	}
	cs, err := car.New(path)
	if err != nil {
		return cid.Undef, err
	}
	defer cs.Close()
	copyOne := func(c cid.Cid, what string) error {
		rc, err := store.Cat(ctx, c, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		got, err := cs.Add(ctx, rc)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ipfs.V1(got) != ipfs.V1(c) {
			return fmt.Errorf("%s: re-chunked to %s, not %s: %w", what, got, c, manifests.ErrDigestMismatch)
		}
		return nil
	}
	if err := copyOne(root, "root descriptor"); err != nil {
		return cid.Undef, err
	}
	done := map[cid.Cid]bool{}
	for _, d := range tree.Descs {
		c, err := manifests.CID(d)
		if err != nil {
			return cid.Undef, err
		}
		if done[c] {
			continue
		}
		done[c] = true
		if err := copyOne(c, "blob "+d.Digest.String()); err != nil {
			return cid.Undef, err
		}
	}
	in, err := pinhandle.FromTree(tree, refName)
	if err != nil {
		return cid.Undef, err
	}
	handle, err := pinhandle.Build(ctx, cs, in)
	if err != nil {
		return cid.Undef, err
	}
	if err := cs.Finish(handle); err != nil {
		return cid.Undef, err
	}
	return handle, nil
}

// CARName is the file name sync gives an entry's CAR.
func CARName(source, mode string) string {
	r := strings.NewReplacer("/", "_", ":", "_", "@", "_")
	return r.Replace(source) + "." + mode + ".car"
}
