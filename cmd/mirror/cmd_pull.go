package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// PullCmd is `mirror pull`.
type PullCmd struct {
	Platform        []string `short:"p" placeholder:"OS/ARCH[/VARIANT]" help:"Keep only these platforms (repeatable). docker-archive: defaults to the host's."`
	Jobs            int      `short:"j" default:"4" help:"Blobs pushed at once to a registry."`
	Key             []string `placeholder:"PRIV.pem[:PASSWORD]" help:"Decrypt encrypted layers with this key (repeatable). Without keys an encrypted image is copied as is."`
	URLs            string   `name:"urls" enum:",keep,strip" default:"" help:"keep: write the IPFS-enabled manifests byte for byte (digests as on IPFS); strip: the url-free rewrite, same blobs (default: strip for a registry, keep for oci: and docker-archive:)."`
	Force           bool     `help:"Replace an existing docker-archive: file (an archive holds one image; without it, pull refuses, as skopeo does)."`
	PreserveDigests bool     `name:"preserve-digests" help:"Write the source's own index and manifests byte for byte, so DEST has the upstream digests (signatures still verify). ipfs://CID is then a lockfile entry's upstream: or pin: CID; DEST a registry or oci:; with --platform, one kept platform's manifest."`
	Image           string   `arg:"" name:"ipfs://CID" help:"The image: ipfs://CID or a bare CID."`
	Dest            string   `arg:"" help:"oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or a registry reference with a tag."`
	GatewayFlags    `embed:""`
	ReadFlags       `embed:""`
}

// Run pulls.
func (c *PullCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	root, err := ipfs.ParseCID(c.Image)
	if err != nil {
		return usageError{err}
	}
	if err := c.check(); err != nil {
		return err
	}
	platforms, err := parsePlatforms(c.Platform)
	if err != nil {
		return err
	}
	ref, err := registry.ParseRef(c.Dest, g.Registry())
	if err != nil {
		return err
	}
	if err := oci.CheckPullDest(c.Dest, ref, c.Force); err != nil {
		if errors.Is(err, oci.ErrDestinationExists) {
			return usageError{err}
		}
		return err
	}
	if c.PreserveDigests && (len(c.Key) > 0 || c.URLs != "") {
		return usageError{errors.New("--preserve-digests writes the upstream documents as they are: --key and --urls do not apply")}
	}
	decrypt, err := decrypter(c.Key)
	if err != nil {
		return err
	}
	pr := newPrinter(g, false)
	node, err := c.openStore(ctx, g, open.Options{})
	if err != nil {
		return err
	}
	defer node.Close()
	store := c.patient(node, pr)
	pr.Message("start", fmt.Sprintf("pulling ipfs://%s to %s", root, c.Dest), nil)
	var res *oci.PullResult
	if c.PreserveDigests {
		res, err = oci.PullUpstream(ctx, store, root, c.Dest, oci.PullOptions{Registry: g.Registry(), Platforms: platforms, Jobs: c.Jobs, OnEvent: pr.Event, Overwrite: c.Force})
		if errors.Is(err, oci.ErrNoUpstream) || errors.Is(err, oci.ErrPartialUpstream) {
			err = usageError{err}
		}
	} else {
		res, err = oci.Pull(ctx, store, root, c.Dest, oci.PullOptions{Registry: g.Registry(), Platforms: platforms, Jobs: c.Jobs, URLs: c.URLs, Transform: decrypt, OnEvent: pr.Event, Overwrite: c.Force})
	}
	pr.Finish()
	if err != nil {
		return err
	}
	if g.JSON {
		return json.NewEncoder(g.stdout).Encode(map[string]string{"root": res.Root.String(), "dest": res.Dest, "digest": res.Digest.String()})
	}
	fmt.Fprintf(g.stderr, "pulled ipfs://%s → %s (%s)\n", res.Root, res.Dest, res.Digest)
	if n := len(res.Referrers); n > 0 {
		fmt.Fprintf(g.stderr, "pushed %d referrers beside it (signatures, attestations, SBOMs)\n", n)
	}
	return nil
}
