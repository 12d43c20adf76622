package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/ui/inspect"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

// InspectCmd is `mirror inspect`.
type InspectCmd struct {
	Image        string `arg:"" name:"ipfs://CID" help:"The image: ipfs://CID or a bare CID."`
	GatewayFlags `embed:""`
	ReadFlags    `embed:""`
}

// Run inspects.
func (c *InspectCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	root, err := ipfs.ParseCID(c.Image)
	if err != nil {
		return usageError{err}
	}
	if err := c.check(); err != nil {
		return err
	}
	node, err := c.openStore(ctx, g, open.Options{})
	if err != nil {
		return err
	}
	defer node.Close()
	// Only its messages are used (the retries), on stderr: stdout is
	// the image's description.
	store := c.patient(node, newPrinter(g, false))
	// A pin handle (dag-pb, where roots are raw blocks) stands for the
	// image it holds: say so and show that image.
	var handle string
	if root.Type() == cid.DagProtobuf {
		img, err := pinhandle.RootOf(ctx, store, root)
		if errors.Is(err, pinhandle.ErrNotHandle) {
			return fmt.Errorf("%s: %w: neither an image root nor a pin handle (%v)", root, manifests.ErrNotIPFSImage, err)
		}
		if err != nil {
			return err
		}
		handle, root = root.String(), img
		if !g.JSON {
			if err := inspect.PrintHandle(g.stdout, handle, root); err != nil {
				return err
			}
		}
	}
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return err
	}
	im, err := inspect.New(tree, handle)
	if err != nil {
		return err
	}
	if g.JSON {
		return im.PrintJSON(g.stdout)
	}
	return im.PrintText(g.stdout)
}
