package serve_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// TestUpstreamView: a lockfile entry with upstream documents is served
// under its name, by tag and by upstream digest, as the source serves it
// (bytes, Content-Type, Docker-Content-Digest); a platform not kept is 404;
// configs and layers are served as before, the IPFS-enabled documents
// still answer by their digests, and /v2/ipfs/<CID> is unchanged.
func TestUpstreamView(t *testing.T) {
	ctx := context.Background()
	e := startEnv(t)
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	idx := rig.Index(t, true,
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 71, 300<<10, true), rig.Layer(t, 72, 999, true)}}),
		rig.Image(t, rig.ImageSpec{Docker: true, Platform: &arm, Layers: []v1.Layer{rig.Layer(t, 73, 999, true)}}))
	top := rig.Push(t, host+"/up/app:1", idx)

	ro := registry.Options{Insecure: true}
	ref, _ := registry.ParseRef(host+"/up/app:1", ro)
	src, err := registry.OpenSource(ctx, ref, ro)
	if err != nil {
		t.Fatal(err)
	}
	node, rec := upstream.Record(src.Node(), digest.Digest(top.String()))
	res, err := manifests.NewWriter(e.store, 4, nil).Write(ctx, node, manifests.Options{Platforms: []v1.Platform{amd}})
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
	up, err := upstream.Build(ctx, e.store, in)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(t.TempDir(), "mirrors.lock")
	lf := lockfile.New()
	lf.Put(lockfile.Entry{Source: "example.com/up/app:1", Mode: "plain", Digest: top.String(), Platforms: []string{"linux/amd64"}, CID: res.Root.String(), Upstream: up.CID.String()})
	lf.Put(lockfile.Entry{Source: "example.com/up/app:1", Mode: "estargz", Digest: top.String(), Platforms: []string{"linux/amd64"}, CID: res.Root.String()})
	if err := lf.WriteFile(lock); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, e.store, serve.Options{Locks: []string{lock}})

	wim, _ := idx.IndexManifest()
	var amdDesc, armDesc v1.Descriptor
	for _, m := range wim.Manifests {
		if m.Platform.Architecture == "amd64" {
			amdDesc = m
		} else {
			armDesc = m
		}
	}
	rawTop, _ := idx.RawManifest()
	amdImg, _ := idx.Image(amdDesc.Digest)
	rawAmd, _ := amdImg.RawManifest()
	for _, c := range []struct {
		name, path, mt, digest string
		body                   []byte
	}{
		{"by tag", "/v2/example.com/up/app/manifests/1", manifests.DockerManifestList, top.String(), rawTop},
		{"as a mirror", "/v2/up/app/manifests/1?ns=example.com", manifests.DockerManifestList, top.String(), rawTop},
		{"by upstream digest", "/v2/example.com/up/app/manifests/" + top.String(), manifests.DockerManifestList, top.String(), rawTop},
		{"a kept manifest", "/v2/example.com/up/app/manifests/" + amdDesc.Digest.String(), manifests.DockerManifest, amdDesc.Digest.String(), rawAmd},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := get(t, method, s.url+c.path, "Accept", manifests.DockerManifestList+","+manifests.DockerManifest)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.mt || resp.Header.Get("Docker-Content-Digest") != c.digest {
				t.Errorf("%s %s: %d %s %s", method, c.name, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"))
			}
			if method == http.MethodGet && !bytes.Equal(body, c.body) {
				t.Errorf("%s: not the upstream bytes", c.name)
			}
		}
	}
	// The platform not kept.
	if resp, body := get(t, "GET", s.url+"/v2/example.com/up/app/manifests/"+armDesc.Digest.String()); resp.StatusCode != 404 || errCode(t, body) != "MANIFEST_UNKNOWN" {
		t.Errorf("arm64 manifest: %d %s", resp.StatusCode, body)
	}
	// The estargz tag has no upstream view: the IPFS-enabled target.
	if resp, _ := get(t, "GET", s.url+"/v2/example.com/up/app/manifests/1-estargz"); resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != res.Target.Digest.String() {
		t.Errorf("estargz tag: %d %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}
	// The IPFS-enabled index by its own digest, under the name and by CID.
	for _, p := range []string{"/v2/example.com/up/app/manifests/" + res.Target.Digest.String(), "/v2/ipfs/" + res.Root.String() + "/manifests/latest"} {
		if resp, _ := get(t, "GET", s.url+p); resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != res.Target.Digest.String() {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
		}
	}
	// Configs and layers: the same blobs.
	mf, _ := amdImg.Manifest()
	for _, d := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		resp, body := get(t, "GET", s.url+"/v2/example.com/up/app/blobs/"+d.Digest.String())
		if resp.StatusCode != 200 || digest.FromBytes(body).String() != d.Digest.String() {
			t.Errorf("blob %s: %d", d.Digest, resp.StatusCode)
		}
	}
	if !strings.Contains(s.log.String(), "digest="+top.String()) {
		t.Errorf("the log names no upstream digest:\n%s", s.log.String())
	}
}
