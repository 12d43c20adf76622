// Package sigverify checks, offline and with a public key, that a manifest
// digest carries a valid cosign signature (issue 18: an entry with
// verify: {cosign: {key: FILE}} is mirrored only when it does).
//
// The signature documents are among the referrers mirror/registry's
// ReferrerFinder finds: cosign's sha256-<hex>.sig tag, or an OCI 1.1
// referrer of type application/vnd.dev.cosign.artifact.sig.v1+json. Each
// layer of such a document is a simple-signing payload
// (application/vnd.dev.cosign.simplesigning.v1+json) with its signature,
// base64, in the annotation dev.cosignproject.cosign/signature. A layer
// is a valid signature when the key verifies the signature over the
// payload's bytes and the payload names the subject
// (critical.image.docker-manifest-digest) and is a cosign signature
// (critical.type): what `cosign verify --key K --insecure-ignore-tlog`
// accepts, plus the type check cosign leaves out. No transparency log,
// certificate or timestamp is consulted.
//
// The key and signature checks are sigstore's own
// (github.com/sigstore/sigstore's pkg/signature and pkg/cryptoutils, the
// library cosign, policy-controller and Kyverno verify with): ECDSA,
// RSA PKCS#1 v1.5 and Ed25519 keys, SHA-256, as cosign verify --key.
package sigverify

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// The media type of a cosign simple-signing payload and the annotation
// that carries its signature.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
)

// MaxPayload bounds one payload read (they are a few hundred bytes).
const MaxPayload = 1 << 20

// maxKeyFile bounds the key file read.
const maxKeyFile = 1 << 20

// ErrNotSigned is matched (errors.Is) by every verification failure: the
// subject has no signature the key verifies for it.
var ErrNotSigned = errors.New("no valid cosign signature")

// ErrKey: the key file cannot be read or is not a public key.
var ErrKey = errors.New("bad cosign public key")

// Key is a public key cosign signatures are checked with.
type Key struct {
	v    signature.Verifier
	name string
}

// LoadKey reads a PEM public key file (cosign.pub).
func LoadKey(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%w %s: more than %d bytes", ErrKey, path, maxKeyFile)
	}
	return ParseKey(path, b)
}

// ParseKey reads a PEM public key; name says where it came from, in
// errors.
func ParseKey(name string, pemBytes []byte) (*Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, name, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, name, err)
	}
	return &Key{v: v, name: name}, nil
}

// String names the key (its file).
func (k *Key) String() string { return k.name }

// BlobReader reads one blob of a signature document whole, checked against
// its digest and size, refusing one over max bytes (ReferrerFinder.Blob
// bound to a repository).
type BlobReader func(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error)

// Signature is the signature Verify accepted.
type Signature struct {
	// Document is the signature document's manifest digest, Tag the tag it
	// was found on ("" for an OCI 1.1 referrer); Layer the payload's digest.
	Document v1.Hash
	Tag      string
	Layer    v1.Hash
	// DockerReference is the identity the payload claims (informational:
	// it is not checked, as cosign does not by default).
	DockerReference string
}

// Verify checks that subject has a cosign signature the key verifies among
// refs, the referrers of subject (from ReferrerFinder.Find, unfiltered or
// filtered to include the cosign signature type): the first valid one is
// returned. Otherwise the error matches ErrNotSigned and says, for each
// signature looked at, why it was refused; an error reading a payload is
// returned as such (not ErrNotSigned: the registry failed, not the
// image).
func (k *Key) Verify(ctx context.Context, subject v1.Hash, refs []registry.Referrer, read BlobReader) (*Signature, error) {
	sigType := registry.CosignArtifactType("sig")
	var why []error
	docs := 0
	for _, r := range refs {
		if r.ArtifactType != sigType {
			continue
		}
		docs++
		for _, l := range r.Parsed.Layers {
			if l.MediaType != SimpleSigningMediaType {
				continue
			}
			claimed, refused, err := k.layer(ctx, subject, l, read)
			if err != nil {
				return nil, fmt.Errorf("signature %s of %s: %w", r.Digest, subject, err)
			}
			if refused == nil {
				return &Signature{Document: r.Digest, Tag: r.Tag, Layer: l.Digest, DockerReference: claimed}, nil
			}
			why = append(why, fmt.Errorf("document %s, payload %s: %w", r.Digest, l.Digest, refused))
		}
	}
	if docs == 0 {
		return nil, fmt.Errorf("%s: %w: no signature document (no %s tag, no referrer of type %s)", subject, ErrNotSigned, registry.CosignTag(subject, "sig"), sigType)
	}
	if len(why) == 0 {
		return nil, fmt.Errorf("%s: %w: %d signature documents hold no %s payload", subject, ErrNotSigned, docs, SimpleSigningMediaType)
	}
	return nil, fmt.Errorf("%s: %w with key %s: %w", subject, ErrNotSigned, k.name, errors.Join(why...))
}

// layer checks one payload layer: refused says why it is not a valid
// signature; err that it could not be read.
func (k *Key) layer(ctx context.Context, subject v1.Hash, l v1.Descriptor, read BlobReader) (claimed string, refused, err error) {
	b64, ok := l.Annotations[SignatureAnnotation]
	if !ok || b64 == "" {
		return "", fmt.Errorf("no %s annotation", SignatureAnnotation), nil
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("the signature is not base64: %w", err), nil
	}
	body, err := read(ctx, l, MaxPayload)
	if err != nil {
		return "", nil, fmt.Errorf("reading payload %s: %w", l.Digest, err)
	}
	if err := k.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body), options.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("the key does not verify the signature: %w", err), nil
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(body, &p); err != nil {
		return "", fmt.Errorf("the signed payload is not a simple-signing document: %w", err), nil
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return "", fmt.Errorf("the signed payload's type is %q, not %q", p.Critical.Type, payload.CosignSignatureType), nil
	}
	if got := p.Critical.Image.DockerManifestDigest; got != subject.String() {
		return "", fmt.Errorf("the signed payload is for %q, not %s", got, subject), nil
	}
	return p.Critical.Identity.DockerReference, nil, nil
}
