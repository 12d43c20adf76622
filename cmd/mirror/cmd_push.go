package main

import (
	"context"
	"fmt"

	"github.com/ipfs-mirror/mirror/internal/ui/push"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// PushCmd is `mirror push`.
type PushCmd struct {
	Platform []string `short:"p" placeholder:"OS/ARCH[/VARIANT]" help:"Keep only these platforms (repeatable, comma-separated). Default: all."`
	Jobs     int      `short:"j" default:"4" help:"Blobs transferred at once."`
	ModeFlags
	Source string `arg:"" help:"Registry reference (docker.io/library/alpine:3.20, optional docker:// prefix), oci:DIR[:TAG] or docker-archive:FILE."`

	CarFlags `embed:""`
}

// Run pushes.
func (c *PushCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	platforms, err := parsePlatforms(c.Platform)
	if err != nil {
		return err
	}
	if _, err := registry.ParseRef(c.Source, g.Registry()); err != nil {
		return err
	}
	conv, mode, err := c.converter()
	if err != nil {
		return err
	}
	store, err := c.openStore(ctx, g)
	if err != nil {
		return err
	}
	defer store.Close()
	pr := newPrinter(g, false)
	w := manifests.NewWriter(store, c.Jobs, pr.Event)
	pr.Message("start", fmt.Sprintf("pushing %s to IPFS (%s)", c.Source, mode), nil)
	res, err := oci.Push(ctx, w, c.Source, oci.PushOptions{Registry: g.Registry(), Platforms: platforms, Convert: conv})
	pr.Finish()
	if err != nil {
		return err
	}
	if err := c.finish(ctx, g, store, res.Result); err != nil {
		return err
	}
	out := &push.Result{Root: res.Root, Source: c.Source, SourceDigest: res.SourceDigest.String(), Target: res.Target, Platforms: res.Platforms, Blobs: res.Blobs}
	if g.JSON {
		return out.PrintJSON(g.stdout)
	}
	return out.PrintText(g.stdout, g.stderr)
}
