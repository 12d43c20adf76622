package convert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ipfs-mirror/mirror/manifests"
)

// testKeys are real RSA keys and an x509 certificate written as PEM files.
type testKeys struct {
	dir                 string
	priv, pub, cert     string // PKCS#8 private key, PKIX public key, self-signed cert
	priv2, pub2         string // another pair (the wrong key)
	encPriv             string // password-protected (legacy PEM encryption) copy of priv
	password            string
	notAKey             string
	pgpPub, pgpPubArmor string // OpenPGP public keyring (binary, armored) of alice@example.com
	pgpSec              string // OpenPGP secret keyring
}

var (
	keysOnce sync.Once
	keysDir  string
	keysErr  error
	sharedK  testKeys
)

func genKeys(t *testing.T) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		keysDir, keysErr = os.MkdirTemp("", "convert-keys-*")
		if keysErr != nil {
			return
		}
		sharedK, keysErr = writeKeys(keysDir)
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return sharedK
}

func TestMain(m *testing.M) {
	code := m.Run()
	if keysDir != "" {
		os.RemoveAll(keysDir)
	}
	os.Exit(code)
}

func writeKeys(dir string) (testKeys, error) {
	k := testKeys{dir: dir, password: "s3cr:et"}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			panic(err)
		}
		return p
	}
	pair := func(prefix string) (*rsa.PrivateKey, string, string, error) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, "", "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, "", "", err
		}
		pubDer, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, "", "", err
		}
		return key, write(prefix+"priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			write(prefix+"pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDer})), nil
	}
	key, priv, pub, err := pair("")
	if err != nil {
		return k, err
	}
	k.priv, k.pub = priv, pub
	if _, k.priv2, k.pub2, err = pair("other-"); err != nil {
		return k, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mirror test recipient"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	certDer, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return k, err
	}
	k.cert = write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDer}))
	//nolint:staticcheck // legacy PEM encryption is what ocicrypt reads for password-protected keys
	blk, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte(k.password), x509.PEMCipherAES256)
	if err != nil {
		return k, err
	}
	k.encPriv = write("enc-priv.pem", pem.EncodeToMemory(blk))
	k.notAKey = write("not-a-key.txt", []byte("hello, I am not a key\n"))

	ent, err := openpgp.NewEntity("Alice", "test", "alice@example.com", &packet.Config{RSABits: 2048})
	if err != nil {
		return k, err
	}
	var pubRing, secRing, armored bytes.Buffer
	if err := ent.Serialize(&pubRing); err != nil {
		return k, err
	}
	if err := ent.SerializePrivate(&secRing, nil); err != nil {
		return k, err
	}
	aw, err := armor.Encode(&armored, openpgp.PublicKeyType, nil)
	if err != nil {
		return k, err
	}
	aw.Write(pubRing.Bytes())
	aw.Close()
	k.pgpPub = write("pubring.gpg", pubRing.Bytes())
	k.pgpPubArmor = write("pubring.asc", armored.Bytes())
	k.pgpSec = write("secring.gpg", secRing.Bytes())
	return k, nil
}

func mustEncrypt(t *testing.T, img v1.Image, opts EncryptOptions) v1.Image {
	t.Helper()
	out, err := Encrypt(context.Background(), img, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Close(out) })
	return out
}

func mustDecrypt(t *testing.T, img v1.Image, keys ...string) v1.Image {
	t.Helper()
	out, err := Decrypt(context.Background(), img, DecryptOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Close(out) })
	return out
}

