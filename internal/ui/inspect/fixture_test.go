package inspect

import (
	"encoding/json"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
)

// fixture builds resolved trees by hand, as manifests.Resolve would return
// them: every descriptor with the ipfs:// URL of its bytes.
type fixture struct {
	docs  map[digest.Digest][]byte
	descs map[digest.Digest]ocispec.Descriptor
}

func newFixture() *fixture {
	return &fixture{docs: map[digest.Digest][]byte{}, descs: map[digest.Digest]ocispec.Descriptor{}}
}

func rawCID(b []byte) cid.Cid {
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(b)
	if err != nil {
		panic(err)
	}
	return c
}

// blob is the descriptor of b (a layer or config; size as given, so that
// sizes of every unit show).
func (f *fixture) blob(mt string, b []byte, size int64) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: size, URLs: []string{"ipfs://" + rawCID(b).String()}}
	f.descs[d.Digest] = d
	return d
}

// doc is the descriptor of v's JSON, kept as a document of the tree.
func (f *fixture) doc(mt string, v any) ocispec.Descriptor {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d := f.blob(mt, raw, int64(len(raw)))
	f.docs[d.Digest] = raw
	return d
}

func (f *fixture) tree(root ocispec.Descriptor) *manifests.Tree {
	raw, _ := json.Marshal(root)
	return &manifests.Tree{Root: rawCID(raw), RootDescriptor: root, Docs: f.docs, Descs: f.descs}
}

// multiTree is an index of two platforms (one with a variant), an
// attestation manifest, and the first platform listed twice; a layer
// shared by both platforms; annotations on a layer and on a manifest.
func multiTree() *manifests.Tree {
	f := newFixture()
	const (
		gz   = "application/vnd.oci.image.layer.v1.tar+gzip"
		conf = "application/vnd.oci.image.config.v1+json"
	)
	shared := f.blob(gz, []byte("shared layer"), 70<<10)
	own := f.blob(gz, []byte("amd64 layer"), 3<<20+12345)
	own.Annotations = map[string]string{"org.opencontainers.image.title": "app.tar.gz", "a.b": "c"}
	amd64 := f.doc(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest, Config: f.blob(conf, []byte("amd64 config"), 1500), Layers: []ocispec.Descriptor{own, shared},
	})
	amd64.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := f.doc(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest, Config: f.blob(conf, []byte("arm config"), 900), Layers: []ocispec.Descriptor{shared},
	})
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	att := f.doc(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest, Config: f.blob(conf, []byte("att config"), 167),
		Layers: []ocispec.Descriptor{f.blob("application/vnd.in-toto+json", []byte("provenance"), 2<<30)},
	})
	att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd64.Digest.String()}
	idx := f.doc(ocispec.MediaTypeImageIndex, ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{amd64, arm, att, amd64},
	})
	return f.tree(idx)
}

// singleTree is one Docker-typed manifest, no index: the root is the
// manifest itself.
func singleTree() *manifests.Tree {
	f := newFixture()
	m := f.doc("application/vnd.docker.distribution.manifest.v2+json", ocispec.Manifest{
		MediaType: "application/vnd.docker.distribution.manifest.v2+json",
		Config:    f.blob("application/vnd.docker.container.image.v1+json", []byte("docker config"), 733),
		Layers: []ocispec.Descriptor{
			f.blob("application/vnd.docker.image.rootfs.diff.tar.gzip", []byte("l1"), 5),
			f.blob("application/vnd.docker.image.rootfs.diff.tar.gzip", []byte("l2"), 1<<20),
		},
	})
	return f.tree(m)
}

// aHandle is a pin handle's CID for the handle cases.
const aHandle = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
