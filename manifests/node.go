package manifests

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Node is an image or an index: a v1.Image or a v1.ImageIndex, what
// Writer.Write takes and Tree.Top and StripURLs return. Both satisfy it;
// a type switch tells them apart. Its methods are what a descriptor of
// either is made of (go-containerregistry's partial.Describable, the core
// of its mutate.Appendable, which names the same idea).
type Node interface {
	MediaType() (types.MediaType, error)
	Digest() (v1.Hash, error)
	Size() (int64, error)
}
