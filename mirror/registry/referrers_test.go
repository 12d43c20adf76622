package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

const (
	sigType  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	attType  = "application/vnd.dev.cosign.artifact.att.v1+json"
	sbomType = "application/vnd.dev.cosign.artifact.sbom.v1+json"
)

func finder(t *testing.T, l registry.ReferrerLimits) *registry.ReferrerFinder {
	t.Helper()
	f, err := registry.NewReferrerFinder(registry.Options{Insecure: true}, l)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func repoOf(t *testing.T, host, repo string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// kinds renders referrers as "artifactType tag" lines, to compare.
func kinds(rs []registry.Referrer) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s\n", r.ArtifactType, r.Tag)
	}
	return b.String()
}

// TestFindReferrersAPI: on refregistry (the referrers API) Find lists the
// oras SBOM through the API — its artifactType read from its manifest, not
// from refregistry's listing (which gives the config media type) — and
// cosign's signature and attestation from their tags; the artifactType
// filter keeps what it names; a platform manifest signed with --recursive
// has its own signature.
func TestFindReferrersAPI(t *testing.T) {
	rig.SigningTools(t)
	r := rig.StartReferrersRegistry(t)
	s := rig.SignedImage(t, r.Host, rig.SignOptions{Seed: 1851, Recursive: true, OrasSpec: "v1.1-referrers-api"})
	f := finder(t, registry.ReferrerLimits{})
	repo := repoOf(t, r.Host, s.Repo)
	ctx := context.Background()

	got, err := f.Find(ctx, repo, s.Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := rig.SBOMArtifactType + " \n" +
		attType + " " + rig.CosignTag(s.Digest, "att") + "\n" +
		sigType + " " + rig.CosignTag(s.Digest, "sig") + "\n"
	if kinds(got) != want {
		t.Fatalf("referrers of %s:\n%swant\n%s", s.Digest, kinds(got), want)
	}
	sbom := got[0]
	if sbom.Digest != s.SBOMArtifact || sbom.Parsed.Subject.Digest != s.Digest || len(sbom.Blobs) != 1 || sbom.Blobs[0].MediaType != rig.SBOMArtifactType {
		t.Errorf("SBOM referrer: %+v", sbom)
	}
	if d := sbom.Descriptor(); d.ArtifactType != rig.SBOMArtifactType || d.Digest != s.SBOMArtifact || d.Size != int64(len(sbom.Manifest)) {
		t.Errorf("SBOM descriptor: %+v", d)
	}
	sig := got[2]
	if len(sig.Blobs) != 2 || sig.Blobs[1].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" || sig.Blobs[1].Annotations["dev.cosignproject.cosign/signature"] == "" {
		t.Errorf("signature referrer's blobs: %+v", sig.Blobs)
	}
	payload, err := f.Blob(ctx, repo, sig.Blobs[1], 1<<20)
	if err != nil || !strings.Contains(string(payload), s.Digest.String()) {
		t.Errorf("signature payload: %v\n%s", err, payload)
	}
	if _, err := f.Blob(ctx, repo, sig.Blobs[1], 10); !errors.Is(err, registry.ErrReferrersLimit) {
		t.Errorf("a payload over the limit: %v", err)
	}

	again, err := f.Find(ctx, repo, s.Digest, nil)
	if err != nil || kinds(again) != kinds(got) {
		t.Errorf("a second Find differs: %v\n%s", err, kinds(again))
	}
	only, err := f.Find(ctx, repo, s.Digest, []string{rig.SBOMArtifactType, sigType})
	if err != nil || kinds(only) != rig.SBOMArtifactType+" \n"+sigType+" "+rig.CosignTag(s.Digest, "sig")+"\n" {
		t.Errorf("filtered: %v\n%s", err, kinds(only))
	}
	plat, err := f.Find(ctx, repo, s.Platforms[0], nil)
	if err != nil || kinds(plat) != sigType+" "+rig.CosignTag(s.Platforms[0], "sig")+"\n" {
		t.Errorf("referrers of platform %s: %v\n%s", s.Platforms[0], err, kinds(plat))
	}
	if !strings.Contains(r.Log(), "GET /v2/"+s.Repo+"/referrers/"+s.Digest.String()) {
		t.Errorf("no referrers API request in refregistry's log:\n%s", r.Log())
	}

	t.Run("cosign OCI 1.1 signature", func(t *testing.T) {
		o := rig.SignedImage(t, r.Host, rig.SignOptions{Repo: "signed-oci", Seed: 1852, Node: rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1853, 1500, false)}}), Key: s.Key, OCIReferrers: true, OrasSpec: "v1.1-referrers-api"})
		got, err := f.Find(ctx, repoOf(t, r.Host, o.Repo), o.Digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := rig.SBOMArtifactType + " \n" + attType + " " + rig.CosignTag(o.Digest, "att") + "\n" + sigType + " \n"
		if kinds(got) != want {
			t.Fatalf("referrers:\n%swant\n%s", kinds(got), want)
		}
	})
}

