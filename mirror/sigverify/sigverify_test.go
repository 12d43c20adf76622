package sigverify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/sigverify"
)

type site struct {
	f    *registry.ReferrerFinder
	host string
}

func (s *site) repo(t *testing.T, repo string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s.host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verify finds the referrers of subject in repo and verifies them with
// the key file.
func (s *site) verify(t *testing.T, keyFile, repo string, subject v1.Hash) (*sigverify.Signature, error) {
	t.Helper()
	ctx := context.Background()
	k, err := sigverify.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r := s.repo(t, repo)
	refs, err := s.f.Find(ctx, r, subject, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k.Verify(ctx, subject, refs, func(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
		return s.f.Blob(ctx, r, d, max)
	})
}

// TestVerifyCosign, with the real cosign on refregistry: a signed image
// passes (its index, and a platform manifest signed with --recursive,
// with the .sig tag; an image whose signature is an OCI 1.1 referrer);
// an unsigned image fails; another key fails; a valid signature of
// another digest, copied to the subject's .sig tag, fails.
func TestVerifyCosign(t *testing.T) {
	rig.SigningTools(t)
	r := rig.StartReferrersRegistry(t)
	f, err := registry.NewReferrerFinder(registry.Options{Insecure: true}, registry.ReferrerLimits{})
	if err != nil {
		t.Fatal(err)
	}
	st := &site{f: f, host: r.Host}
	s := rig.SignedImage(t, r.Host, rig.SignOptions{Seed: 1881, Recursive: true, OrasSpec: "v1.1-referrers-api"})

	for _, d := range []v1.Hash{s.Digest, s.Platforms[1]} {
		sig, err := st.verify(t, s.Key.Public, s.Repo, d)
		if err != nil {
			t.Fatalf("signed %s: %v", d, err)
		}
		if sig.Tag != registry.CosignTag(d, "sig") || !strings.HasPrefix(sig.DockerReference, r.Host+"/"+s.Repo) {
			t.Errorf("signature of %s: %+v", d, sig)
		}
	}

	t.Run("OCI 1.1 signature", func(t *testing.T) {
		o := rig.SignedImage(t, r.Host, rig.SignOptions{Repo: "signed-oci", Seed: 1882, Node: rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1883, 900, false)}}), Key: s.Key, OCIReferrers: true, OrasSpec: "v1.1-referrers-api"})
		sig, err := st.verify(t, s.Key.Public, o.Repo, o.Digest)
		if err != nil || sig.Tag != "" {
			t.Fatalf("OCI 1.1 signature: %+v, %v", sig, err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		d := rig.Push(t, r.Host+"/unsigned:v1", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1884, 900, false)}}))
		_, err := st.verify(t, s.Key.Public, "unsigned", d)
		if !errors.Is(err, sigverify.ErrNotSigned) || !strings.Contains(err.Error(), "no signature document") {
			t.Fatalf("unsigned: %v", err)
		}
	})
	t.Run("another key", func(t *testing.T) {
		other := rig.NewCosignKey(t)
		_, err := st.verify(t, other.Public, s.Repo, s.Digest)
		if !errors.Is(err, sigverify.ErrNotSigned) || !strings.Contains(err.Error(), "the key does not verify the signature: invalid signature") {
			t.Fatalf("another key: %v", err)
		}
	})
	t.Run("payload of another digest", func(t *testing.T) {
		// The platform's valid signature (same key, same repository, its
		// blobs there) tagged as the index's.
		victim := rig.SignedImage(t, r.Host, rig.SignOptions{Repo: "moved", Seed: 1885, Key: s.Key})
		other := rig.Push(t, r.Host+"/moved:v2", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1886, 900, false)}}))
		src, err := name.ParseReference(r.Host+"/moved:"+registry.CosignTag(victim.Digest, "sig"), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(src)
		if err != nil {
			t.Fatal(err)
		}
		dst, _ := name.ParseReference(r.Host+"/moved:"+registry.CosignTag(other, "sig"), name.Insecure)
		if err := remote.Put(dst, desc); err != nil {
			t.Fatal(err)
		}
		if _, err := st.verify(t, s.Key.Public, "moved", victim.Digest); err != nil {
			t.Fatalf("the original: %v", err)
		}
		_, err = st.verify(t, s.Key.Public, "moved", other)
		if !errors.Is(err, sigverify.ErrNotSigned) || !strings.Contains(err.Error(), "the signed payload is for \""+victim.Digest.String()+"\"") {
			t.Fatalf("a signature of another digest: %v", err)
		}
	})
}

