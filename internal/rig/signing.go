package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The signing fixtures of issue 18: real cosign (v2, built by .ci/sign.sh)
// and oras, run offline — keyed signing, no transparency log, no Fulcio,
// no TUF — against registries on 127.0.0.1 over plain HTTP.

// SBOMArtifactType is the artifactType of the SBOM SignedImage attaches
// with oras, and the media type of its one layer.
const SBOMArtifactType = "application/spdx+json"

// CosignKey is a cosign key pair made by `cosign generate-key-pair`, the
// private key encrypted with Password.
type CosignKey struct {
	// Private and Public are the paths of cosign.key and cosign.pub.
	Private, Public string
	// Password decrypts Private (COSIGN_PASSWORD).
	Password string
}

// NewCosignKey makes a new key pair in a test directory.
func NewCosignKey(t testing.TB) *CosignKey {
	t.Helper()
	dir := t.TempDir()
	k := &CosignKey{
		Private:  filepath.Join(dir, "cosign.key"),
		Public:   filepath.Join(dir, "cosign.pub"),
		Password: "rig-password",
	}
	if out, err := k.cosignIn(t, dir, nil, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	for _, p := range []string{k.Private, k.Public} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("cosign generate-key-pair wrote no %s: %v", filepath.Base(p), err)
		}
	}
	return k
}

// Cosign runs cosign with this key's password; it returns stdout and
// stderr together.
func (k *CosignKey) Cosign(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return k.cosignIn(t, "", nil, args...)
}

func (k *CosignKey) cosignIn(t testing.TB, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	bin := Tool(t, "MIRROR_COSIGN_BIN", "cosign")
	return runSignTool(t, bin, dir, append([]string{"COSIGN_PASSWORD=" + k.Password}, env...), args...)
}

// Verify runs `cosign verify --key` on ref (HOST/REPO:TAG or
// HOST/REPO@DIGEST, plain HTTP), offline: --insecure-ignore-tlog, as the
// signatures were never uploaded. extra goes before ref (e.g.
// --experimental-oci11 for signatures stored as OCI 1.1 referrers).
func (k *CosignKey) Verify(t testing.TB, ref string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"verify", "--key", k.Public, "--insecure-ignore-tlog=true", "--allow-http-registry"}, extra...)
	return k.Cosign(t, append(args, ref)...)
}

// VerifyAttestation runs `cosign verify-attestation --key --type spdx` on
// ref, offline like Verify.
func (k *CosignKey) VerifyAttestation(t testing.TB, ref string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"verify-attestation", "--key", k.Public, "--type", "spdx", "--insecure-ignore-tlog=true", "--allow-http-registry"}, extra...)
	return k.Cosign(t, append(args, ref)...)
}

// Oras runs the oras CLI (found with Tool, MIRROR_ORAS_BIN); it returns
// stdout and stderr together.
func Oras(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := Tool(t, "MIRROR_ORAS_BIN", "oras")
	return runSignTool(t, bin, "", nil, args...)
}

// OrasReferrer is one node of `oras discover --format json`.
type OrasReferrer struct {
	Reference    string            `json:"reference"`
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Referrers    []OrasReferrer    `json:"referrers"`
}

// OrasDiscover runs `oras discover --plain-http --format json` on ref and
// returns the subject's node, its referrers below it. extra goes before ref
// (e.g. --artifact-type, --distribution-spec v1.1-referrers-tag).
func OrasDiscover(t testing.TB, ref string, extra ...string) OrasReferrer {
	t.Helper()
	args := append([]string{"discover", "--plain-http", "--format", "json"}, extra...)
	bin := Tool(t, "MIRROR_ORAS_BIN", "oras")
	stdout, stderr, err := runSignToolSplit(t, bin, "", nil, append(args, ref)...)
	if err != nil {
		t.Fatalf("oras %s: %v\n%s%s", strings.Join(append(args, ref), " "), err, stdout, stderr)
	}
	var root OrasReferrer
	if err := json.Unmarshal([]byte(stdout), &root); err != nil {
		t.Fatalf("oras discover %s: not JSON: %v\n%s", ref, err, stdout)
	}
	return root
}

// SigningTools finds cosign and oras with Tool (MIRROR_COSIGN_BIN,
// MIRROR_ORAS_BIN; .ci/sign.sh builds them): a test calls it first, before
// starting other parts, to be skipped at once without them outside CI (in
// CI it fails).
func SigningTools(t testing.TB) {
	t.Helper()
	Tool(t, "MIRROR_COSIGN_BIN", "cosign")
	Tool(t, "MIRROR_ORAS_BIN", "oras")
}

