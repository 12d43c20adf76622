package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rawIndex is an index as it comes from IPFS or a layout: raw bytes, a media
// type from its parent's descriptor (docMT empty: the document has no
// mediaType field, as nerdctl image encrypt --all-platforms writes), and
// children by digest. Its entries carry ipfs:// URLs, as in the IPFS-enabled
// format.
type rawIndex struct {
	raw      []byte
	mt       types.MediaType
	children map[v1.Hash]any
}

var _ v1.ImageIndex = (*rawIndex)(nil)

func newRawIndex(t *testing.T, docMT string, mt types.MediaType, children ...any) *rawIndex {
	t.Helper()
	ix := &rawIndex{mt: mt, children: map[v1.Hash]any{}}
	doc := ocispec.Index{MediaType: docMT, Manifests: []ocispec.Descriptor{}}
	doc.SchemaVersion = 2
	for i, c := range children {
		var (
			raw []byte
			cmt types.MediaType
			err error
		)
		switch c := c.(type) {
		case v1.Image:
			raw, err = c.RawManifest()
			cmt = types.OCIManifestSchema1
		case *rawIndex:
			raw, cmt = c.raw, c.mt
		}
		if err != nil {
			t.Fatal(err)
		}
		h := hashOf(raw)
		ix.children[h] = c
		d := ocispec.Descriptor{MediaType: string(cmt), Digest: digest.Digest(h.String()), Size: int64(len(raw)), URLs: []string{fmt.Sprintf("ipfs://bafkreichild%d", i)}}
		if img, ok := c.(v1.Image); ok {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			d.Platform = &ocispec.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
		doc.Manifests = append(doc.Manifests, d)
	}
	var err error
	if ix.raw, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	return ix
}

func (r *rawIndex) MediaType() (types.MediaType, error) { return r.mt, nil }
func (r *rawIndex) Digest() (v1.Hash, error)            { return hashOf(r.raw), nil }
func (r *rawIndex) Size() (int64, error)                { return int64(len(r.raw)), nil }
func (r *rawIndex) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r *rawIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(r.raw))
}
func (r *rawIndex) Image(h v1.Hash) (v1.Image, error) {
	if c, ok := r.children[h].(v1.Image); ok {
		return c, nil
	}
	return nil, fmt.Errorf("no image %s", h)
}
func (r *rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	if c, ok := r.children[h].(*rawIndex); ok {
		return c, nil
	}
	return nil, fmt.Errorf("no index %s", h)
}

// checkLevels walks a converted index: every entry names its child's
// actual digest, size and media type (and the child is fetchable by it),
// no media type is empty, a rewritten child carries none of the source's
// URLs; it returns how many images were rewritten.
func checkLevels(t *testing.T, idx v1.ImageIndex, where string) int {
	t.Helper()
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	_ = json.Unmarshal(raw, &doc)
	if mt, ok := doc["mediaType"]; ok && string(mt) != `"`+string(types.OCIImageIndex)+`"` {
		t.Errorf("%s: document mediaType %s", where, mt)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("%s: MediaType() %q, want the OCI index", where, mt)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	for i, d := range im.Manifests {
		at := fmt.Sprintf("%s/%d", where, i)
		var child interface {
			RawManifest() ([]byte, error)
			MediaType() (types.MediaType, error)
		}
		switch d.MediaType {
		case types.OCIImageIndex:
			sub, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatalf("%s: %v", at, err)
			}
			rewritten += checkLevels(t, sub, at)
			child = sub
		case types.OCIManifestSchema1:
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatalf("%s: %v", at, err)
			}
			if err := validate.Image(img, validate.Fast); err != nil {
				t.Errorf("%s: %v", at, err)
			}
			m, _ := img.Manifest()
			if strings.HasSuffix(string(m.Layers[0].MediaType), "+encrypted") {
				rewritten++
			}
			child = img
		default:
			t.Fatalf("%s: media type %q", at, d.MediaType)
		}
		craw, _ := child.RawManifest()
		cmt, _ := child.MediaType()
		if d.Digest != hashOf(craw) || d.Size != int64(len(craw)) || d.MediaType != cmt {
			t.Errorf("%s: entry says %s %s %d, child is %s %s %d", at, d.MediaType, d.Digest, d.Size, cmt, hashOf(craw), len(craw))
		}
		if len(d.URLs) != 0 {
			t.Errorf("%s: rewritten entry keeps the source's urls %v", at, d.URLs)
		}
	}
	return rewritten
}

// Issue 12, item 1: a conversion of an index gives every rewritten child
// its new descriptor at every level, nested indexes included, whether the
// source documents carry a mediaType or not, and never writes an empty one.
func TestConvertIndexEveryLevel(t *testing.T) {
	k := genKeys(t)
	enc := func(ctx context.Context, img v1.Image) (v1.Image, error) {
		return Encrypt(ctx, img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	}
	a, b := withPlatform(t, threeLayerImage(t), "amd64", ""), withPlatform(t, threeLayerImage(t), "arm64", "")
	for _, tc := range []struct {
		name  string
		docMT string // the documents' mediaType field
		mt    types.MediaType
		depth int
	}{
		{"index", ocispec.MediaTypeImageIndex, types.OCIImageIndex, 1},
		{"index without mediaType", "", types.OCIImageIndex, 1},
		{"index without any media type", "", "", 1},
		{"nested", ocispec.MediaTypeImageIndex, types.OCIImageIndex, 3},
		{"nested without mediaType", "", types.OCIImageIndex, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newRawIndex(t, tc.docMT, tc.mt, a, b)
			for range tc.depth - 1 {
				src = newRawIndex(t, tc.docMT, tc.mt, src, a)
			}
			out, err := ConvertIndex(context.Background(), src, enc)
			if err != nil {
				t.Fatal(err)
			}
			defer Close(out)
			if err := validate.Index(out, validate.Fast); err != nil {
				t.Fatal(err)
			}
			want := 2 + (tc.depth - 1)
			if n := checkLevels(t, out, "top"); n != want {
				t.Errorf("%d images encrypted, want %d", n, want)
			}
		})
	}
}

// A conversion that changes nothing gives back the source index byte for
// byte (the IPFS-enabled documents, urls and digests as on IPFS), and its
// media type, inferred when the document has none.
func TestConvertIndexUnchanged(t *testing.T) {
	a := withPlatform(t, threeLayerImage(t), "amd64", "")
	for _, docMT := range []string{ocispec.MediaTypeImageIndex, ""} {
		src := newRawIndex(t, docMT, types.OCIImageIndex, newRawIndex(t, docMT, types.OCIImageIndex, a), a)
		out, err := ConvertIndex(context.Background(), src, func(_ context.Context, img v1.Image) (v1.Image, error) { return img, nil })
		if err != nil {
			t.Fatal(err)
		}
		raw, err := out.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, src.raw) {
			t.Errorf("docMT %q: unchanged index re-encoded:\n%s\nwant\n%s", docMT, raw, src.raw)
		}
		if mt, _ := out.MediaType(); mt != types.OCIImageIndex {
			t.Errorf("docMT %q: media type %q", docMT, mt)
		}
		im, _ := out.IndexManifest()
		if _, err := out.ImageIndex(im.Manifests[0].Digest); err != nil {
			t.Error(err)
		}
		if _, err := out.Image(im.Manifests[1].Digest); err != nil {
			t.Error(err)
		}
	}
}
