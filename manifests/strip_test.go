package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestStripEveryURL (issue 13 item 4): the url-free rewrite removes every
// URL of a config, an ordinary layer and an index child — not only the
// ipfs:// ones — and keeps only the http(s) URLs of a foreign layer.
// Before: the http:// URLs stayed, for skopeo to fetch.
func TestStripEveryURL(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	blob := func(mt string, b []byte, urls ...string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b)), URLs: append([]string{"ipfs://" + st.put(b).String()}, urls...)}
	}
	doc := func(mt string, v any, urls ...string) ocispec.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return blob(mt, b, urls...)
	}
	cfg := blob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), "http://evil.example/c")
	layer := blob(ocispec.MediaTypeImageLayerGzip, []byte("layer"), "http://evil.example/l", "https://evil.example/l")
	foreign := blob(ociNonDistributableZ, []byte("foreign"), "https://f.example/x", "ftp://f.example/y", "https://f.example/z#frag", "file:///etc/passwd")
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer, foreign}}
	m.SchemaVersion = 2
	child := doc(ocispec.MediaTypeImageManifest, m, "http://evil.example/m")
	for range 2 {
		x := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		x.SchemaVersion = 2
		for range 3 {
			x.Manifests = append(x.Manifests, child)
		}
		child = doc(ocispec.MediaTypeImageIndex, x, "http://evil.example/i")
	}
	rootRaw, _ := json.Marshal(child)
	tree, err := Resolve(ctx, st, st.put(rootRaw))
	if err != nil {
		t.Fatal(err)
	}
	top, err := tree.Top(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stripped, err := StripURLs(top)
	if err != nil {
		t.Fatal(err)
	}
	var node any = stripped
	for depth := 0; ; depth++ {
		idx, ok := node.(v1.ImageIndex)
		if !ok {
			break
		}
		raw, _ := idx.RawManifest()
		if strings.Contains(string(raw), `"urls"`) {
			t.Fatalf("level %d lists URLs: %.300s", depth, raw)
		}
		im, _ := idx.IndexManifest()
		if len(im.Manifests) != 3 {
			t.Fatalf("level %d: %d children", depth, len(im.Manifests))
		}
		c := im.Manifests[0]
		if c.MediaType.IsIndex() {
			node, err = idx.ImageIndex(c.Digest)
		} else {
			node, err = idx.Image(c.Digest)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	img := node.(v1.Image)
	raw, _ := img.RawManifest()
	var got ocispec.Manifest
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Config.URLs) != 0 || len(got.Layers[0].URLs) != 0 || fmt.Sprint(got.Layers[1].URLs) != "[https://f.example/x]" {
		t.Errorf("url-free manifest: config %v, layer %v, foreign layer %v", got.Config.URLs, got.Layers[0].URLs, got.Layers[1].URLs)
	}
}
