// Package push renders the result of `mirror push`: the image's CID on
// stdout (the one line a script reads) with a line on stderr naming what
// was pushed, or with --json the whole result: the root CID, the source
// and its digest, the root descriptor, the platforms kept and every blob
// with its CID.
package push

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
)

// Result is what a push produced, as push prints it.
type Result struct {
	// Root is the image's CID.
	Root cid.Cid
	// Source is the source as the user named it.
	Source string
	// SourceDigest is the digest of the source's top manifest or index.
	SourceDigest string
	// Target is the root descriptor.
	Target ocispec.Descriptor
	// Platforms are the platforms kept.
	Platforms []string
	// Blobs is every blob of the tree once, sorted by digest.
	Blobs []manifests.Blob
}

// jsonResult is the --json form; programs read it (mirror-bench does).
type jsonResult struct {
	Root         string             `json:"root"`
	Source       string             `json:"source"`
	SourceDigest string             `json:"sourceDigest"`
	Target       ocispec.Descriptor `json:"target"`
	Platforms    []string           `json:"platforms"`
	Blobs        []manifests.Blob   `json:"blobs"`
}

// PrintJSON prints r as indented JSON.
func (r *Result) PrintJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonResult{Root: r.Root.String(), Source: r.Source, SourceDigest: r.SourceDigest, Target: r.Target, Platforms: r.Platforms, Blobs: r.Blobs})
}

// PrintText prints what was pushed to stderr and the root CID alone to
// stdout. Only a failed stdout write is an error: stderr is the
// commentary (a closed stderr does not fail the push, as it does not fail
// its progress lines).
func (r *Result) PrintText(stdout, stderr io.Writer) error {
	fmt.Fprintf(stderr, "pushed %s (%s) → ipfs://%s\n", r.Source, r.SourceDigest, r.Root)
	_, err := fmt.Fprintln(stdout, r.Root.String())
	return err
}
