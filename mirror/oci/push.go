package oci

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// PushOptions configure Push.
type PushOptions struct {
	Registry registry.Options
	// Platforms to keep; empty keeps all (nerdctl push --all-platforms).
	Platforms []v1.Platform
	// Convert transforms each platform image (modes); nil copies as is.
	Convert manifests.ImageConverter
	// Image labels the Writer's events (default: the source reference).
	Image string
}

// PushResult is what Push did.
type PushResult struct {
	*manifests.Result
	// SourceDigest is the digest of the source's top manifest or index.
	SourceDigest v1.Hash
}

// Push copies the image SOURCE names into IPFS in the IPFS-enabled format,
// through w (which bounds concurrency and adds each digest once).
func Push(ctx context.Context, w *manifests.Writer, source string, o PushOptions) (*PushResult, error) {
	ref, err := registry.ParseRef(source, o.Registry)
	if err != nil {
		return nil, err
	}
	src, err := registry.OpenSource(ctx, ref, o.Registry)
	if err != nil {
		return nil, err
	}
	return PushSource(ctx, w, src, o)
}

// PushSource is Push for an already opened source.
func PushSource(ctx context.Context, w *manifests.Writer, src *registry.Source, o PushOptions) (*PushResult, error) {
	label := o.Image
	if label == "" {
		label = src.Ref.String()
	}
	res, err := w.Write(ctx, src.Node(), manifests.Options{Platforms: o.Platforms, Convert: o.Convert, Image: label})
	if err != nil {
		return nil, fmt.Errorf("pushing %s to IPFS: %w", src.Ref, err)
	}
	return &PushResult{Result: res, SourceDigest: src.Digest}, nil
}