// TestFindReferrersTagSchema: on CNCF distribution (no referrers API) Find
// reads the referrers tag schema's sha256-<hex> index oras wrote, and
// cosign's .sig, .att and .sbom tags.
func TestFindReferrersTagSchema(t *testing.T) {
	rig.SigningTools(t)
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	if !reg.Real {
		t.Skip("docker-registry (CNCF distribution) not installed: the tag-schema fallback is tested on it")
	}
	s := rig.SignedImage(t, reg.Host, rig.SignOptions{Seed: 1861, CosignSBOM: true})
	got, err := finder(t, registry.ReferrerLimits{}).Find(context.Background(), repoOf(t, reg.Host, s.Repo), s.Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := rig.SBOMArtifactType + " \n" +
		attType + " " + rig.CosignTag(s.Digest, "att") + "\n" +
		sbomType + " " + rig.CosignTag(s.Digest, "sbom") + "\n" +
		sigType + " " + rig.CosignTag(s.Digest, "sig") + "\n"
	if kinds(got) != want {
		t.Fatalf("referrers:\n%swant\n%s", kinds(got), want)
	}
	if got[0].Digest != s.SBOMArtifact {
		t.Errorf("SBOM %s, want %s", got[0].Digest, s.SBOMArtifact)
	}
	if got[2].Blobs[len(got[2].Blobs)-1].MediaType != "text/spdx+json" {
		t.Errorf("cosign SBOM's layer: %+v", got[2].Blobs)
	}
}

// artifact is an OCI 1.1 artifact manifest with subject (empty config,
// one layer of content already in the registry or not).
func artifact(subject v1.Descriptor, artifactType string, pad int) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},`+
		`"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"pad":%q}}`,
		artifactType, subject.MediaType, subject.Digest, subject.Size, strings.Repeat("x", pad)))
}

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
func (m rawManifest) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(strings.NewReader(string(m.b)))
	return h, err
}
func (m rawManifest) Size() (int64, error) { return int64(len(m.b)), nil }
func put(t *testing.T, ref string, b []byte, mt types.MediaType) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{b, mt}); err != nil {
		t.Fatal(err)
	}
	h, _ := rawManifest{b, mt}.Digest()
	return h
}

// TestFindReferrersBounds: a registry is untrusted — more referrers than
// Count, a listing or manifest over ManifestSize, and a tag-schema index
// listing a manifest of another subject are errors; each Find makes one
// ping for the finder's life, not one per request.
func TestFindReferrersBounds(t *testing.T) {
	var pings atomic.Int64
	h := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(nopLog()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := srv.Listener.Addr().String()
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1871, 500, false)}})
	subject := rig.Push(t, host+"/many:v1", img)
	m, _ := img.RawManifest()
	sd := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subject, Size: int64(len(m))}
	for i := range 3 {
		put(t, fmt.Sprintf("%s/many@%s", host, rawDigest(artifact(sd, "application/x.test", i))), artifact(sd, "application/x.test", i), types.OCIManifestSchema1)
	}
	ctx := context.Background()
	repo := repoOf(t, host, "many")

	got, err := finder(t, registry.ReferrerLimits{Count: 3}).Find(ctx, repo, subject, nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("3 referrers, Count 3: %d, %v", len(got), err)
	}
	f := finder(t, registry.ReferrerLimits{Count: 2})
	if _, err := f.Find(ctx, repo, subject, nil); !errors.Is(err, registry.ErrReferrersLimit) {
		t.Errorf("3 referrers, Count 2: %v", err)
	}
	if _, err := finder(t, registry.ReferrerLimits{ManifestSize: 300}).Find(ctx, repo, subject, nil); !errors.Is(err, registry.ErrReferrersLimit) {
		t.Errorf("a listing over ManifestSize: %v", err)
	}
	pings.Store(0)
	for range 3 {
		if _, err := finder(t, registry.ReferrerLimits{}).Find(ctx, repo, subject, []string{"application/x.none"}); err != nil {
			t.Fatal(err)
		}
	}
	one := finder(t, registry.ReferrerLimits{})
	for range 3 {
		if got, err := one.Find(ctx, repo, subject, []string{"application/x.none"}); err != nil || len(got) != 0 {
			t.Fatalf("filtered out: %d, %v", len(got), err)
		}
	}
	if n := pings.Load(); n != 3+1 {
		t.Errorf("pings: %d, want one per finder (4)", n)
	}

	// Without the API: a sha256-<hex> index listing a manifest whose
	// subject is another image.
	plain := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(nopLog())))
	defer plain.Close()
	phost := plain.Listener.Addr().String()
	subject = rig.Push(t, phost+"/liar:v1", img)
	other := rig.Push(t, phost+"/liar:v2", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1872, 500, false)}}))
	od := sd
	od.Digest = other
	a := artifact(od, "application/x.test", 0)
	ad := put(t, phost+"/liar@"+rawDigest(a).String(), a, types.OCIManifestSchema1)
	fallback := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"artifactType":"application/x.test"}]}`, ad, len(a))
	put(t, phost+"/liar:"+registry.ReferrersTag(subject), []byte(fallback), types.OCIImageIndex)
	if _, err := finder(t, registry.ReferrerLimits{}).Find(ctx, repoOf(t, phost, "liar"), subject, nil); !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Errorf("a referrer of another subject: %v", err)
	}
	// go-containerregistry's own push of a manifest with a subject wrote
	// the sha256-<hex> index of other (the registry sent no OCI-Subject).
	got, err = finder(t, registry.ReferrerLimits{}).Find(ctx, repoOf(t, phost, "liar"), other, nil)
	if err != nil || len(got) != 1 || got[0].Digest != ad {
		t.Errorf("the referrer of other through the tag schema: %+v, %v", got, err)
	}
	none := rig.Push(t, phost+"/liar:v3", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1873, 500, false)}}))
	got, err = finder(t, registry.ReferrerLimits{}).Find(ctx, repoOf(t, phost, "liar"), none, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("no referrers, no API: %d, %v", len(got), err)
	}
}

func rawDigest(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(strings.NewReader(string(b)))
	return h
}

func nopLog() *log.Logger { return log.New(io.Discard, "", 0) }