// SignOptions tune SignedImage.
type SignOptions struct {
	// Repo is the repository (default "signed"); Tag its tag (default "v1").
	Repo, Tag string
	// Node is the subject pushed, a v1.Image or v1.ImageIndex; default a
	// MultiPlatform index (three platforms, small layers) from Seed.
	Node any
	Seed uint64
	// Key signs; default a new key pair.
	Key *CosignKey
	// Recursive signs each platform manifest of an index too (cosign sign
	// --recursive), not only the index.
	Recursive bool
	// OCIReferrers has cosign store its signature as an OCI 1.1 referrer
	// (--registry-referrers-mode oci-1-1, COSIGN_EXPERIMENTAL=1) instead
	// of the sha256-<hex>.sig tag; verify it with --experimental-oci11.
	// The attestation stays on the .att tag: cosign v2 cannot put it
	// elsewhere with a key.
	OCIReferrers bool
	// CosignSBOM also attaches the SBOM with `cosign attach sbom` (the
	// sha256-<hex>.sbom tag), besides oras's referrer.
	CosignSBOM bool
	// OrasSpec is oras attach's --distribution-spec: "v1.1-referrers-api"
	// (the referrers API only) or "v1.1-referrers-tag" (the sha256-<hex>
	// index tag only). Empty lets oras choose, and it chooses by the
	// OCI-Subject header of the manifest push: CNCF distribution and
	// refregistry send none, so oras also writes the sha256-<hex> index on
	// refregistry, whose referrers API lists the artifact all the same.
	OrasSpec string
}

// Signed is what SignedImage put on the registry.
type Signed struct {
	// Host is the registry, Repo the repository, Tag the subject's tag.
	Host, Repo, Tag string
	// Digest is the subject's digest (the index, or the image manifest).
	Digest v1.Hash
	// Platforms are the digests of an index's manifests (nil for an image).
	Platforms []v1.Hash
	// Key signed the subject and attested the SBOM.
	Key *CosignKey
	// SBOM is the document attested (cosign attest --type spdx) and
	// attached (oras attach, artifactType SBOMArtifactType).
	SBOM []byte
	// SBOMArtifact is the digest of the manifest oras attached.
	SBOMArtifact v1.Hash
	// OCIReferrers: the signature is an OCI 1.1 referrer, not a .sig tag.
	OCIReferrers bool
}

// Ref is HOST/REPO:TAG.
func (s *Signed) Ref() string { return s.Host + "/" + s.Repo + ":" + s.Tag }

// DigestRef is HOST/REPO@DIGEST, the subject by digest.
func (s *Signed) DigestRef() string { return s.Host + "/" + s.Repo + "@" + s.Digest.String() }

// CosignTag is the tag of cosign's tag schema for a subject digest and
// suffix ("sig", "att", "sbom"): sha256-<hex>.<suffix>. With suffix "" it
// is the OCI referrers tag schema's tag, sha256-<hex>.
func CosignTag(d v1.Hash, suffix string) string {
	tag := d.Algorithm + "-" + d.Hex
	if suffix != "" {
		tag += "." + suffix
	}
	return tag
}

