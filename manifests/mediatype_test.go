package manifests

import (
	"context"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMediaTypeOf(t *testing.T) {
	for _, tc := range []struct {
		mt, doc, want string
	}{
		{ocispec.MediaTypeImageIndex, `{}`, ocispec.MediaTypeImageIndex},
		{"", `{"schemaVersion":2,"manifests":[]}`, ocispec.MediaTypeImageIndex},
		{"", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json"}]}`, ocispec.MediaTypeImageIndex},
		{"", `{"schemaVersion":2,"manifests":[{"mediaType":"` + DockerManifest + `"}]}`, DockerManifestList},
		{"application/octet-stream", `{"schemaVersion":2,"mediaType":"` + DockerManifestList + `","manifests":[]}`, DockerManifestList},
		{"", `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[]}`, ocispec.MediaTypeImageManifest},
		{"", `{"schemaVersion":2,"config":{"mediaType":"` + DockerConfig + `"},"layers":[]}`, DockerManifest},
		{"", `{"schemaVersion":2,"config":{}}`, ""},
		{"", `{"schemaVersion":2,"manifests":[],"config":{},"layers":[]}`, ""},
		{"", `not json`, ""},
	} {
		if got := MediaTypeOf(tc.mt, []byte(tc.doc)); got != tc.want {
			t.Errorf("MediaTypeOf(%q, %s) = %q, want %q", tc.mt, tc.doc, got, tc.want)
		}
	}
}

// noMediaType hides the media type a source would give (a layout whose
// index.json entry has none, a registry answering without Content-Type).
// (An alias: a field named ImageIndex would hide the method ImageIndex.)
type noMediaType struct{ anyIndex }

type anyIndex = v1.ImageIndex

func (noMediaType) MediaType() (types.MediaType, error) { return "", nil }

type noMediaTypeImage struct{ v1.Image }

func (noMediaTypeImage) MediaType() (types.MediaType, error) { return "", nil }

// Issue 12, item 1: an absent media type is inferred from the document,
// never written empty (root descriptor, index entries, url-free rewrite).
func TestWriteInfersAbsentMediaType(t *testing.T) {
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img}), "")
	for name, src := range map[string]Node{"index": noMediaType{idx}, "image": noMediaTypeImage{img}} {
		t.Run(name, func(t *testing.T) {
			store := newMemStore()
			res, err := NewWriter(store, 2, nil).Write(context.Background(), src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var root ocispec.Descriptor
			_ = json.Unmarshal(res.RootDescriptor, &root)
			want := map[string]string{"index": ocispec.MediaTypeImageIndex, "image": ocispec.MediaTypeImageManifest}[name]
			if root.MediaType != want {
				t.Errorf("root descriptor media type %q, want %q: %s", root.MediaType, want, res.RootDescriptor)
			}
			stripped, err := StripURLs(src)
			if err != nil {
				t.Fatal(err)
			}
			var mt types.MediaType
			switch s := stripped.(type) {
			case v1.ImageIndex:
				mt, _ = s.MediaType()
			case v1.Image:
				mt, _ = s.MediaType()
			}
			if string(mt) != want {
				t.Errorf("url-free rewrite: media type %q, want %q", mt, want)
			}
		})
	}
}
