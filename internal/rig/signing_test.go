package rig

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestSignedImageReferrersAPI: on refregistry (the OCI 1.1 referrers API)
// SignedImage's signature and attestation verify with the real cosign,
// and oras discover and the referrers API list the SBOM artifact.
func TestSignedImageReferrersAPI(t *testing.T) {
	SigningTools(t)
	r := StartReferrersRegistry(t)
	s := SignedImage(t, r.Host, SignOptions{Seed: 1801, Recursive: true, OrasSpec: "v1.1-referrers-api"})

	for _, ref := range []string{s.DigestRef(), s.Ref()} {
		if out, err := s.Key.Verify(t, ref); err != nil {
			t.Fatalf("cosign verify %s: %v\n%s", ref, err, out)
		}
	}
	for _, p := range s.Platforms {
		ref := s.Host + "/" + s.Repo + "@" + p.String()
		if out, err := s.Key.Verify(t, ref); err != nil {
			t.Fatalf("cosign verify %s (--recursive signed it): %v\n%s", ref, err, out)
		}
	}
	if out, err := s.Key.VerifyAttestation(t, s.DigestRef()); err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
	}
	if out, err := NewCosignKey(t).Verify(t, s.DigestRef()); err == nil {
		t.Fatalf("cosign verify with another key passed:\n%s", out)
	}

	idx, _ := Referrers(t, r.Host, s.Repo, s.Digest, "")
	if !hasDigest(idx.Manifests, s.SBOMArtifact) {
		t.Fatalf("referrers API of %s lists no SBOM %s: %+v", s.Digest, s.SBOMArtifact, idx.Manifests)
	}
	// refregistry logs a request once it has answered it: the line may
	// come a moment after the answer did.
	want := "GET /v2/" + s.Repo + "/referrers/" + s.Digest.String()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(r.Log(), want) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(r.Log(), want) {
		t.Errorf("refregistry's log shows no referrers request:\n%s", r.Log())
	}
	checkSBOMArtifact(t, s)

	root := OrasDiscover(t, s.DigestRef())
	if root.Digest != s.Digest.String() || !slices.ContainsFunc(root.Referrers, func(n OrasReferrer) bool { return n.Digest == s.SBOMArtifact.String() }) {
		t.Fatalf("oras discover %s: no SBOM %s: %+v", s.DigestRef(), s.SBOMArtifact, root)
	}
	// cosign's own documents are on its tag schema; the SBOM is on the
	// referrers API only (no referrers tag schema index).
	tags := tagList(t, r.Host, s.Repo)
	for _, want := range []string{CosignTag(s.Digest, "sig"), CosignTag(s.Digest, "att")} {
		if !slices.Contains(tags, want) {
			t.Errorf("tags of %s: no %s: %v", s.Repo, want, tags)
		}
	}
	if slices.Contains(tags, CosignTag(s.Digest, "")) {
		t.Errorf("tags of %s: the referrers tag schema's %s, with --distribution-spec v1.1-referrers-api: %v", s.Repo, CosignTag(s.Digest, ""), tags)
	}

	t.Run("cosign OCI 1.1 referrers", func(t *testing.T) {
		o := SignedImage(t, r.Host, SignOptions{Repo: "signed-oci", Seed: 1802, Node: Image(t, ImageSpec{Layers: []v1.Layer{Layer(t, 1803, 1500, false)}}), Key: s.Key, OCIReferrers: true, OrasSpec: "v1.1-referrers-api"})
		if out, err := o.Key.Verify(t, o.DigestRef(), "--experimental-oci11"); err != nil {
			t.Fatalf("cosign verify --experimental-oci11: %v\n%s", err, out)
		}
		if tags := tagList(t, r.Host, o.Repo); slices.Contains(tags, CosignTag(o.Digest, "sig")) || slices.Contains(tags, CosignTag(o.Digest, "")) {
			t.Errorf("OCI 1.1 mode on the referrers API left a tag-schema tag: %v", tags)
		}
		idx, _ := Referrers(t, r.Host, o.Repo, o.Digest, "")
		if len(idx.Manifests) != 2 || !hasDigest(idx.Manifests, o.SBOMArtifact) {
			t.Fatalf("referrers of %s: want the signature and the SBOM, got %+v", o.Digest, idx.Manifests)
		}
	})
}

