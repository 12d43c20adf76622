package push

import (
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
)

func mustCID(s string) cid.Cid {
	c, err := cid.Decode(s)
	if err != nil {
		panic(err)
	}
	return c
}

// fixture is a push of a two-platform image: what oci.Push returns, in
// the fields the CLI prints.
func fixture() (root cid.Cid, source, sourceDigest string, target ocispec.Descriptor, platforms []string, blobs []manifests.Blob) {
	root = mustCID("bafkreie7tmsypnubuyedsyrqf26r2fvus2mbszhg4fet7iin6fsby325o4")
	target = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("index"), Size: 783,
		URLs: []string{"ipfs://bafkreidgxekbiln6xvfq7ktem3eejlk7massjdd3cmztlr3h6gy56ddyxq"},
	}
	blobs = []manifests.Blob{
		{Digest: digest.FromString("index"), Size: 783, MediaType: ocispec.MediaTypeImageIndex, CID: mustCID("bafkreidgxekbiln6xvfq7ktem3eejlk7massjdd3cmztlr3h6gy56ddyxq")},
		{Digest: digest.FromString("manifest"), Size: 1024, MediaType: ocispec.MediaTypeImageManifest, CID: mustCID("bafkreiexypwhxagokvidvoj2mprrmn7eedwdesfjzkpuhi54qdqoub2xx4")},
		{Digest: digest.FromString("config"), Size: 721, MediaType: ocispec.MediaTypeImageConfig, CID: mustCID("bafkreigpx2awixyxlkadfw3o3a3xtxflvu764b43nq2zghuvgs4gzsn3ye")},
		{Digest: digest.FromString("layer"), Size: 1 << 20, MediaType: ocispec.MediaTypeImageLayerGzip, CID: mustCID("bafybeiemq6mc5b7neuqtgeurz4e2lqdqqbymdh7oeqslntzpvoraryzkaa")},
	}
	return root, "127.0.0.1:5000/test/multi:v1", digest.FromString("source index").String(), target, []string{"linux/amd64", "linux/arm/v7"}, blobs
}
