package oci_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/syncer"
)

func referrersRegistry(t *testing.T, on bool) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(on), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// artifactOf pushes a manifest with one layer (and a config of cfgType)
// to ref; subject, when set, makes it an OCI 1.1 referrer.
func artifactOf(t *testing.T, repo name.Repository, tag string, cfgType types.MediaType, layer []byte, subject *v1.Descriptor) v1.Hash {
	t.Helper()
	var descs []v1.Descriptor
	for _, b := range [][]byte{[]byte(`{"k":"` + string(cfgType) + `"}`), layer} {
		l := static.NewLayer(b, "application/octet-stream")
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
		h, _ := l.Digest()
		descs = append(descs, v1.Descriptor{MediaType: "application/octet-stream", Digest: h, Size: int64(len(b))})
	}
	descs[0].MediaType = cfgType
	b, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: descs[0], Layers: descs[1:], Subject: subject})
	h, _, _ := v1.SHA256(strings.NewReader(string(b)))
	var ref name.Reference = repo.Digest(h.String())
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if err := remote.Put(ref, rawManifest(b)); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPullUpstreamReferrers: the referrers sync kept are pushed with the
// upstream documents — a cosign tag-schema document under its tag, OCI 1.1
// referrers by digest (listed by the target's referrers API, or by the
// sha256-<hex> index go-containerregistry writes on a registry without
// it); with --platform, only that manifest's.
func TestPullUpstreamReferrers(t *testing.T) {
	ctx := context.Background()
	src := referrersRegistry(t, true)
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	idx := rig.Index(t, false,
		rig.Image(t, rig.ImageSpec{Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 91, 900, false)}}),
		rig.Image(t, rig.ImageSpec{Platform: &arm, Layers: []v1.Layer{rig.Layer(t, 92, 900, false)}}))
	top := rig.Push(t, src+"/r/app:1", idx)
	wim, _ := idx.IndexManifest()
	raw, _ := idx.RawManifest()
	topDesc := &v1.Descriptor{MediaType: types.OCIImageIndex, Digest: top, Size: int64(len(raw))}
	amdDesc := wim.Manifests[0]
	repo, _ := name.NewRepository(src+"/r/app", name.Insecure)
	sig := artifactOf(t, repo, registry.CosignTag(top, "sig"), "application/vnd.oci.image.config.v1+json", []byte("payload"), nil)
	sbom := artifactOf(t, repo, "", rig.SBOMArtifactType, []byte("spdx"), topDesc)
	att := artifactOf(t, repo, "", "application/vnd.example.att", []byte("att"), &amdDesc)

	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "mirrors.yaml"), []byte("version: 1\nimages:\n  - source: "+src+"/r/app:1\n    referrers: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := car.New(filepath.Join(dir, "s.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lock := lockfile.New()
	rep, err := syncer.Sync(ctx, store, cfg, lock, syncer.Options{Registry: registry.Options{Insecure: true}, PinHandle: pinhandle.Builder(store)})
	if err != nil || rep.Failed != 0 {
		t.Fatalf("sync: %v %v", err, rep.Err())
	}
	e := lock.Images[0]
	if len(e.Referrers) != 3 {
		t.Fatalf("referrers recorded: %+v", e.Referrers)
	}
	pin, _ := ipfs.ParseCID(e.Pin)
	o := oci.PullOptions{Registry: registry.Options{Insecure: true}}

	for _, api := range []bool{true, false} {
		dst := referrersRegistry(t, api)
		res, err := oci.PullUpstream(ctx, store, pin, dst+"/m/app:1", o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != top || len(res.Referrers) != 3 {
			t.Fatalf("API %v: pushed %s and %v", api, res.Digest, res.Referrers)
		}
		drepo, _ := name.NewRepository(dst+"/m/app", name.Insecure)
		if d, err := remote.Head(drepo.Tag(registry.CosignTag(top, "sig"))); err != nil || d.Digest != sig {
			t.Errorf("API %v: the .sig tag: %v %v", api, d, err)
		}
		for subject, want := range map[v1.Hash]v1.Hash{top: sbom, amdDesc.Digest: att} {
			ix, err := remote.Referrers(drepo.Digest(subject.String()))
			if err != nil {
				t.Fatal(err)
			}
			im, _ := ix.IndexManifest()
			if !slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == want }) {
				t.Errorf("API %v: referrers of %s: %+v, want %s", api, subject, im.Manifests, want)
			}
		}
		if !api {
			if _, err := remote.Head(drepo.Tag(registry.ReferrersTag(top))); err != nil {
				t.Errorf("no referrers API: no sha256-<hex> index: %v", err)
			}
		}
	}
	po := o
	po.Platforms = []v1.Platform{amd}
	res, err := oci.PullUpstream(ctx, store, pin, referrersRegistry(t, true)+"/m/one:1", po)
	if err != nil || len(res.Referrers) != 1 || res.Referrers[0] != att {
		t.Errorf("one platform: %v, referrers %v (want %s)", err, res, att)
	}
}