// sameLayers checks that got has exactly the layers of want: descriptors
// (media type, digest, size, annotations) and bytes.
func sameLayers(t *testing.T, want, got v1.Image) {
	t.Helper()
	wm, err := want.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	gm, err := got.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(wm.Layers) != len(gm.Layers) {
		t.Fatalf("%d layers, want %d", len(gm.Layers), len(wm.Layers))
	}
	wl, _ := want.Layers()
	gl, _ := got.Layers()
	for i := range wm.Layers {
		w, g := wm.Layers[i], gm.Layers[i]
		if w.MediaType != g.MediaType || w.Digest != g.Digest || w.Size != g.Size || !equalMaps(w.Annotations, g.Annotations) {
			t.Errorf("layer %d: got %s %s %d %v, want %s %s %d %v", i, g.MediaType, g.Digest, g.Size, g.Annotations, w.MediaType, w.Digest, w.Size, w.Annotations)
		}
		if !bytes.Equal(blobOf(t, wl[i]), blobOf(t, gl[i])) {
			t.Errorf("layer %d: bytes differ", i)
		}
	}
	wc, _ := want.RawConfigFile()
	gc, _ := got.RawConfigFile()
	if !bytes.Equal(wc, gc) {
		t.Errorf("config differs")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func checkEncrypted(t *testing.T, src, enc v1.Image, want []bool, schemes ...string) {
	t.Helper()
	sm, _ := src.Manifest()
	em, err := enc.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if em.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", em.MediaType)
	}
	// validate.Fast: encrypted layers do not decompress.
	if err := validate.Image(enc, validate.Fast); err != nil {
		t.Fatal(err)
	}
	sc, _ := src.RawConfigFile()
	ec, _ := enc.RawConfigFile()
	if !bytes.Equal(sc, ec) {
		t.Error("config changed by encryption")
	}
	layers, _ := enc.Layers()
	for i, d := range em.Layers {
		isEnc := strings.HasSuffix(string(d.MediaType), "+encrypted")
		if isEnc != want[i] {
			t.Errorf("layer %d: %s, want encrypted=%v", i, d.MediaType, want[i])
			continue
		}
		if !isEnc {
			if d.Digest != sm.Layers[i].Digest {
				t.Errorf("layer %d changed though not selected", i)
			}
			continue
		}
		if string(d.MediaType) != string(ociLayerType(sm.Layers[i].MediaType))+"+encrypted" {
			t.Errorf("layer %d: media type %s from %s", i, d.MediaType, sm.Layers[i].MediaType)
		}
		for _, s := range schemes {
			if d.Annotations["org.opencontainers.image.enc.keys."+s] == "" {
				t.Errorf("layer %d: no %s wrapped key: %v", i, s, d.Annotations)
			}
		}
		if d.Annotations[AnnotationEncPubOpts] == "" || pubOptsCipher(d.Annotations) != "AES_256_CTR_HMAC_SHA256" {
			t.Errorf("layer %d: pubopts %q", i, d.Annotations[AnnotationEncPubOpts])
		}
		for k, v := range sm.Layers[i].Annotations {
			if d.Annotations[k] != v {
				t.Errorf("layer %d: source annotation %s lost", i, k)
			}
		}
		blob := blobOf(t, layers[i])
		if hashOf(blob) != d.Digest || int64(len(blob)) != d.Size {
			t.Errorf("layer %d: descriptor does not match blob", i)
		}
		if bytes.Contains(blob, plainOf(t, mustLayer(t, src, i))[:512]) {
			t.Errorf("layer %d: plaintext visible in the encrypted blob", i)
		}
		if _, err := layers[i].Uncompressed(); !errors.Is(err, ErrEncryptedLayer) {
			t.Errorf("layer %d: Uncompressed() = %v", i, err)
		}
	}
}

func mustLayer(t *testing.T, img v1.Image, i int) v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls[i]
}

func TestEncryptDecryptJWE(t *testing.T) {
	k := genKeys(t)
	src := threeLayerImage(t)
	tmp := t.TempDir()
	enc, err := Encrypt(context.Background(), src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	checkEncrypted(t, src, enc, []bool{true, true, true}, "jwe")
	dec := mustDecrypt(t, enc, k.priv)
	sameLayers(t, src, dec)
	if err := validate.Image(dec, validate.Fast); err != nil {
		t.Fatal(err)
	}
	if d := extractTree(t, src).diff(extractTree(t, dec)); d != "" {
		t.Errorf("trees differ:\n%s", d)
	}
	// The decrypted image streams from the encrypted one: close it last.
	Close(dec)
	if err := Close(enc); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, tmp); len(names) != 0 {
		t.Errorf("temp files left after Close: %v", names)
	}
}

func TestEncryptDecryptPKCS7AndMultipleRecipients(t *testing.T) {
	k := genKeys(t)
	src := threeLayerImage(t)
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"pkcs7:" + k.cert, "jwe:" + k.pub2}})
	checkEncrypted(t, src, enc, []bool{true, true, true}, "pkcs7", "jwe")
	sameLayers(t, src, mustDecrypt(t, enc, k.priv, k.cert)) // pkcs7 recipient
	sameLayers(t, src, mustDecrypt(t, enc, k.priv2))        // jwe recipient

	// pkcs7 alone, and the private key without its certificate.
	enc7 := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"pkcs7:" + k.cert}})
	_, err := Decrypt(context.Background(), enc7, DecryptOptions{Keys: []string{k.priv}})
	if !errors.Is(err, ErrNoDecryptionKey) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("pkcs7 without certificate: %v", err)
	}
}

