package convert

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/containers/ocicrypt"
	encconfig "github.com/containers/ocicrypt/config"
	encutils "github.com/containers/ocicrypt/utils"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Recipient schemes, as nerdctl image encrypt --recipient and skopeo
// --encryption-key take them.
const (
	SchemeJWE   = "jwe"   // jwe:PUBKEY (PEM, DER or JWK public key file)
	SchemePKCS7 = "pkcs7" // pkcs7:CERT (x509 certificate file)
	SchemePGP   = "pgp"   // pgp:IDENTITY (name or e-mail in an OpenPGP public keyring)
)

// Recipient is a parsed encryption recipient.
type Recipient struct {
	Scheme string // SchemeJWE, SchemePKCS7 or SchemePGP
	Value  string // the key file (jwe, pkcs7) or the OpenPGP identity (pgp)
	data   []byte // key material read from Value (jwe, pkcs7)
}

// ParseRecipient parses "jwe:PUB.pem", "pkcs7:CERT.pem" or "pgp:IDENTITY"
// and, for jwe and pkcs7, reads and checks the file. Errors wrap
// ErrUnsupportedRecipient (unknown or missing scheme), ErrInvalidKey (the
// file holds no public key / certificate) or the file system error.
func ParseRecipient(s string) (Recipient, error) {
	scheme, value, ok := strings.Cut(s, ":")
	if !ok {
		return Recipient{}, fmt.Errorf("recipient %q: no scheme: %w (want jwe:, pkcs7: or pgp:)", s, ErrUnsupportedRecipient)
	}
	r := Recipient{Scheme: scheme, Value: value}
	switch scheme {
	case SchemeJWE, SchemePKCS7:
		if value == "" {
			return Recipient{}, fmt.Errorf("recipient %q: no key file", s)
		}
		b, err := os.ReadFile(value)
		if err != nil {
			return Recipient{}, fmt.Errorf("recipient %q: %w", s, err)
		}
		if scheme == SchemeJWE && !encutils.IsPublicKey(b) {
			return Recipient{}, fmt.Errorf("recipient %q: %s is not a public key (PEM, DER or JWK): %w", s, value, ErrInvalidKey)
		}
		if scheme == SchemePKCS7 && !encutils.IsCertificate(b) {
			return Recipient{}, fmt.Errorf("recipient %q: %s is not an x509 certificate: %w", s, value, ErrInvalidKey)
		}
		r.data = b
	case SchemePGP:
		if value == "" {
			return Recipient{}, fmt.Errorf("recipient %q: no OpenPGP identity", s)
		}
	default:
		return Recipient{}, fmt.Errorf("%w %q (want jwe:, pkcs7: or pgp:)", ErrUnsupportedRecipient, scheme)
	}
	return r, nil
}

// KeyKind says what a decryption key file holds.
type KeyKind string

const (
	KeyPrivate     KeyKind = "private"     // RSA/EC private key (PEM, DER or JWK): jwe and pkcs7
	KeyCertificate KeyKind = "certificate" // x509 certificate: pkcs7 needs it beside the private key
	KeyPGP         KeyKind = "pgp"         // OpenPGP secret keyring (binary or ASCII-armored)
)

// Key is a parsed decryption key.
type Key struct {
	Path     string
	Kind     KeyKind
	data     []byte
	password []byte
}

