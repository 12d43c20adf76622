package convert

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/containers/ocicrypt"
	encconfig "github.com/containers/ocicrypt/config"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Annotations ocicrypt puts on encrypted layer descriptors.
const (
	AnnotationEncKeysJWE   = "org.opencontainers.image.enc.keys.jwe"
	AnnotationEncKeysPKCS7 = "org.opencontainers.image.enc.keys.pkcs7"
	AnnotationEncKeysPGP   = "org.opencontainers.image.enc.keys.pgp"
	AnnotationEncPubOpts   = "org.opencontainers.image.enc.pubopts"
)

// EncryptOptions tunes Encrypt.
type EncryptOptions struct {
	// Recipients, as nerdctl image encrypt --recipient takes them:
	// "jwe:PUB.pem", "pkcs7:CERT.pem", "pgp:IDENTITY". See ParseRecipient.
	Recipients []string
	// PGPPubRing is the OpenPGP public keyring (gpg --export [--armor]) the
	// pgp: identities are looked up in. Empty means the local gpg's keyring
	// (gpg --export is run), as nerdctl and skopeo do.
	PGPPubRing string
	// Layers selects the layers to encrypt by index in the manifest; negative
	// indexes count from the end (-1 is the top layer), as nerdctl / imgcrypt
	// --layer. Empty means all layers.
	Layers []int
	// TempDir holds the encrypted layers until Close; empty means os.TempDir().
	TempDir string
}

// Encrypt returns img with the selected layers encrypted with ocicrypt for
// the recipients, as `nerdctl image encrypt` and `skopeo copy
// --encryption-key` do:
//
//   - each selected layer is encrypted (AES-256-CTR with HMAC, a new random
//     key per layer, wrapped for every recipient), its media type gets the
//     "+encrypted" suffix (Docker types become OCI ones first, e.g.
//     application/vnd.oci.image.layer.v1.tar+gzip+encrypted), its source
//     annotations are kept and ocicrypt's are added
//     (org.opencontainers.image.enc.keys.<scheme>, ...enc.pubopts);
//   - the config is unchanged (byte for byte: diff_ids stay those of the
//     plaintext), the manifest becomes OCI.
//
// Layers already encrypted, foreign layers and non-filesystem blobs pass
// through; an image with no unencrypted filesystem layer at all (a buildx
// attestation manifest, an OCI artifact, an image already encrypted) is
// returned as is — attestations therefore stay readable: drop them (platform
// selection) if they must not be published. Recipients are parsed and the layer media types checked before
// returning (ErrNoRecipients, ErrUnsupportedRecipient, ErrInvalidKey,
// ErrUnsupportedMediaType, ErrNothingToEncrypt). Each layer is encrypted on
// first use of the result into a temporary file; Close the result to remove
// them. Encryption is randomized: two runs give different digests.
func Encrypt(ctx context.Context, img v1.Image, opts EncryptOptions) (v1.Image, error) {
	if len(opts.Recipients) == 0 {
		return nil, fmt.Errorf("encrypt: %w", ErrNoRecipients)
	}
	var rs []Recipient
	for _, s := range opts.Recipients {
		r, err := ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		rs = append(rs, r)
	}
	ec, err := encryptConfig(rs, opts.PGPPubRing)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("encrypt: reading manifest: %w", err)
	}
	n := len(m.Layers)
	selected := func(i int) bool {
		return len(opts.Layers) == 0 || slices.Contains(opts.Layers, i) || slices.Contains(opts.Layers, i-n)
	}
	todo, fsLayers := 0, 0
	for i, l := range m.Layers {
		k := classify(l.MediaType)
		switch k {
		case kindTar, kindGzip, kindZstd, kindUnknown:
			fsLayers++
		}
		if !selected(i) {
			continue
		}
		switch k {
		case kindUnknown:
			return nil, fmt.Errorf("encrypt: layer %d (%s): %w %q", i, l.Digest, ErrUnsupportedMediaType, l.MediaType)
		case kindTar, kindGzip, kindZstd:
			todo++
		}
	}
	switch {
	case todo == 0 && fsLayers == 0:
		// Not a filesystem image (an attestation, an artifact) or one
		// already encrypted: nothing to encrypt, as is.
		return img, nil
	case todo == 0:
		return nil, fmt.Errorf("encrypt: selection %v of an image of %d layers: %w", opts.Layers, n, ErrNothingToEncrypt)
	}
	return &image{
		ctx:     ctx,
		src:     img,
		scratch: newScratch(opts.TempDir),
		what:    "encrypt",
		convert: func(ctx context.Context, s *scratch, i int, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (*convertedLayer, error) {
			switch classify(desc.MediaType) {
			case kindTar, kindGzip, kindZstd:
				if selected(i) {
					return encryptLayer(ctx, s, ec, src, desc, diffID)
				}
			}
			return passthrough(src, desc, diffID), nil
		},
	}, nil
}