func TestEncryptDecryptPGP(t *testing.T) {
	k := genKeys(t)
	src := threeLayerImage(t)
	for _, ring := range []string{k.pgpPub, k.pgpPubArmor} {
		enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"pgp:alice@example.com"}, PGPPubRing: ring, Layers: []int{0}})
		checkEncrypted(t, src, enc, []bool{true, false, false}, "pgp")
		sameLayers(t, src, mustDecrypt(t, enc, k.pgpSec))
	}
	_, err := Encrypt(context.Background(), src, EncryptOptions{Recipients: []string{"pgp:bob@example.com"}, PGPPubRing: k.pgpPub})
	if err == nil {
		t.Fatal("unknown pgp identity accepted")
	}
	// A jwe-encrypted image and only an OpenPGP key: nothing to try.
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	if _, err := Decrypt(context.Background(), enc, DecryptOptions{Keys: []string{k.pgpSec}}); !errors.Is(err, ErrNoDecryptionKey) {
		t.Errorf("jwe layers, pgp key: %v", err)
	}
}

func TestEncryptLayerSelection(t *testing.T) {
	k := genKeys(t)
	src := threeLayerImage(t)
	for _, tc := range []struct {
		layers []int
		want   []bool
	}{
		{[]int{-1}, []bool{false, false, true}},
		{[]int{0}, []bool{true, false, false}},
		{[]int{0, -2}, []bool{true, true, false}},
		{[]int{-3, 2}, []bool{true, false, true}},
	} {
		enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, Layers: tc.layers})
		checkEncrypted(t, src, enc, tc.want, "jwe")
		sameLayers(t, src, mustDecrypt(t, enc, k.priv))
	}
	for _, sel := range [][]int{{3}, {-4}} {
		_, err := Encrypt(context.Background(), src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, Layers: sel})
		if !errors.Is(err, ErrNothingToEncrypt) {
			t.Errorf("selection %v: %v", sel, err)
		}
	}
}

func TestEncryptDockerSource(t *testing.T) {
	k := genKeys(t)
	src := buildImage(t, true,
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(9, "d", 4, 50<<10)), compGzip, types.DockerLayer)},
	)
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	em, _ := enc.Manifest()
	if em.Layers[0].MediaType != MediaTypeLayerGzipEnc || em.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s %s", em.Layers[0].MediaType, em.Config.MediaType)
	}
	dec := mustDecrypt(t, enc, k.priv)
	dm, _ := dec.Manifest()
	sm, _ := src.Manifest()
	if dm.Layers[0].MediaType != types.OCILayer || dm.Layers[0].Digest != sm.Layers[0].Digest {
		t.Errorf("decrypted %s %s", dm.Layers[0].MediaType, dm.Layers[0].Digest)
	}
}

func TestDecryptErrors(t *testing.T) {
	k := genKeys(t)
	src := threeLayerImage(t)
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, Layers: []int{-1}})

	_, err := Decrypt(context.Background(), enc, DecryptOptions{})
	if !errors.Is(err, ErrNoDecryptionKey) {
		t.Errorf("no key: %v", err)
	}
	t.Log(err)
	_, err = Decrypt(context.Background(), enc, DecryptOptions{Keys: []string{k.priv2}})
	if !errors.Is(err, ErrWrongKey) {
		t.Errorf("wrong key: %v", err)
	}
	t.Log(err)
	// A wrong key beside the right one is fine.
	sameLayers(t, src, mustDecrypt(t, enc, k.priv2, k.priv))

	// Nothing encrypted: the image itself comes back.
	if out, err := Decrypt(context.Background(), src, DecryptOptions{}); err != nil || out != src {
		t.Errorf("plain image: %v", err)
	}

	// Password-protected key.
	for _, key := range []string{k.encPriv + ":" + k.password, k.encPriv + ":pass=" + k.password} {
		sameLayers(t, src, mustDecrypt(t, enc, key))
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(k.password+"\n"), 0o600)
	sameLayers(t, src, mustDecrypt(t, enc, k.encPriv+":file="+pwFile))
	for _, key := range []string{k.encPriv, k.encPriv + ":nope"} {
		if _, err := Decrypt(context.Background(), enc, DecryptOptions{Keys: []string{key}}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v", filepath.Base(key), err)
		}
	}
}

func TestDecryptTamperedLayer(t *testing.T) {
	k := genKeys(t)
	src := buildImage(t, false, testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(10, "t", 3, 20<<10)), compGzip, types.OCILayer)})
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	em, _ := enc.Manifest()
	blob := bytes.Clone(blobOf(t, mustLayer(t, enc, 0)))
	blob[len(blob)/2] ^= 1
	// A consistent but tampered image (the digest is recomputed): only the
	// HMAC can tell.
	bl := &blobLayer{blob: blob, mt: em.Layers[0].MediaType, digest: hashOf(blob), diffID: mustDiffID(t, src)}
	tampered := buildImageRaw(t, false, testLayerSpec{layer: bl, annotations: em.Layers[0].Annotations})
	dec := mustDecrypt(t, tampered, k.priv) // only the wrapped key is checked here
	_, err := dec.Layers()
	if err == nil || errors.Is(err, manifests.ErrDigestMismatch) {
		t.Fatalf("tampered layer: %v, want the HMAC error", err)
	}
	t.Log(err)
}