// ParseKey parses a decryption key as nerdctl --key and skopeo
// --decryption-key take it: "FILE" or "FILE:PASSWORD", where PASSWORD is
// literal, "pass=PASSWORD" or "file=PASSWORDFILE". FILE is a private key
// (PEM, DER or JWK; PEM as PKCS#8 — OpenSSL 3's default —, encrypted PKCS#8
// (PBES2, PBKDF2, AES-CBC: openssl genpkey -aes256), PKCS#1 or SEC 1;
// password-protected PEM needs the password), an x509
// certificate (pkcs7 decryption needs the recipient's certificate beside its
// private key) or an OpenPGP secret keyring (gpg --export-secret-keys).
// Errors wrap the file system error or ErrInvalidKey.
func ParseKey(s string) (Key, error) {
	path, pass, hasPass := s, "", false
	if _, err := os.Stat(s); err != nil {
		if p, pw, ok := strings.Cut(s, ":"); ok {
			path, pass, hasPass = p, pw, true
		}
	}
	if path == "" {
		return Key{}, fmt.Errorf("key: no file before the ':'")
	}
	k := Key{Path: path}
	if hasPass {
		switch {
		case strings.HasPrefix(pass, "pass="):
			k.password = []byte(strings.TrimPrefix(pass, "pass="))
		case strings.HasPrefix(pass, "file="):
			b, err := os.ReadFile(strings.TrimPrefix(pass, "file="))
			if err != nil {
				return Key{}, fmt.Errorf("key %s: reading password: %w", path, err)
			}
			k.password = bytes.TrimRight(b, "\r\n")
		default:
			k.password = []byte(pass)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", path, err)
	}
	k.data = b
	// PEM private keys in every form OpenSSL writes (PKCS#8 plain and
	// encrypted, PKCS#1, SEC 1) are handed to ocicrypt as plain PKCS#8
	// DER: it reads neither encrypted PKCS#8 nor SEC 1 PEM.
	if der, ok, err := pemPrivateKey(b, k.password); ok {
		if err != nil {
			return Key{}, fmt.Errorf("key %s: %v: %w", path, err, ErrInvalidKey)
		}
		k.Kind, k.data, k.password = KeyPrivate, der, nil
		return k, nil
	}
	isPriv, err := encutils.IsPrivateKey(b, k.password)
	switch {
	case encutils.IsPasswordError(err):
		return Key{}, fmt.Errorf("key %s: wrong or missing password: %w", path, ErrInvalidKey)
	case isPriv:
		k.Kind = KeyPrivate
	case encutils.IsCertificate(b):
		k.Kind = KeyCertificate
	default:
		ring, ok := pgpKeyring(b)
		if !ok || !encutils.IsGPGPrivateKeyRing(ring) {
			return Key{}, fmt.Errorf("key %s: not a private key, x509 certificate or OpenPGP secret keyring: %w", path, ErrInvalidKey)
		}
		k.Kind, k.data = KeyPGP, ring
	}
	return k, nil
}

// pgpKeyring returns the binary form of an OpenPGP keyring, dearmoring it
// when it is ASCII-armored (ocicrypt reads binary keyrings only).
func pgpKeyring(b []byte) ([]byte, bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP")) {
		return b, len(b) > 0
	}
	blk, err := armor.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(blk.Body)
	if err != nil {
		return nil, false
	}
	return out, true
}

