package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipfs-mirror/mirror/mirror/compose"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// ComposeCmd groups the compose helpers.
type ComposeCmd struct {
	Rewrite ComposeRewriteCmd `cmd:"" help:"Write a compose override that runs the mirrored services from IPFS (through mirror serve)."`
}

// ComposeRewriteCmd is `mirror compose rewrite`.
type ComposeRewriteCmd struct {
	Compose  string `arg:"" name:"compose.yaml" type:"existingfile" help:"The compose file."`
	Lock     string `default:"mirrors.lock" type:"path" help:"The lockfile of the sync that mirrored the compose file's images."`
	Output   string `short:"o" type:"path" help:"The override file (default: compose.ipfs.yaml next to the compose file; - for stdout)."`
	Registry string `default:"localhost:5050" help:"Where mirror serve answers."`
}

// Run rewrites.
func (c *ComposeRewriteCmd) Run(_ context.Context, g *Globals) error {
	lock, err := lockfile.Read(c.Lock)
	if err != nil {
		return configError{err}
	}
	if len(lock.Images) == 0 {
		return usageError{fmt.Errorf("%s is empty or missing: run mirror sync first", c.Lock)}
	}
	res, err := compose.Rewrite(c.Compose, lock, c.Registry)
	if err != nil {
		return configError{err}
	}
	for _, s := range res.Missing {
		fmt.Fprintf(g.stderr, "warning: service %s: its image is not in %s; left as is\n", s, c.Lock)
	}
	out := c.Output
	if out == "" {
		out = filepath.Join(filepath.Dir(c.Compose), "compose.ipfs.yaml")
	}
	if out == "-" {
		_, err := g.stdout.Write(res.Override)
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, res.Override, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "wrote %s (%d services); run: docker compose -f %s -f %s up\n", out, len(res.Rewritten), c.Compose, out)
	return nil
}