// TestVerifyTagSchema: on CNCF distribution, the .sig tag.
func TestVerifyTagSchema(t *testing.T) {
	rig.SigningTools(t)
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	if !reg.Real {
		t.Skip("docker-registry (CNCF distribution) not installed")
	}
	f, err := registry.NewReferrerFinder(registry.Options{Insecure: true}, registry.ReferrerLimits{})
	if err != nil {
		t.Fatal(err)
	}
	s := rig.SignedImage(t, reg.Host, rig.SignOptions{Seed: 1887})
	st := &site{f: f, host: reg.Host}
	if _, err := st.verify(t, s.Key.Public, s.Repo, s.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := st.verify(t, rig.NewCosignKey(t).Public, s.Repo, s.Digest); !errors.Is(err, sigverify.ErrNotSigned) {
		t.Fatalf("another key: %v", err)
	}
}

// doc is a cosign-like signature document in memory: one simple-signing
// layer per payload, signed with sv (or given a signature as is).
type layer struct {
	payload []byte
	sig     *string // nil: sign payload
}

func doc(t *testing.T, sv signature.Signer, tag string, blobs map[v1.Hash][]byte, ls ...layer) registry.Referrer {
	t.Helper()
	var m v1.Manifest
	for _, l := range ls {
		h, n, _ := v1.SHA256(strings.NewReader(string(l.payload)))
		blobs[h] = l.payload
		var b64 string
		if l.sig != nil {
			b64 = *l.sig
		} else {
			sig, err := sv.SignMessage(strings.NewReader(string(l.payload)))
			if err != nil {
				t.Fatal(err)
			}
			b64 = base64.StdEncoding.EncodeToString(sig)
		}
		ann := map[string]string{}
		if b64 != "-" {
			ann[sigverify.SignatureAnnotation] = b64
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: sigverify.SimpleSigningMediaType, Digest: h, Size: n, Annotations: ann})
	}
	return registry.Referrer{ArtifactType: registry.CosignArtifactType("sig"), Tag: tag, Parsed: m}
}

func simpleSigning(digest, typ string) []byte {
	b, _ := json.Marshal(map[string]any{"critical": map[string]any{
		"identity": map[string]string{"docker-reference": "r.example.com/app"},
		"image":    map[string]string{"docker-manifest-digest": digest},
		"type":     typ,
	}, "optional": nil})
	return b
}

// TestVerifyDocuments: the checks one by one, on documents made in memory
// with sigstore's signer (an ECDSA P-256 key, as cosign's): the first valid
// layer wins over broken ones; each failure is ErrNotSigned and says why;
// a payload that cannot be read is that error, not ErrNotSigned; keys load
// from PEM and refuse what is not one.
func TestVerifyDocuments(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(keyFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := sigverify.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	subject := rig.Digest(t, rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1889, 100, false)}}))
	good := simpleSigning(subject.String(), "cosign container image signature")
	blobs := map[v1.Hash][]byte{}
	read := func(_ context.Context, d v1.Descriptor, max int64) ([]byte, error) {
		if b, ok := blobs[d.Digest]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("blob %s: 404", d.Digest)
	}
	ctx := context.Background()
	notB64, dash := "%%%", "-"
	wrong := base64.StdEncoding.EncodeToString([]byte("not a signature"))

	for _, tc := range []struct {
		name string
		refs []registry.Referrer
		want string // "" passes
	}{
		{"one good layer", []registry.Referrer{doc(t, sv, "sha256-x.sig", blobs, layer{payload: good})}, ""},
		{"good after broken ones", []registry.Referrer{
			doc(t, sv, "", blobs, layer{payload: good, sig: &wrong}, layer{payload: simpleSigning("sha256:00", "cosign container image signature")}),
			doc(t, sv, "", blobs, layer{payload: good, sig: &dash}, layer{payload: good})}, ""},
		{"no documents", nil, "no signature document"},
		{"only other referrers", []registry.Referrer{{ArtifactType: "application/spdx+json"}}, "no signature document"},
		{"no payload layer", []registry.Referrer{{ArtifactType: registry.CosignArtifactType("sig")}}, "hold no application/vnd.dev.cosign.simplesigning.v1+json payload"},
		{"no annotation", []registry.Referrer{doc(t, sv, "", blobs, layer{payload: good, sig: &dash})}, "no dev.cosignproject.cosign/signature annotation"},
		{"not base64", []registry.Referrer{doc(t, sv, "", blobs, layer{payload: good, sig: &notB64})}, "the signature is not base64"},
		{"bad signature", []registry.Referrer{doc(t, sv, "", blobs, layer{payload: good, sig: &wrong})}, "the key does not verify the signature: ecdsa: "},
		{"another digest", []registry.Referrer{doc(t, sv, "", blobs, layer{payload: simpleSigning("sha256:00", "cosign container image signature")})}, `the signed payload is for "sha256:00"`},
		{"another type", []registry.Referrer{doc(t, sv, "", blobs, layer{payload: simpleSigning(subject.String(), "atomic container signature")})}, `the signed payload's type is "atomic container signature"`},
		{"not JSON", []registry.Referrer{doc(t, sv, "", blobs, layer{payload: []byte("hello")})}, "not a simple-signing document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := k.Verify(ctx, subject, tc.refs, read)
			if tc.want == "" {
				if err != nil || sig == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, sigverify.ErrNotSigned) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrNotSigned saying %q", err, tc.want)
			}
		})
	}

	missing := doc(t, sv, "", map[v1.Hash][]byte{}, layer{payload: []byte("never stored")})
	if _, err := k.Verify(ctx, subject, []registry.Referrer{missing}, read); err == nil || errors.Is(err, sigverify.ErrNotSigned) || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unreadable payload: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), []byte("cosign.pub")} {
		if _, err := sigverify.ParseKey("k", bad); !errors.Is(err, sigverify.ErrKey) {
			t.Errorf("ParseKey(%q): %v", bad, err)
		}
	}
	if _, err := sigverify.LoadKey(filepath.Join(t.TempDir(), "none.pub")); !errors.Is(err, sigverify.ErrKey) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing key file: %v", err)
	}
}