// encryptConfig builds the ocicrypt configuration for the recipients.
func encryptConfig(recipients []Recipient, pgpPubRing string) (*encconfig.EncryptConfig, error) {
	var pubKeys, certs, pgpIDs [][]byte
	for _, r := range recipients {
		switch r.Scheme {
		case SchemeJWE:
			pubKeys = append(pubKeys, r.data)
		case SchemePKCS7:
			certs = append(certs, r.data)
		case SchemePGP:
			pgpIDs = append(pgpIDs, []byte(r.Value))
		}
	}
	var ccs []encconfig.CryptoConfig
	if len(pubKeys) > 0 {
		cc, err := encconfig.EncryptWithJwe(pubKeys)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	if len(certs) > 0 {
		cc, err := encconfig.EncryptWithPkcs7(certs)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	if len(pgpIDs) > 0 {
		ring, err := readPGPPubRing(pgpPubRing)
		if err != nil {
			return nil, err
		}
		if err := checkPGPIdentities(ring, pgpIDs); err != nil {
			return nil, err
		}
		cc, err := encconfig.EncryptWithGpg(pgpIDs, ring)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	if len(ccs) == 0 {
		return nil, ErrNoRecipients
	}
	return encconfig.CombineCryptoConfigs(ccs).EncryptConfig, nil
}

// readPGPPubRing reads the OpenPGP public keyring from a file, or from the
// local gpg (gpg --export, as nerdctl and skopeo do) when path is empty.
func readPGPPubRing(path string) ([]byte, error) {
	if path == "" {
		client, err := ocicrypt.NewGPGClient("", "")
		if err != nil {
			return nil, fmt.Errorf("pgp recipients need a public keyring: set the keyring file or install gpg: %w", err)
		}
		ring, err := client.ReadGPGPubRingFile()
		if err != nil {
			return nil, fmt.Errorf("reading the gpg public keyring: %w", err)
		}
		return ring, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pgp public keyring: %w", err)
	}
	ring, ok := pgpKeyring(b)
	if !ok {
		return nil, fmt.Errorf("pgp public keyring %s: not an OpenPGP keyring: %w", path, ErrInvalidKey)
	}
	return ring, nil
}

// keySet is the decryption side: parsed keys and the ocicrypt configuration.
type keySet struct {
	keys []Key
	dc   *encconfig.DecryptConfig
}

func newKeySet(keys []Key) (*keySet, error) {
	var privs, pwds, certs, rings, ringPwds [][]byte
	for _, k := range keys {
		switch k.Kind {
		case KeyPrivate:
			privs = append(privs, k.data)
			pwds = append(pwds, k.password)
		case KeyCertificate:
			certs = append(certs, k.data)
		case KeyPGP:
			rings = append(rings, k.data)
			ringPwds = append(ringPwds, k.password)
		default:
			return nil, fmt.Errorf("key %s: unknown kind %q", k.Path, k.Kind)
		}
	}
	var ccs []encconfig.CryptoConfig
	if len(privs) > 0 {
		cc, err := encconfig.DecryptWithPrivKeys(privs, pwds)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	if len(certs) > 0 {
		cc, err := encconfig.DecryptWithX509s(certs)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	if len(rings) > 0 {
		cc, err := encconfig.DecryptWithGpgPrivKeys(rings, ringPwds)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	dc := &encconfig.DecryptConfig{Parameters: map[string][][]byte{}}
	if len(ccs) > 0 {
		dc = encconfig.CombineCryptoConfigs(ccs).DecryptConfig
	}
	return &keySet{keys: keys, dc: dc}, nil
}

// fits reports which recipient schemes the keys can be tried on, and a hint
// for schemes they almost fit.
func (ks *keySet) fits() (map[string]bool, string) {
	var priv, cert, pgp bool
	for _, k := range ks.keys {
		switch k.Kind {
		case KeyPrivate:
			priv = true
		case KeyCertificate:
			cert = true
		case KeyPGP:
			pgp = true
		}
	}
	hint := ""
	if priv && !cert {
		hint = " (pkcs7 needs the recipient certificate as a key too)"
	}
	return map[string]bool{SchemeJWE: priv, SchemePKCS7: priv && cert, SchemePGP: pgp}, hint
}

// layerSchemes lists the recipient schemes an encrypted layer is wrapped for.
func layerSchemes(ann map[string]string) []string {
	var out []string
	for k, v := range ann {
		if s, ok := strings.CutPrefix(k, encKeysPrefix); ok && v != "" {
			out = append(out, s)
		}
	}
	return out
}

// checkUnwrap tries the keys on an encrypted layer's wrapped keys (no layer
// data is read) and classifies a failure as ErrNoDecryptionKey or ErrWrongKey.
func (ks *keySet) checkUnwrap(desc ocispec.Descriptor) error {
	schemes := layerSchemes(desc.Annotations)
	if len(schemes) == 0 {
		return fmt.Errorf("encrypted layer has no %s* annotation: %w", encKeysPrefix, ErrNoDecryptionKey)
	}
	fit, hint := ks.fits()
	tryable := false
	for _, s := range schemes {
		tryable = tryable || fit[s]
	}
	if !tryable {
		if len(ks.keys) == 0 {
			return fmt.Errorf("layer is encrypted for %s recipients and no key was given: %w", strings.Join(schemes, ", "), ErrNoDecryptionKey)
		}
		return fmt.Errorf("layer is encrypted for %s recipients, none of the keys given fits that scheme%s: %w", strings.Join(schemes, ", "), hint, ErrNoDecryptionKey)
	}
	if _, _, err := ocicrypt.DecryptLayer(ks.dc, nil, desc, true); err != nil {
		return fmt.Errorf("%w (%s recipients): %s", ErrWrongKey, strings.Join(schemes, ", "), oneLine(err))
	}
	return nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// checkPGPIdentities checks that every identity names a key of the ring (by
// name or e-mail, as ocicrypt matches them), so that a typo fails at once.
func checkPGPIdentities(ring []byte, ids [][]byte) error {
	entities, err := openpgp.ReadKeyRing(bytes.NewReader(ring))
	if err != nil {
		return fmt.Errorf("pgp public keyring: %v: %w", err, ErrInvalidKey)
	}
	for _, id := range ids {
		found := false
		for _, e := range entities {
			for name := range e.Identities {
				if addr, err := mail.ParseAddress(name); err == nil && (addr.Name == string(id) || addr.Address == string(id)) {
					found = true
				}
			}
		}
		if !found {
			return fmt.Errorf("recipient \"pgp:%s\": no key for it in the OpenPGP public keyring: %w", id, ErrInvalidKey)
		}
	}
	return nil
}