// TestSignedImageTagSchema: on CNCF distribution (no referrers API) cosign
// keeps its tag schema and oras attach falls back to the referrers tag
// schema; cosign verify and oras discover work there too.
func TestSignedImageTagSchema(t *testing.T) {
	SigningTools(t)
	reg := StartRegistry(t, RegistryOptions{})
	if !reg.Real {
		t.Skip("docker-registry (CNCF distribution) not installed: the tag-schema fallback is tested on it")
	}
	s := SignedImage(t, reg.Host, SignOptions{Seed: 1811, CosignSBOM: true})
	if out, err := s.Key.Verify(t, s.DigestRef()); err != nil {
		t.Fatalf("cosign verify: %v\n%s", err, out)
	}
	if out, err := s.Key.VerifyAttestation(t, s.Ref()); err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
	}

	resp, err := http.Get(fmt.Sprintf("http://%s/v2/%s/referrers/%s", reg.Host, s.Repo, s.Digest))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("docker-registry answers the referrers API (%s): this test means its absence", resp.Status)
	}
	tags := tagList(t, reg.Host, s.Repo)
	for _, want := range []string{s.Tag, CosignTag(s.Digest, "sig"), CosignTag(s.Digest, "att"), CosignTag(s.Digest, "sbom"), CosignTag(s.Digest, "")} {
		if !slices.Contains(tags, want) {
			t.Errorf("tags of %s: no %s: %v", s.Repo, want, tags)
		}
	}
	var fallback v1.IndexManifest
	if err := json.Unmarshal(getManifest(t, reg.Host, s.Repo, CosignTag(s.Digest, "")), &fallback); err != nil {
		t.Fatal(err)
	}
	if !hasDigest(fallback.Manifests, s.SBOMArtifact) {
		t.Fatalf("referrers tag %s lists no SBOM %s: %+v", CosignTag(s.Digest, ""), s.SBOMArtifact, fallback.Manifests)
	}
	checkSBOMArtifact(t, s)
	root := OrasDiscover(t, s.DigestRef())
	if !slices.ContainsFunc(root.Referrers, func(n OrasReferrer) bool {
		return n.Digest == s.SBOMArtifact.String() && n.ArtifactType == SBOMArtifactType
	}) {
		t.Fatalf("oras discover %s: no SBOM %s: %+v", s.DigestRef(), s.SBOMArtifact, root)
	}
}

// checkSBOMArtifact: the manifest oras attached names the subject and the
// SBOM's artifactType.
func checkSBOMArtifact(t *testing.T, s *Signed) {
	t.Helper()
	var m struct {
		ArtifactType string         `json:"artifactType"`
		Subject      *v1.Descriptor `json:"subject"`
		Layers       []v1.Descriptor
	}
	if err := json.Unmarshal(getManifest(t, s.Host, s.Repo, s.SBOMArtifact.String()), &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != SBOMArtifactType || m.Subject == nil || m.Subject.Digest != s.Digest || len(m.Layers) != 1 {
		t.Fatalf("SBOM artifact %s: artifactType %q, subject %+v, %d layers; want %s, %s, 1", s.SBOMArtifact, m.ArtifactType, m.Subject, len(m.Layers), SBOMArtifactType, s.Digest)
	}
}

func hasDigest(ds []v1.Descriptor, d v1.Hash) bool {
	return slices.ContainsFunc(ds, func(x v1.Descriptor) bool { return x.Digest == d })
}

func tagList(t *testing.T, host, repo string) []string {
	t.Helper()
	var l struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(httpGet(t, fmt.Sprintf("http://%s/v2/%s/tags/list", host, repo), ""), &l); err != nil {
		t.Fatal(err)
	}
	return l.Tags
}

func getManifest(t *testing.T, host, repo, ref string) []byte {
	t.Helper()
	return httpGet(t, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, ref),
		"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
}

func httpGet(t *testing.T, u, accept string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, b)
	}
	return b
}
