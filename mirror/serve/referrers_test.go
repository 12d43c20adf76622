package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// TestReferrers: an entry whose upstream layout holds referrers (as sync
// keeps them) serves them under its name: the referrers API (with
// artifactType filtering and OCI-Filters-Applied; the artifactType from
// the manifest, else its config media type; the manifest's annotations),
// cosign's tag schema (sha256-<hex>.sig) and the referrers tag schema
// (sha256-<hex>), the referrer manifests by digest and their blobs; an
// unknown subject is an empty index; a /v2/ipfs/<CID> name has no API.
func TestReferrers(t *testing.T) {
	ctx := context.Background()
	e := startEnv(t)
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	amd := v1.Platform{OS: "linux", Architecture: "amd64"}
	idx := rig.Index(t, false, rig.Image(t, rig.ImageSpec{Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 81, 900, false)}}))
	top := rig.Push(t, host+"/ref/app:1", idx)
	wim, _ := idx.IndexManifest()
	amdDigest := digest.Digest(wim.Manifests[0].Digest.String())
	topD := digest.Digest(top.String())
	rawTop, _ := idx.RawManifest()

	ro := registry.Options{Insecure: true}
	ref, _ := registry.ParseRef(host+"/ref/app:1", ro)
	src, err := registry.OpenSource(ctx, ref, ro)
	if err != nil {
		t.Fatal(err)
	}
	node, rec := upstream.Record(src.Node(), topD)
	res, err := manifests.NewWriter(e.store, 4, nil).Write(ctx, node, manifests.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var blobs []ocidir.Blob
	for _, b := range res.Blobs {
		blobs = append(blobs, ocidir.Blob{Digest: b.Digest, Size: b.Size, CID: b.CID})
	}
	in, err := rec.Input(blobs)
	if err != nil {
		t.Fatal(err)
	}

	put := func(b []byte, mt string) ocispec.Descriptor {
		n, err := ocidir.PutFile(ctx, e.store, b)
		if err != nil {
			t.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		in.Blobs = append(in.Blobs, ocidir.Blob{Digest: d.Digest, Size: d.Size, CID: n.CID})
		return d
	}
	payload := []byte(`{"critical":{"image":{"docker-manifest-digest":"` + top.String() + `"},"type":"cosign container image signature"}}`)
	sbomBytes := bytes.Repeat([]byte("spdx "), 100<<10) // over SmallBlob: streamed, verified
	emptyCfg := put([]byte("{}"), "application/vnd.oci.empty.v1+json")
	emptyCfg.Data = []byte("{}")
	subject := func(d digest.Digest, mt string, size int) *ocispec.Descriptor {
		return &ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(size)}
	}
	amdImg, _ := idx.Image(wim.Manifests[0].Digest)
	rawAmd, _ := amdImg.RawManifest()
	docs := []struct {
		m   ocispec.Manifest
		tag string
		at  string // index.json's artifactType
	}{
		{ocispec.Manifest{Config: put([]byte(`{"os":""}`), ocispec.MediaTypeImageConfig), Layers: []ocispec.Descriptor{put(payload, "application/vnd.dev.cosign.simplesigning.v1+json")}}, registry.CosignTag(top, "sig"), registry.CosignArtifactType("sig")},
		{ocispec.Manifest{ArtifactType: rig.SBOMArtifactType, Config: emptyCfg, Layers: []ocispec.Descriptor{put(sbomBytes, rig.SBOMArtifactType)}, Subject: subject(topD, ocispec.MediaTypeImageIndex, len(rawTop)), Annotations: map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}, "", rig.SBOMArtifactType},
		{ocispec.Manifest{Config: put([]byte(`{"att":1}`), "application/vnd.example.att.v1+json"), Layers: []ocispec.Descriptor{}, Subject: subject(amdDigest, ocispec.MediaTypeImageManifest, len(rawAmd))}, "", ""},
	}
	var refDigests []digest.Digest
	var refBytes [][]byte
	for _, d := range docs {
		d.m.SchemaVersion, d.m.MediaType = 2, ocispec.MediaTypeImageManifest
		b, _ := json.Marshal(d.m)
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b)), ArtifactType: d.at, Annotations: d.m.Annotations}
		if d.tag != "" {
			desc.Annotations = map[string]string{ocispec.AnnotationRefName: d.tag}
		}
		in.Index = append(in.Index, desc)
		in.Docs = append(in.Docs, upstream.Doc{MediaType: desc.MediaType, Digest: desc.Digest, Bytes: b})
		refDigests, refBytes = append(refDigests, desc.Digest), append(refBytes, b)
	}
	up, err := upstream.Build(ctx, e.store, in)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(t.TempDir(), "mirrors.lock")
	lf := lockfile.New()
	lf.Put(lockfile.Entry{Source: "example.com/ref/app:1", Mode: "plain", Digest: top.String(), Platforms: []string{}, CID: res.Root.String(), Upstream: up.CID.String()})
	if err := lf.WriteFile(lock); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, e.store, serve.Options{Locks: []string{lock}})
	base := s.url + "/v2/example.com/ref/app"

	list := func(path string) (ocispec.Index, http.Header) {
		t.Helper()
		resp, body := get(t, "GET", base+path, "Accept", ocispec.MediaTypeImageIndex)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
			t.Fatalf("%s: %d %s\n%s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var ix ocispec.Index
		if err := json.Unmarshal(body, &ix); err != nil || ix.Manifests == nil || ix.SchemaVersion != 2 {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
		return ix, resp.Header
	}
	ix, h := list("/referrers/" + top.String())
	if len(ix.Manifests) != 1 || ix.Manifests[0].Digest != refDigests[1] || ix.Manifests[0].ArtifactType != rig.SBOMArtifactType ||
		ix.Manifests[0].Size != int64(len(refBytes[1])) || ix.Manifests[0].Annotations["org.opencontainers.image.created"] == "" || h.Get("OCI-Filters-Applied") != "" {
		t.Errorf("referrers of the index: %+v %v", ix.Manifests, h)
	}
	ix, h = list("/referrers/" + top.String() + "?artifactType=" + url.QueryEscape(rig.SBOMArtifactType))
	if len(ix.Manifests) != 1 || h.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered: %+v %v", ix.Manifests, h)
	}
	if ix, _ = list("/referrers/" + top.String() + "?artifactType=application/x.none"); len(ix.Manifests) != 0 {
		t.Errorf("filtered out: %+v", ix.Manifests)
	}
	if ix, _ = list("/referrers/" + amdDigest.String()); len(ix.Manifests) != 1 || ix.Manifests[0].ArtifactType != "application/vnd.example.att.v1+json" {
		t.Errorf("referrers of the platform: %+v", ix.Manifests)
	}
	if ix, _ = list("/referrers/" + digest.FromString("none").String()); len(ix.Manifests) != 0 {
		t.Errorf("an unknown subject: %+v", ix.Manifests)
	}
	if resp, _ := get(t, "GET", s.url+"/v2/ipfs/"+res.Root.String()+"/referrers/"+top.String()); resp.StatusCode != 404 {
		t.Errorf("ipfs/<CID> referrers: %d, want 404 (no referrers API there)", resp.StatusCode)
	}
	if resp, _ := get(t, "GET", base+"/referrers/sha256:abc"); resp.StatusCode != 400 {
		t.Errorf("a bad digest: %d", resp.StatusCode)
	}

	// The tag schemas.
	for _, c := range []struct {
		tag    string
		status int
		digest digest.Digest
	}{
		{registry.CosignTag(top, "sig"), 200, refDigests[0]},
		{registry.CosignTag(top, "att"), 404, ""},
		{registry.ReferrersTag(wim.Manifests[0].Digest), 200, ""},
		{"sha256-" + digest.FromString("none").Encoded(), 404, ""},
	} {
		for _, m := range []string{"GET", "HEAD"} {
			resp, body := get(t, m, base+"/manifests/"+c.tag, "Accept", ocispec.MediaTypeImageManifest+","+ocispec.MediaTypeImageIndex)
			if resp.StatusCode != c.status || (c.digest != "" && resp.Header.Get("Docker-Content-Digest") != c.digest.String()) {
				t.Errorf("%s %s: %d %s", m, c.tag, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
			}
			if m == "GET" && c.status == 200 && c.digest == "" {
				var fx ocispec.Index
				if json.Unmarshal(body, &fx) != nil || len(fx.Manifests) != 1 || fx.Manifests[0].Digest != refDigests[2] || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
					t.Errorf("referrers tag %s: %s", c.tag, body)
				}
			}
		}
	}
	// The referrers' manifests by digest, and their blobs.
	for i, d := range refDigests {
		resp, body := get(t, "GET", base+"/manifests/"+d.String(), "Accept", ocispec.MediaTypeImageManifest)
		if resp.StatusCode != 200 || !bytes.Equal(body, refBytes[i]) {
			t.Errorf("referrer %s by digest: %d", d, resp.StatusCode)
		}
		var m ocispec.Manifest
		_ = json.Unmarshal(refBytes[i], &m)
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			for _, method := range []string{"GET", "HEAD"} {
				resp, body := get(t, method, base+"/blobs/"+b.Digest.String())
				if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != fmt.Sprint(b.Size) || (method == "GET" && digest.FromBytes(body) != b.Digest) {
					t.Errorf("%s blob %s of referrer %d: %d", method, b.Digest, i, resp.StatusCode)
				}
			}
		}
	}
	if resp, _ := get(t, "GET", base+"/blobs/"+digest.FromString("none").String()); resp.StatusCode != 404 {
		t.Errorf("an unknown blob: %d", resp.StatusCode)
	}
}
