package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// StripURLs returns the url-free rewrite of an image or index: the same
// blobs, with every ipfs:// URL removed from the documents (other URLs, as
// on foreign layers, stay). Manifests and indexes get new digests.
//
// Clients built on containers/image (skopeo, podman) treat a layer with
// urls as foreign and skip it when copying to oci:, and CNCF distribution
// refuses a manifest whose ordinary layers carry urls; the rewrite is what
// they can take.
func StripURLs(node any) (any, error) {
	switch n := node.(type) {
	case v1.Image:
		return stripImage(n)
	case v1.ImageIndex:
		return stripIndex(n)
	}
	return nil, fmt.Errorf("manifests: cannot strip %T", node)
}

func dropIPFS(urls []string) []string {
	var out []string
	for _, u := range urls {
		if !strings.HasPrefix(u, "ipfs://") {
			out = append(out, u)
		}
	}
	return out
}

// StripManifestJSON removes ipfs:// URLs from a manifest's config and layers.
func StripManifestJSON(raw []byte) ([]byte, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m.Config.URLs = dropIPFS(m.Config.URLs)
	for i := range m.Layers {
		m.Layers[i].URLs = dropIPFS(m.Layers[i].URLs)
	}
	return json.Marshal(&m)
}

type strippedImage struct {
	orig v1.Image
	raw  []byte
	mt   types.MediaType
}

func stripImage(img v1.Image) (v1.Image, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	out, err := StripManifestJSON(raw)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&strippedImage{orig: img, raw: out, mt: types.MediaType(MediaTypeOf(string(mt), raw))})
}

func (s *strippedImage) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *strippedImage) MediaType() (types.MediaType, error) { return s.mt, nil }
func (s *strippedImage) RawConfigFile() ([]byte, error)      { return s.orig.RawConfigFile() }
func (s *strippedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if cfg, err := s.orig.ConfigName(); err == nil && cfg == h {
		raw, err := s.orig.RawConfigFile()
		if err != nil {
			return nil, err
		}
		return partial.ConfigLayer(&rawConfig{raw: raw})
	}
	l, err := s.orig.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	// Embedding the interface hides the original Descriptor (and its URLs).
	return struct{ partial.CompressedLayer }{l}, nil
}

type rawConfig struct{ raw []byte }

func (r *rawConfig) RawConfigFile() ([]byte, error) { return r.raw, nil }

type strippedIndex struct {
	orig     v1.ImageIndex
	raw      []byte
	mt       types.MediaType
	children map[v1.Hash]any
}

func stripIndex(idx v1.ImageIndex) (v1.ImageIndex, error) {
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	var doc ocispec.Index
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	s := &strippedIndex{orig: idx, mt: types.MediaType(MediaTypeOf(string(mt), raw)), children: map[v1.Hash]any{}}
	for i, m := range doc.Manifests {
		h, err := v1.NewHash(m.Digest.String())
		if err != nil {
			return nil, err
		}
		var child interface {
			Digest() (v1.Hash, error)
			Size() (int64, error)
		}
		switch {
		case IsIndex(m.MediaType):
			ci, err := idx.ImageIndex(h)
			if err != nil {
				return nil, err
			}
			child, err = stripIndex(ci)
			if err != nil {
				return nil, err
			}
		case IsManifest(m.MediaType):
			ci, err := idx.Image(h)
			if err != nil {
				return nil, err
			}
			child, err = stripImage(ci)
			if err != nil {
				return nil, err
			}
		default:
			doc.Manifests[i].URLs = dropIPFS(m.URLs)
			continue
		}
		nd, err := child.Digest()
		if err != nil {
			return nil, err
		}
		size, err := child.Size()
		if err != nil {
			return nil, err
		}
		s.children[nd] = child
		doc.Manifests[i].Digest = digest.Digest(nd.String())
		doc.Manifests[i].Size = size
		doc.Manifests[i].URLs = dropIPFS(m.URLs)
	}
	if s.raw, err = json.Marshal(&doc); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *strippedIndex) MediaType() (types.MediaType, error) { return s.mt, nil }
func (s *strippedIndex) Digest() (v1.Hash, error)            { return partial.Digest(s) }
func (s *strippedIndex) Size() (int64, error)                { return int64(len(s.raw)), nil }
func (s *strippedIndex) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *strippedIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(s.raw))
}
func (s *strippedIndex) Image(h v1.Hash) (v1.Image, error) {
	if c, ok := s.children[h].(v1.Image); ok {
		return c, nil
	}
	return nil, fmt.Errorf("image %s is not in the index", h)
}
func (s *strippedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	if c, ok := s.children[h].(v1.ImageIndex); ok {
		return c, nil
	}
	return nil, fmt.Errorf("index %s is not in the index", h)
}