// SignedImage pushes an image (by default a multi-platform index) to host
// (a registry on 127.0.0.1, plain HTTP) and, with the real cosign and oras
// binaries, offline, gives it
//   - a cosign signature (cosign sign --key --tlog-upload=false): the
//     sha256-<hex>.sig tag, or an OCI 1.1 referrer with o.OCIReferrers;
//   - a cosign attestation of an SPDX SBOM (cosign attest --type spdx):
//     the sha256-<hex>.att tag;
//   - the same SBOM attached as an OCI 1.1 artifact (oras attach
//     --artifact-type application/spdx+json, an empty config): a referrer
//     through the referrers API where the registry has it
//     (internal/cmd/refregistry), and through the referrers tag schema
//     (the sha256-<hex> index tag) unless o.OrasSpec is
//     "v1.1-referrers-api";
//   - with o.CosignSBOM, the SBOM also on the sha256-<hex>.sbom tag.
//
// The tools are found with Tool (MIRROR_COSIGN_BIN, MIRROR_ORAS_BIN): the
// test is skipped without them outside CI.
func SignedImage(t testing.TB, host string, o SignOptions) *Signed {
	t.Helper()
	SigningTools(t)
	if o.Repo == "" {
		o.Repo = "signed"
	}
	if o.Tag == "" {
		o.Tag = "v1"
	}
	if o.Node == nil {
		o.Node = MultiPlatform(t, o.Seed, 2048)
	}
	if o.Key == nil {
		o.Key = NewCosignKey(t)
	}
	s := &Signed{Host: host, Repo: o.Repo, Tag: o.Tag, Key: o.Key, OCIReferrers: o.OCIReferrers}
	s.Digest = Push(t, s.Ref(), o.Node)
	if idx, ok := o.Node.(v1.ImageIndex); ok {
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			s.Platforms = append(s.Platforms, d.Digest)
		}
	}
	ref := s.DigestRef()
	cosign := func(env []string, args ...string) {
		t.Helper()
		if out, err := o.Key.cosignIn(t, "", env, args...); err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	sign := []string{"sign", "--key", o.Key.Private, "--tlog-upload=false", "--yes", "--allow-http-registry"}
	var env []string
	if o.Recursive {
		sign = append(sign, "--recursive")
	}
	if o.OCIReferrers {
		sign = append(sign, "--registry-referrers-mode", "oci-1-1")
		env = append(env, "COSIGN_EXPERIMENTAL=1")
	}
	cosign(env, append(sign, ref)...)

	s.SBOM = spdxDocument(o.Repo, s.Digest)
	dir := t.TempDir()
	sbom := filepath.Join(dir, "sbom.spdx.json")
	if err := os.WriteFile(sbom, s.SBOM, 0o644); err != nil {
		t.Fatal(err)
	}
	cosign(nil, "attest", "--key", o.Key.Private, "--tlog-upload=false", "--yes", "--allow-http-registry",
		"--type", "spdx", "--predicate", sbom, ref)
	if o.CosignSBOM {
		cosign(nil, "attach", "sbom", "--sbom", sbom, "--type", "spdx", "--allow-http-registry", ref)
	}

	// oras attach reads the file relative to its working directory: the
	// path becomes the layer's title annotation.
	bin := Tool(t, "MIRROR_ORAS_BIN", "oras")
	attach := []string{"attach", "--plain-http", "--format", "json", "--artifact-type", SBOMArtifactType}
	if o.OrasSpec != "" {
		attach = append(attach, "--distribution-spec", o.OrasSpec)
	}
	stdout, stderr, err := runSignToolSplit(t, bin, dir, nil, append(attach, ref, "sbom.spdx.json:"+SBOMArtifactType)...)
	if err != nil {
		t.Fatalf("oras attach %s: %v\n%s%s", ref, err, stdout, stderr)
	}
	var attached struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(stdout), &attached); err != nil {
		t.Fatalf("oras attach: output not JSON: %v\n%s", err, stdout)
	}
	if s.SBOMArtifact, err = v1.NewHash(attached.Digest); err != nil {
		t.Fatalf("oras attach: digest %q: %v\n%s", attached.Digest, err, stdout)
	}
	return s
}

// spdxDocument is a small SPDX 2.3 document naming the subject.
func spdxDocument(repo string, subject v1.Hash) []byte {
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              repo,
		"documentNamespace": "https://mirror.invalid/spdx/" + repo + "/" + subject.Hex,
		"creationInfo": map[string]any{
			"created":  "2026-01-01T00:00:00Z",
			"creators": []string{"Tool: mirror-rig"},
		},
		"packages": []map[string]any{{
			"SPDXID":           "SPDXRef-Package-busybox",
			"name":             "busybox",
			"versionInfo":      "1.37.0",
			"downloadLocation": "NOASSERTION",
			"licenseConcluded": "GPL-2.0-only",
		}},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}

// runSignTool runs a signing tool offline: HOME, TMPDIR, DOCKER_CONFIG and
// TUF_ROOT in a test directory (no credentials, no sigstore cache), env
// added; it returns stdout and stderr together.
func runSignTool(t testing.TB, bin, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := runSignToolSplit(t, bin, dir, env, args...)
	return stdout + stderr, err
}

func runSignToolSplit(t testing.TB, bin, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "TMPDIR="+home, "DOCKER_CONFIG="+home,
		"TUF_ROOT="+filepath.Join(home, "tuf"), "SIGSTORE_NO_CACHE=true")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), err
}
