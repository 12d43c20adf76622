// Package inspect renders `mirror inspect`: the tree of an IPFS-enabled
// image as text (a line per descriptor, with its digest, size and CID
// under it) or as JSON (the same tree, nested). cmd/mirror resolves the
// image; this package only shapes and prints what it found.
package inspect

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/ui"
	"github.com/ipfs-mirror/mirror/manifests"
)

// Node is one descriptor of the tree, as --json shows it.
type Node struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	CID       string            `json:"cid"`
	Platform  *ocispec.Platform `json:"platform,omitempty"`
	Children  []*Node           `json:"children,omitempty"`
	Annot     map[string]string `json:"annotations,omitempty"`
}

// Image is what inspect shows of one image.
type Image struct {
	// Root is the image's CID: the root descriptor's.
	Root cid.Cid
	// Descriptor is the root descriptor.
	Descriptor ocispec.Descriptor
	// Tree is every descriptor under the root descriptor, parents before
	// children, in the tree's order; a document listed twice is shown
	// twice, its children once.
	Tree *Node
	// PinHandle is the pin handle inspect was given for the image ("":
	// it was given the image's own CID).
	PinHandle string
}

// New shapes a resolved tree for printing; handle is the pin handle it was
// reached through, if any.
func New(tree *manifests.Tree, handle string) (*Image, error) {
	var stack []*Node
	var top *Node
	err := tree.Walk(func(d ocispec.Descriptor, depth int) error {
		c, _ := manifests.CID(d)
		n := &Node{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, CID: c.String(), Platform: d.Platform, Annot: d.Annotations}
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
		return nil, fmt.Errorf("walking the tree of %s: %w", tree.Root, err)
	}
	return &Image{Root: tree.Root, Descriptor: tree.RootDescriptor, Tree: top, PinHandle: handle}, nil
}

// PrintHandle prints the line that says a CID is a pin handle for an
// image (text only: the JSON form has pinHandle). The CLI prints it before
// it resolves the image, so that it shows even when that fails.
func PrintHandle(w io.Writer, handle string, image cid.Cid) error {
	_, err := fmt.Fprintf(w, "ipfs://%s is a pin handle: it holds every blob of ipfs://%s\n", handle, image)
	return err
}

// jsonImage is the --json form. Its fields are in the order of their
// names, as the map it replaced printed them.
type jsonImage struct {
	Descriptor ocispec.Descriptor `json:"descriptor"`
	PinHandle  string             `json:"pinHandle,omitempty"`
	Root       string             `json:"root"`
	Tree       *Node              `json:"tree"`
}

// PrintJSON prints im as indented JSON: root, descriptor, tree and, given
// a pin handle, pinHandle.
func (im *Image) PrintJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonImage{Descriptor: im.Descriptor, PinHandle: im.PinHandle, Root: im.Root.String(), Tree: im.Tree})
}

// PrintText prints im as a tree: the root descriptor's CID, then a branch
// per descriptor with its kind (and platform) and media type, and under it
// the digest, size and CID.
func (im *Image) PrintText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "ipfs://%s (root descriptor)\n", im.Root)
	printNode(ew, im.Tree, "", true)
	return ew.err
}

func printNode(w io.Writer, n *Node, prefix string, last bool) {
	branch, next := "├── ", "│   "
	if last {
		branch, next = "└── ", "    "
	}
	label := ui.Kind(n.MediaType)
	if n.Platform != nil {
		p := n.Platform.OS + "/" + n.Platform.Architecture
		if n.Platform.Variant != "" {
			p += "/" + n.Platform.Variant
		}
		label += " " + p
	}
	fmt.Fprintf(w, "%s%s%s %s\n", prefix, branch, label, n.MediaType)
	pad := prefix + next + "  "
	if len(n.Children) > 0 {
		pad = prefix + next + "│ "
	}
	fmt.Fprintf(w, "%s%s  %s\n", pad, n.Digest, ui.Bytes(n.Size))
	fmt.Fprintf(w, "%sipfs://%s\n", pad, n.CID)
	for i, ch := range n.Children {
		printNode(w, ch, prefix+next, i == len(n.Children)-1)
	}
}

// errWriter keeps the first write error and writes nothing after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
