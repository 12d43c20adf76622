package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// StripURLs returns the url-free rewrite of an image or index: the same
// blobs, with every URL removed from the documents — the ipfs:// ones and
// any other a tree's author listed — except the http(s) URLs of foreign
// (non-distributable) layers, which is how those are fetched (KeptURLs).
// Manifests and indexes get new digests.
//
// Clients built on containers/image (skopeo, podman) treat a layer with
// urls as foreign: they skip it when copying to oci:, and fetch it from
// those URLs (an address the image's author chose); CNCF distribution
// refuses a manifest whose ordinary layers carry urls. The rewrite is what
// they can take.
func StripURLs(node Node) (Node, error) {
	return StripURLsContext(context.Background(), node)
}

// StripURLsContext is StripURLs that stops when ctx is done. Each distinct
// document is rewritten once, however often the tree lists it.
func StripURLsContext(ctx context.Context, node Node) (Node, error) {
	s := &stripper{ctx: ctx, done: map[v1.Hash]Node{}}
	switch n := node.(type) {
	case v1.Image:
		return s.image(n)
	case v1.ImageIndex:
		return s.index(n)
	}
	return nil, fmt.Errorf("manifests: cannot strip %T", node)
}

// stripper is the state of one StripURLsContext: the rewrites done, by
// original digest.
type stripper struct {
	ctx  context.Context
	done map[v1.Hash]Node
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

// IsForeign reports whether mt is a foreign (non-distributable) layer.
func IsForeign(mt string) bool {
	switch mt {
	case DockerForeign, DockerForeignGzip, ociNonDistributable, ociNonDistributableZ, ociNonDistributable + "+zstd":
		return true
	}
	return false
}

// KeptURLs returns the URLs the url-free rewrite keeps of d: none, except,
// on a foreign layer, its http and https URLs without a fragment (those
// CNCF distribution accepts).
func KeptURLs(d ocispec.Descriptor) []string {
	if !IsForeign(d.MediaType) {
		return nil
	}
	var out []string
	for _, s := range dropIPFS(d.URLs) {
		u, err := url.Parse(s)
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == "" {
			out = append(out, s)
		}
	}
	return out
}

// StripManifestJSON removes the URLs of a manifest's config and layers
// (KeptURLs).
func StripManifestJSON(raw []byte) ([]byte, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m.Config.URLs = KeptURLs(m.Config)
	for i := range m.Layers {
		m.Layers[i].URLs = KeptURLs(m.Layers[i])
	}
	return json.Marshal(&m)
}

// StripIndexJSON removes the URLs of an index's children (KeptURLs) and
// gives each child index or manifest the digest and size child returns for
// it (its own url-free rewrite): the bytes StripURLs makes of the index.
func StripIndexJSON(raw []byte, child func(ocispec.Descriptor) (digest.Digest, int64, error)) ([]byte, error) {
	var doc ocispec.Index
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	for i, m := range doc.Manifests {
		if IsIndex(m.MediaType) || IsManifest(m.MediaType) {
			d, size, err := child(m)
			if err != nil {
				return nil, err
			}
			doc.Manifests[i].Digest, doc.Manifests[i].Size = d, size
		}
		doc.Manifests[i].URLs = KeptURLs(m)
	}
	return json.Marshal(&doc)
}

type strippedImage struct {
	orig v1.Image
	raw  []byte
	mt   types.MediaType
}

func (st *stripper) image(img v1.Image) (v1.Image, error) {
	if err := st.ctx.Err(); err != nil {
		return nil, err
	}
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
	children map[v1.Hash]Node
}

func (st *stripper) index(idx v1.ImageIndex) (v1.ImageIndex, error) {
	if err := st.ctx.Err(); err != nil {
		return nil, err
	}
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
	s := &strippedIndex{orig: idx, mt: types.MediaType(MediaTypeOf(string(mt), raw)), children: map[v1.Hash]Node{}}
	for i, m := range doc.Manifests {
		h, err := v1.NewHash(m.Digest.String())
		if err != nil {
			return nil, err
		}
		var child Node
		prev, seen := st.done[h]
		switch {
		case seen && (IsIndex(m.MediaType) || IsManifest(m.MediaType)):
			child = prev
		case IsIndex(m.MediaType):
			ci, err := idx.ImageIndex(h)
			if err != nil {
				return nil, err
			}
			sc, err := st.index(ci)
			if err != nil {
				return nil, err
			}
			st.done[h], child = sc, sc
		case IsManifest(m.MediaType):
			ci, err := idx.Image(h)
			if err != nil {
				return nil, err
			}
			sc, err := st.image(ci)
			if err != nil {
				return nil, err
			}
			st.done[h], child = sc, sc
		default:
			doc.Manifests[i].URLs = KeptURLs(m)
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
		doc.Manifests[i].URLs = KeptURLs(m)
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

// Layer hands out a child that is neither an index nor a manifest (same
// digest, same bytes): the writers of go-containerregistry copy such
// children with it.
func (s *strippedIndex) Layer(h v1.Hash) (v1.Layer, error) {
	if wl, ok := s.orig.(withLayer); ok {
		return wl.Layer(h)
	}
	return nil, fmt.Errorf("blob %s of the index cannot be read", h)
}
