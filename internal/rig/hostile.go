package rig

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Hostile is hand-crafted IPFS content that attacks a reader of the
// IPFS-enabled format (issue 13), written as JSON blobs to a real node. Each
// field is the root CID of one tree, or a descriptor in one.
type Hostile struct {
	// Good is a valid single-platform image: a config and one layer of
	// GoodLayerSize random bytes (over a 1 MiB small-blob bound).
	Good       cid.Cid
	GoodConfig ocispec.Descriptor
	GoodLayer  ocispec.Descriptor
	GoodBytes  []byte
	// NegativeSize, HugeSize, MaxSize: manifests whose one layer claims
	// -5, 1<<62 and MaxInt64 bytes (its ipfs:// URL names real bytes).
	NegativeSize, HugeSize, MaxSize cid.Cid
	// BadLayer is the digest the layers of the three above claim.
	BadLayer digest.Digest
	// NegativeChild is an index whose one manifest claims -1 bytes.
	NegativeChild cid.Cid
	// Wide: indexes that repeat WideWidth copies of the same child
	// WideDepth levels deep over Good's manifest (about 1 MiB of JSON; a
	// naive walk visits WideWidth^WideDepth manifests).
	Wide                 cid.Cid
	WideWidth, WideDepth int
	// URLs: an index whose manifest descriptor, config and layer list
	// EvilURL-based http(s) URLs besides their ipfs:// URLs.
	URLs cid.Cid
	// Foreign: a manifest with a non-distributable (foreign) layer listing
	// an https URL and an ftp URL besides its ipfs:// URL.
	Foreign cid.Cid
	// Mismatch: a manifest whose layer's ipfs:// URL names other bytes of
	// the same size as the layer its digest claims (GoodLayer's digest).
	Mismatch cid.Cid
}

// GoodLayerSize is the size of Hostile.GoodLayer.
const GoodLayerSize = 1536 << 10

// BuildHostile writes the Hostile trees through add (which stores bytes in
// IPFS and returns their CID). evilURL is the base of the foreign URLs the
// URLs tree lists (an HTTP server of the test, to see whether a client
// fetches them).
func BuildHostile(t testing.TB, add func([]byte) cid.Cid, evilURL string) *Hostile {
	t.Helper()
	h := &Hostile{WideWidth: 400, WideDepth: 4}
	url := func(c cid.Cid) string { return "ipfs://" + cid.NewCidV1(c.Type(), c.Hash()).String() }
	blob := func(mt string, b []byte, urls ...string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b)), URLs: append([]string{url(add(b))}, urls...)}
	}
	doc := func(mt string, v any, urls ...string) ocispec.Descriptor {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return blob(mt, raw, urls...)
	}
	root := func(d ocispec.Descriptor) cid.Cid {
		raw, err := json.Marshal(ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, URLs: d.URLs})
		if err != nil {
			t.Fatal(err)
		}
		return add(raw)
	}
	manifest := func(config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Manifest {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}
		m.SchemaVersion = 2
		return m
	}
	index := func(children ...ocispec.Descriptor) ocispec.Index {
		x := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
		x.SchemaVersion = 2
		return x
	}

	h.GoodBytes = RandomBytes(1313, GoodLayerSize)
	h.GoodConfig = blob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["`+digest.FromBytes(h.GoodBytes).String()+`"]}}`))
	h.GoodLayer = blob(ocispec.MediaTypeImageLayer, h.GoodBytes)
	good := doc(ocispec.MediaTypeImageManifest, manifest(h.GoodConfig, h.GoodLayer))
	h.Good = root(good)

	small := RandomBytes(1314, 3000)
	lie := blob(ocispec.MediaTypeImageLayer, small)
	h.BadLayer = lie.Digest
	for _, x := range []struct {
		size int64
		c    *cid.Cid
	}{{-5, &h.NegativeSize}, {1 << 62, &h.HugeSize}, {math.MaxInt64, &h.MaxSize}} {
		l := lie
		l.Size = x.size
		*x.c = root(doc(ocispec.MediaTypeImageManifest, manifest(h.GoodConfig, l)))
	}

	neg := good
	neg.Size = -1
	h.NegativeChild = root(doc(ocispec.MediaTypeImageIndex, index(neg)))

	child := good
	for range h.WideDepth {
		children := make([]ocispec.Descriptor, h.WideWidth)
		for i := range children {
			children[i] = child
		}
		child = doc(ocispec.MediaTypeImageIndex, index(children...))
	}
	h.Wide = root(child)

	cfg := h.GoodConfig
	cfg.URLs = append(cfg.URLs, evilURL+"/config")
	layer := h.GoodLayer
	layer.URLs = append(layer.URLs, evilURL+"/layer", evilURL+"/layer2")
	m := doc(ocispec.MediaTypeImageManifest, manifest(cfg, layer), evilURL+"/manifest")
	h.URLs = root(doc(ocispec.MediaTypeImageIndex, index(m)))

	foreign := blob("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", RandomBytes(1315, 2000), "https://foreign.example/layer", "ftp://foreign.example/layer")
	h.Foreign = root(doc(ocispec.MediaTypeImageManifest, manifest(h.GoodConfig, h.GoodLayer, foreign)))

	other := RandomBytes(1316, GoodLayerSize)
	wrong := h.GoodLayer
	wrong.URLs = []string{url(add(other))}
	h.Mismatch = root(doc(ocispec.MediaTypeImageManifest, manifest(h.GoodConfig, wrong)))
	return h
}
