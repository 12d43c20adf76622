package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// twoPlatforms is a linux/amd64 + linux/arm64 index of images with real
// files, and the layer blobs of both.
func twoPlatforms(t *testing.T) (v1.ImageIndex, map[string][]byte) {
	t.Helper()
	var imgs []v1.Image
	for i, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		gz := rig.Gzip(rig.Tar(
			rig.TarFile{Name: "etc/motd", Data: []byte("hello from " + p.Architecture + "\n")},
			rig.TarFile{Name: "bin/tool", Data: rig.RandomBytes(uint64(40+i), 200<<10)},
		))
		imgs = append(imgs, rig.Image(t, rig.ImageSpec{Platform: &p, Layers: []v1.Layer{layerFromGzip(t, gz), rig.Layer(t, uint64(50+i), 64<<10, false)}}))
	}
	idx := rig.Index(t, false, imgs...)
	return idx, filterLayers(rig.SourceBlobs(t, idx))
}

// dropIndexMediaTypes rewrites the layout at dir so that no index document
// has a mediaType field (the field is optional in an OCI index; nerdctl
// image encrypt --all-platforms writes such indexes), every parent naming
// its rewritten child.
func dropIndexMediaTypes(t *testing.T, dir string) {
	t.Helper()
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", d[len("sha256:"):]) }
	var rewrite func(d map[string]any)
	rewrite = func(d map[string]any) {
		b, err := os.ReadFile(blob(d["digest"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, m := range doc["manifests"].([]any) {
			if m := m.(map[string]any); m["mediaType"] == string(types.OCIImageIndex) {
				rewrite(m)
			}
		}
		delete(doc, "mediaType")
		out, _ := json.Marshal(doc)
		d["digest"], d["size"] = fmt.Sprintf("sha256:%x", sha256.Sum256(out)), len(out)
		if err := os.WriteFile(blob(d["digest"].(string)), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for _, m := range top["manifests"].([]any) {
		rewrite(m.(map[string]any))
	}
	out, _ := json.Marshal(top)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// layoutMediaTypes walks an OCI layout from index.json and fails on any
// descriptor without a media type or naming a document that is not in
// blobs/; it returns the media types of the documents met, in order.
func layoutMediaTypes(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	var walk func(raw []byte, where string)
	walk = func(raw []byte, where string) {
		var doc struct {
			Manifests []desc `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, m := range doc.Manifests {
			if m.MediaType == "" {
				t.Errorf("%s: entry %s has no media type", where, m.Digest)
				continue
			}
			got = append(got, m.MediaType)
			b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", m.Digest[len("sha256:"):]))
			if err != nil {
				t.Errorf("%s names %s %s, not in blobs/", where, m.MediaType, m.Digest)
				continue
			}
			if fmt.Sprintf("sha256:%x", sha256.Sum256(b)) != m.Digest || int64(len(b)) != m.Size {
				t.Errorf("%s: entry %s: size %d, blob of %d bytes", where, m.Digest, m.Size, len(b))
			}
			if m.MediaType == string(types.OCIImageIndex) {
				walk(b, m.Digest)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	walk(b, "index.json")
	return got
}

// Issue 12, item 1: a decrypting pull of a multi-platform image writes a
// layout that skopeo reads, with every level naming the decrypted
// documents, whether or not the source's indexes carry a mediaType and
// however deep they nest.
func TestE2EDecryptMultiPlatformLayout(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pub, priv := rsaKeys(t, t.TempDir(), "k")
	idx, layers := twoPlatforms(t)
	nested := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex}})
	for _, tc := range []struct {
		name      string
		node      v1.ImageIndex
		noMT      bool
		wantTypes []string
	}{
		{"index", idx, false, []string{"index", "manifest", "manifest"}},
		{"index without mediaType", idx, true, []string{"index", "manifest", "manifest"}},
		{"nested index without mediaType", nested, true, []string{"index", "index", "manifest", "manifest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			rig.WriteLayout(t, src, tc.node, "v1")
			if tc.noMT {
				dropIndexMediaTypes(t, src)
			}
			root := mustRun(t, r.env, "push", "--mode", "encrypted", "--recipient", "jwe:"+pub, "oci:"+src+":v1").lastLine()
			checkTree(t, r.k, root)

			out := filepath.Join(t.TempDir(), "out")
			mustRun(t, r.env, "pull", "--key", priv, "ipfs://"+root, "oci:"+out+":t")
			var short []string
			for _, mt := range layoutMediaTypes(t, out) {
				short = append(short, map[string]string{string(types.OCIImageIndex): "index", string(types.OCIManifestSchema1): "manifest"}[mt])
			}
			if fmt.Sprint(short) != fmt.Sprint(tc.wantTypes) {
				t.Errorf("layout documents %v, want %v", short, tc.wantTypes)
			}
			sameBlobs(t, "decrypted layout", layers, rig.LayoutBlobs(t, out))
			rig.LayoutValid(t, out)
			if tc.node == nested {
				// containers/image copies no nested index ("unexpectedly
				// received a manifest list"); go-containerregistry read it.
				rig.Skopeo(t, "inspect", "--raw", "oci:"+out+":t")
				return
			}
			dir := rig.SkopeoReads(t, "oci:"+out+":t")
			sameBlobs(t, "skopeo copy of the decrypted layout", layers, rig.DirBlobs(t, dir))
		})
	}
}