func encryptLayer(ctx context.Context, s *scratch, ec *encconfig.EncryptConfig, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (_ *convertedLayer, err error) {
	rc, err := src.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetching layer: %w", err)
	}
	defer rc.Close()
	vr, err := verified(ipfs.ContextReader(ctx, rc), desc)
	if err != nil {
		return nil, err
	}
	plainDesc := toOCIDescriptor(desc)
	plainDesc.URLs, plainDesc.Platform = nil, nil
	encR, finalize, err := ocicrypt.EncryptLayer(ec, vr, plainDesc)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	name, hw, err := s.spool("mirror-encrypted-*", encR)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	defer func() {
		if err != nil {
			s.remove(name)
		}
	}()
	encAnn, err := finalize()
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	d := v1.Descriptor{
		MediaType:   ociLayerType(desc.MediaType) + encryptedSuffix,
		Size:        hw.n,
		Digest:      hw.digest(),
		Annotations: maps.Clone(desc.Annotations),
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	maps.Copy(d.Annotations, encAnn)
	l := fileLayer(s, name, d, diffID)
	l.uncompressed = func() (io.ReadCloser, error) {
		return nil, fmt.Errorf("layer %s: %w", d.Digest, ErrEncryptedLayer)
	}
	return l, nil
}

// DecryptOptions tunes Decrypt.
type DecryptOptions struct {
	// Keys, as nerdctl --key / skopeo --decryption-key take them:
	// "PRIV.pem[:password]", certificates for pkcs7, OpenPGP secret keyrings.
	// See ParseKey.
	Keys []string
	// TempDir holds the decrypted layers until Close; empty means
	// os.TempDir().
	TempDir string
}

// Decrypt returns img with every encrypted layer decrypted back to its
// original media type (the "+encrypted" suffix dropped), digest and
// annotations (the org.opencontainers.image.enc.* ones removed); the config
// is unchanged. The keys are tried on every encrypted layer before Decrypt
// returns (only the wrapped keys are unwrapped, no layer data is read): no
// key that can be tried gives ErrNoDecryptionKey, keys that do not fit give
// ErrWrongKey. When img has no encrypted layer it is returned as is.
//
// Each encrypted layer is fetched (its digest checked), decrypted (the HMAC
// checked) and written to a temporary file on first use of the result, which
// gives the plaintext digest; Close the result to remove the files.
func Decrypt(ctx context.Context, img v1.Image, opts DecryptOptions) (v1.Image, error) {
	var keys []Key
	for _, s := range opts.Keys {
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("decrypt: %w", err)
		}
		keys = append(keys, k)
	}
	ks, err := newKeySet(keys)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("decrypt: reading manifest: %w", err)
	}
	encrypted := 0
	for i, l := range m.Layers {
		if classify(l.MediaType) != kindEncrypted {
			continue
		}
		encrypted++
		if err := ks.checkUnwrap(toOCIDescriptor(l)); err != nil {
			return nil, fmt.Errorf("decrypt: layer %d (%s): %w", i, l.Digest, err)
		}
	}
	if encrypted == 0 {
		return img, nil
	}
	return &image{
		ctx:     ctx,
		src:     img,
		scratch: newScratch(opts.TempDir),
		what:    "decrypt",
		convert: func(ctx context.Context, s *scratch, _ int, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (*convertedLayer, error) {
			if classify(desc.MediaType) != kindEncrypted {
				return passthrough(src, desc, diffID), nil
			}
			return decryptLayer(ctx, s, ks.dc, src, desc, diffID)
		},
	}, nil
}

func decryptLayer(ctx context.Context, s *scratch, dc *encconfig.DecryptConfig, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (*convertedLayer, error) {
	encDesc := toOCIDescriptor(desc)
	encDesc.URLs, encDesc.Platform = nil, nil
	d := v1.Descriptor{
		MediaType:   types.MediaType(strings.TrimSuffix(string(desc.MediaType), encryptedSuffix)),
		Annotations: ocicrypt.FilterOutAnnotations(desc.Annotations),
	}
	if len(d.Annotations) == 0 {
		d.Annotations = nil
	}
	return decryptToFile(ctx, s, dc, src, desc, encDesc, d, diffID)
}

// decryptToFile decrypts a layer into a temporary file, hashing the
// plaintext. The digest ocicrypt records in the wrapped key is not used: its
// DecryptLayer does not return it, and encryptors that recompress while
// encrypting (skopeo with an uncompressed source) record the digest of the
// data before compression. Integrity comes from the HMAC (checked at EOF by
// ocicrypt's reader, which holds back the last 10 KiB until then) and the
// ciphertext digest.
func decryptToFile(ctx context.Context, s *scratch, dc *encconfig.DecryptConfig, src v1.Layer, desc v1.Descriptor, encDesc ocispec.Descriptor, d v1.Descriptor, diffID v1.Hash) (_ *convertedLayer, err error) {
	rc, err := src.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetching layer: %w", err)
	}
	defer rc.Close()
	vr, err := verified(ipfs.ContextReader(ctx, rc), desc)
	if err != nil {
		return nil, err
	}
	pr, _, err := ocicrypt.DecryptLayer(dc, vr, encDesc, false)
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	name, hw, err := s.spool("mirror-decrypted-*", pr)
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	d.Digest, d.Size = hw.digest(), hw.n
	return fileLayer(s, name, d, diffID), nil
}
