package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// InspectCmd is `mirror inspect`.
type InspectCmd struct {
	Image string `arg:"" name:"ipfs://CID" help:"The image: ipfs://CID or a bare CID."`
}

// inspectNode is one descriptor of the --json tree.
type inspectNode struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	CID       string            `json:"cid"`
	Platform  *ocispec.Platform `json:"platform,omitempty"`
	Children  []*inspectNode    `json:"children,omitempty"`
	Annot     map[string]string `json:"annotations,omitempty"`
}

// Run inspects.
func (c *InspectCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	root, err := ipfs.ParseCID(c.Image)
	if err != nil {
		return usageError{err}
	}
	store, err := g.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
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
			fmt.Fprintf(g.stdout, "ipfs://%s is a pin handle: it holds every blob of ipfs://%s\n", handle, root)
		}
	}
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return err
	}
	var stack []*inspectNode
	var top *inspectNode
	err = tree.Walk(func(d ocispec.Descriptor, depth int) error {
		cid, _ := manifests.CID(d)
		n := &inspectNode{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, CID: cid.String(), Platform: d.Platform, Annot: d.Annotations}
		stack = stack[:depth]
		if depth == 0 {
			top = n
		} else {
			p := stack[depth-1]
			p.Children = append(p.Children, n)
		}
		stack = append(stack, n)
		return nil
	})
	if err != nil {
		return err
	}
	if g.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{"root": root.String(), "descriptor": tree.RootDescriptor, "tree": top}
		if handle != "" {
			out["pinHandle"] = handle
		}
		return enc.Encode(out)
	}
	fmt.Fprintf(g.stdout, "ipfs://%s (root descriptor)\n", root)
	printNode(g, top, "", true)
	return nil
}

func printNode(g *Globals, n *inspectNode, prefix string, last bool) {
	branch, next := "├── ", "│   "
	if last {
		branch, next = "└── ", "    "
	}
	label := short(n.MediaType)
	if n.Platform != nil {
		p := n.Platform.OS + "/" + n.Platform.Architecture
		if n.Platform.Variant != "" {
			p += "/" + n.Platform.Variant
		}
		label += " " + p
	}
	fmt.Fprintf(g.stdout, "%s%s%s %s\n", prefix, branch, label, n.MediaType)
	pad := prefix + next + "  "
	if len(n.Children) > 0 {
		pad = prefix + next + "│ "
	}
	fmt.Fprintf(g.stdout, "%s%s  %s\n", pad, n.Digest, human(n.Size))
	fmt.Fprintf(g.stdout, "%sipfs://%s\n", pad, n.CID)
	for i, ch := range n.Children {
		printNode(g, ch, prefix+next, i == len(n.Children)-1)
	}
}
