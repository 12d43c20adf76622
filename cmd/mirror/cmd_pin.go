package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// PinCmd is `mirror pin`.
type PinCmd struct {
	Handle bool     `help:"Build the image's pin handle (an OCI-layout directory linking every blob), pin it recursively and print its CID, instead of pinning each blob."`
	Jobs   int      `short:"j" default:"4" help:"Blobs pinned at once."`
	CIDs   []string `arg:"" name:"CID" help:"Image root CIDs (ipfs://CID) or pin-handle CIDs."`
}

// pinOutput is one line of the --json form.
type pinOutput struct {
	// Pinned is what was pinned: the root CID (every blob pinned) or the
	// pin handle (pinned recursively).
	Pinned string `json:"pinned"`
	Root   string `json:"root"`
	Handle string `json:"handle,omitempty"`
	Blobs  int    `json:"blobs,omitempty"`
}

// Run pins whole images: a root CID by resolving its tree and pinning every
// blob (or, with --handle, building and pinning the pin handle), a pin
// handle by pinning it recursively.
func (c *PinCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	cids := make([]cid.Cid, len(c.CIDs))
	for i, s := range c.CIDs {
		v, err := ipfs.ParseCID(s)
		if err != nil {
			return usageError{err}
		}
		cids[i] = v
	}
	store, err := g.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	var out []pinOutput
	for _, v := range cids {
		o, err := c.pin(ctx, store, v)
		if err != nil {
			return err
		}
		if g.JSON {
			out = append(out, o)
			continue
		}
		if o.Handle != "" {
			fmt.Fprintf(g.stderr, "pinned pin handle %s of ipfs://%s\n", o.Handle, o.Root)
		} else {
			fmt.Fprintf(g.stderr, "pinned ipfs://%s: %d blobs\n", o.Root, o.Blobs)
		}
		fmt.Fprintln(g.stdout, o.Pinned)
	}
	if g.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return nil
}

func (c *PinCmd) pin(ctx context.Context, store ipfs.Store, v cid.Cid) (pinOutput, error) {
	if v.Type() == cid.DagProtobuf {
		root, err := pinhandle.RootOf(ctx, store, v)
		if errors.Is(err, pinhandle.ErrNotHandle) {
			return pinOutput{}, fmt.Errorf("%s: %w: neither an image root nor a pin handle (%v)", v, manifests.ErrNotIPFSImage, err)
		}
		if err != nil {
			return pinOutput{}, err
		}
		if err := store.Pin(ctx, v); err != nil {
			return pinOutput{}, err
		}
		return pinOutput{Pinned: v.String(), Root: root.String(), Handle: v.String()}, nil
	}
	tree, err := manifests.Resolve(ctx, store, v)
	if err != nil {
		return pinOutput{}, err
	}
	if c.Handle {
		in, err := pinhandle.FromTree(tree, "")
		if err != nil {
			return pinOutput{}, err
		}
		h, err := pinhandle.Build(ctx, store, in)
		if err != nil {
			return pinOutput{}, err
		}
		if err := store.Pin(ctx, h); err != nil {
			return pinOutput{}, err
		}
		return pinOutput{Pinned: h.String(), Root: v.String(), Handle: h.String(), Blobs: len(in.Blobs)}, nil
	}
	if _, err := pinhandle.PinTree(ctx, store, tree, pinhandle.PinTreeOptions{Jobs: c.Jobs}); err != nil {
		return pinOutput{}, err
	}
	return pinOutput{Pinned: v.String(), Root: v.String(), Blobs: len(tree.Descs)}, nil
}
