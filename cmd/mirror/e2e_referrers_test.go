package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// Referrers through IPFS (issue 18): images signed with the real cosign
// (keyed, offline), attested (an SPDX SBOM) and given the SBOM as an OCI
// 1.1 artifact by the real oras, on a registry with the referrers API
// (internal/cmd/refregistry) and on one without (CNCF distribution), are
// synced with referrers: true and verify: {cosign: {key}}; then cosign
// verify, cosign verify-attestation and oras discover run against `mirror
// serve --lock`, by the lockfile name's tag and by the upstream digest;
// `mirror pull --preserve-digests` gives other registries the image and its
// referrers, where cosign verify passes; an image signed with another key
// and an unsigned one fail alone, the first keeping its previous entry.
func TestE2EReferrers(t *testing.T) {
	t.Parallel()
	rig.SigningTools(t)
	deadline(t, 15*time.Minute)
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	api := rig.StartReferrersRegistry(t)
	dist := rig.StartRegistry(t, rig.RegistryOptions{})
	if !dist.Real {
		t.Skip("docker-registry (CNCF distribution) not installed: the tag-schema registry of this test")
	}
	key := rig.NewCosignKey(t)
	start := time.Now()
	onAPI := rig.SignedImage(t, api.Host, rig.SignOptions{Seed: 1890, Key: key, Recursive: true, OrasSpec: "v1.1-referrers-api"})
	onOCI := rig.SignedImage(t, api.Host, rig.SignOptions{Repo: "signed-oci", Seed: 1891, Key: key, OCIReferrers: true, OrasSpec: "v1.1-referrers-api",
		Node: rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1892, 4096, false)}})})
	onDist := rig.SignedImage(t, dist.Host, rig.SignOptions{Seed: 1893, Key: key, CosignSBOM: true})
	wrong := rig.SignedImage(t, dist.Host, rig.SignOptions{Repo: "wrong", Seed: 1894}) // its own key
	rig.Push(t, dist.Host+"/unsigned:v1", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1895, 4096, false)}}))
	t.Logf("signed, attested and attached 4 images with cosign and oras: %s", time.Since(start).Round(time.Millisecond))

	dir := t.TempDir()
	head := fmt.Sprintf("version: 1\ndefaults:\n  referrers: true\n  verify: {cosign: {key: %s}}\nimages:\n", key.Public)
	good := fmt.Sprintf("  - source: %s\n  - source: %s\n  - source: %s\n", onAPI.Ref(), onOCI.Ref(), onDist.Ref())
	list := writeList(t, dir, head+good+fmt.Sprintf("  - source: %s\n    verify: false\n", wrong.Ref()))
	lock := filepath.Join(dir, "mirrors.lock")
	start = time.Now()
	r := mustRun(t, env, "sync", list)
	t.Logf("sync with referrers and verify (4 images): %s\n%s", time.Since(start).Round(time.Millisecond), r.stderr)
	lf := readLock(t, lock)
	entries := map[string]lockfile.Entry{}
	for _, e := range lf.Images {
		entries[e.Source] = e
	}
	sig, att, sbom := registry.CosignArtifactType("sig"), registry.CosignArtifactType("att"), registry.CosignArtifactType("sbom")
	for _, c := range []struct {
		s    *rig.Signed
		want map[string]int // artifact type → count
	}{
		// The index's .sig and .att, the SBOM through the API, and each
		// platform's .sig (cosign sign --recursive).
		{onAPI, map[string]int{sig: 1 + len(onAPI.Platforms), att: 1, rig.SBOMArtifactType: 1}},
		// The signature as an OCI 1.1 referrer.
		{onOCI, map[string]int{sig: 1, att: 1, rig.SBOMArtifactType: 1}},
		// The SBOM through the referrers tag schema, and cosign's .sbom.
		{onDist, map[string]int{sig: 1, att: 1, sbom: 1, rig.SBOMArtifactType: 1}},
		{wrong, map[string]int{sig: 1, att: 1, rig.SBOMArtifactType: 1}},
	} {
		e, ok := entries[c.s.Ref()]
		if !ok || e.Digest != c.s.Digest.String() || e.Upstream == "" {
			t.Fatalf("%s: entry %+v", c.s.Ref(), e)
		}
		got := map[string]int{}
		for _, x := range e.Referrers {
			got[x.ArtifactType]++
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: referrers by type %v, want %v\n%+v", c.s.Ref(), got, c.want, e.Referrers)
		}
		if !slices.ContainsFunc(e.Referrers, func(x lockfile.Referrer) bool {
			return x.Digest == c.s.SBOMArtifact.String() && x.Subject == c.s.Digest.String()
		}) {
			t.Errorf("%s: the oras SBOM %s is not recorded", c.s.Ref(), c.s.SBOMArtifact)
		}
	}

	// An image signed with another key (its entry there from the run
	// above) and an unsigned one, both with verify: fail alone.
	before := readLock(t, lock)
	bad := writeList(t, dir, head+good+fmt.Sprintf("  - source: %s\n  - source: %s/unsigned:v1\n", wrong.Ref(), dist.Host))
	r = mirrorRun(t, env, "sync", bad)
	if r.code != ExitPartial || strings.Count(r.stderr+r.stdout, "no valid cosign signature") < 2 {
		t.Fatalf("sync with a wrongly signed and an unsigned image: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, ExitPartial, r.stdout, r.stderr)
	}
	after := readLock(t, lock)
	if string(before.Marshal()) != string(after.Marshal()) {
		t.Errorf("the failed images changed the lockfile:\n%s\nwas\n%s", after.Marshal(), before.Marshal())
	}
	t.Logf("the failures, as sync reports them:\n%s", r.stderr)

	p := startServe(t, env, "--lock", lock)
	nameOf := func(s *rig.Signed) string {
		return p.host + "/" + strings.Replace(s.Host, ":", "_", 1) + "/" + s.Repo
	}
	start = time.Now()
	for _, s := range []*rig.Signed{onAPI, onOCI, onDist} {
		var extra []string
		if s.OCIReferrers {
			extra = []string{"--experimental-oci11"}
		}
		name := nameOf(s)
		for _, ref := range []string{name + ":" + s.Tag, name + "@" + s.Digest.String()} {
			if out, err := s.Key.Verify(t, ref, extra...); err != nil {
				t.Errorf("cosign verify %s against mirror serve: %v\n%s", ref, err, out)
			}
			if out, err := s.Key.VerifyAttestation(t, ref); err != nil {
				t.Errorf("cosign verify-attestation %s against mirror serve: %v\n%s", ref, err, out)
			}
		}
		if out, err := rig.NewCosignKey(t).Verify(t, name+"@"+s.Digest.String(), extra...); err == nil {
			t.Errorf("cosign verify with another key passed against mirror serve:\n%s", out)
		}
		root := rig.OrasDiscover(t, name+"@"+s.Digest.String())
		if !slices.ContainsFunc(root.Referrers, func(n rig.OrasReferrer) bool {
			return n.Digest == s.SBOMArtifact.String() && n.ArtifactType == rig.SBOMArtifactType
		}) {
			t.Errorf("oras discover %s: no SBOM %s: %+v", name, s.SBOMArtifact, root.Referrers)
		}
		repo := strings.TrimPrefix(name, p.host+"/")
		idx, h := rig.Referrers(t, p.host, repo, s.Digest, rig.SBOMArtifactType)
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != s.SBOMArtifact || h.Get("OCI-Filters-Applied") != "artifactType" {
			t.Errorf("referrers API of %s, artifactType %s: %+v %v", name, rig.SBOMArtifactType, idx.Manifests, h)
		}
	}
	for _, d := range onAPI.Platforms {
		ref := nameOf(onAPI) + "@" + d.String()
		if out, err := key.Verify(t, ref); err != nil {
			t.Errorf("cosign verify %s (a platform, signed --recursive) against mirror serve: %v\n%s", ref, err, out)
		}
	}
	t.Logf("cosign verify, verify-attestation and oras discover against mirror serve (3 images, by tag and digest): %s", time.Since(start).Round(time.Millisecond))
	log := p.stderr()
	for _, want := range []string{"/referrers/" + onAPI.Digest.String(), "/manifests/" + registry.CosignTag(onDist.Digest, "sig"), "/manifests/" + registry.CosignTag(onDist.Digest, "att")} {
		if !strings.Contains(log, want) {
			t.Errorf("mirror serve's log has no %s", want)
		}
	}

	// Digest-preserving pulls: the index and its referrers to CNCF
	// distribution (no referrers API: the tag schemas), the OCI 1.1
	// signed image to a registry with the API.
	for _, c := range []struct {
		s    *rig.Signed
		host string
	}{
		{onAPI, rig.StartRegistry(t, rig.RegistryOptions{}).Host},
		{onOCI, rig.StartReferrersRegistry(t).Host},
	} {
		e := entries[c.s.Ref()]
		ref := c.host + "/pulled/" + c.s.Repo + ":" + c.s.Tag
		start := time.Now()
		r := mustRun(t, env, "pull", "--preserve-digests", "ipfs://"+e.Pin, ref)
		t.Logf("pull --preserve-digests → %s: %s\n%s", ref, time.Since(start).Round(time.Millisecond), r.stderr)
		var extra []string
		if c.s.OCIReferrers {
			extra = []string{"--experimental-oci11"}
		}
		for _, target := range []string{ref, c.host + "/pulled/" + c.s.Repo + "@" + c.s.Digest.String()} {
			if out, err := c.s.Key.Verify(t, target, extra...); err != nil {
				t.Errorf("cosign verify %s (the pull's target): %v\n%s", target, err, out)
			}
			if out, err := c.s.Key.VerifyAttestation(t, target); err != nil {
				t.Errorf("cosign verify-attestation %s (the pull's target): %v\n%s", target, err, out)
			}
		}
		root := rig.OrasDiscover(t, c.host+"/pulled/"+c.s.Repo+"@"+c.s.Digest.String())
		if !slices.ContainsFunc(root.Referrers, func(n rig.OrasReferrer) bool { return n.Digest == c.s.SBOMArtifact.String() }) {
			t.Errorf("oras discover on the pull's target %s: no SBOM: %+v", c.host, root.Referrers)
		}
	}
}