func mustDiffID(t *testing.T, img v1.Image) v1.Hash {
	h, err := mustLayer(t, img, 0).DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParseRecipientAndKey(t *testing.T) {
	k := genKeys(t)
	missing := filepath.Join(k.dir, "missing.pem")
	for _, tc := range []struct {
		in      string
		is      error
		message string
	}{
		{"foo:bar", ErrUnsupportedRecipient, `unsupported recipient scheme "foo" (want jwe:, pkcs7: or pgp:)`},
		{"pub.pem", ErrUnsupportedRecipient, "no scheme"},
		{"jwe:" + missing, fs.ErrNotExist, "missing.pem"},
		{"jwe:" + k.notAKey, ErrInvalidKey, "not a public key"},
		{"jwe:" + k.priv, ErrInvalidKey, "not a public key"},
		{"pkcs7:" + k.pub, ErrInvalidKey, "not an x509 certificate"},
		{"pgp:", nil, "no OpenPGP identity"},
	} {
		_, err := ParseRecipient(tc.in)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("ParseRecipient(%q) = %v", tc.in, err)
		}
	}
	for _, in := range []string{"jwe:" + k.pub, "pkcs7:" + k.cert, "pgp:alice@example.com"} {
		if _, err := ParseRecipient(in); err != nil {
			t.Errorf("ParseRecipient(%q): %v", in, err)
		}
	}
	for _, tc := range []struct {
		in string
		is error
	}{
		{missing, fs.ErrNotExist},
		{k.pub, ErrInvalidKey},
		{k.notAKey, ErrInvalidKey},
		{k.encPriv, ErrInvalidKey},
	} {
		if _, err := ParseKey(tc.in); !errors.Is(err, tc.is) {
			t.Errorf("ParseKey(%s) = %v", filepath.Base(tc.in), err)
		}
	}
	for in, kind := range map[string]KeyKind{k.priv: KeyPrivate, k.cert: KeyCertificate, k.pgpSec: KeyPGP, k.encPriv + ":" + k.password: KeyPrivate} {
		key, err := ParseKey(in)
		if err != nil || key.Kind != kind {
			t.Errorf("ParseKey(%s) = %v, %v", filepath.Base(in), key.Kind, err)
		}
	}
	// Encrypt reports recipient problems before doing anything.
	_, err := Encrypt(context.Background(), threeLayerImage(t), EncryptOptions{Recipients: []string{"foo:bar"}})
	if !errors.Is(err, ErrUnsupportedRecipient) {
		t.Errorf("Encrypt with foo: %v", err)
	}
	if _, err := Encrypt(context.Background(), threeLayerImage(t), EncryptOptions{}); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("Encrypt without recipients: %v", err)
	}
	if _, err := Decrypt(context.Background(), threeLayerImage(t), DecryptOptions{Keys: []string{k.pub}}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Decrypt with a public key: %v", err)
	}
}

func TestEncryptUnsupportedMediaType(t *testing.T) {
	k := genKeys(t)
	img := buildImageRaw(t, false,
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(11, "u", 2, 100)), compGzip, "application/vnd.oci.image.layer.v1.tar+foo")},
		testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(12, "v", 2, 100)), compGzip, types.OCILayer)},
	)
	_, err := Encrypt(context.Background(), img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	if !errors.Is(err, ErrUnsupportedMediaType) || !strings.Contains(err.Error(), "tar+foo") {
		t.Errorf("got %v", err)
	}
	// Not selected: passed through untouched.
	enc := mustEncrypt(t, img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, Layers: []int{1}})
	checkEncrypted(t, img, enc, []bool{false, true}, "jwe")
}

// pubOptsCipher reads the cipher name from the public options annotation.
func pubOptsCipher(ann map[string]string) string {
	b, err := base64.StdEncoding.DecodeString(ann[AnnotationEncPubOpts])
	if err != nil {
		return ""
	}
	var po struct {
		Cipher string `json:"cipher"`
	}
	if json.Unmarshal(b, &po) != nil {
		return ""
	}
	return po.Cipher
}

func readAllErr(r interface{ Read([]byte) (int, error) }) (int64, error) {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err != nil {
			if err.Error() == "EOF" {
				return n, nil
			}
			return n, err
		}
	}
}

var _ = slices.Contains[[]int]
