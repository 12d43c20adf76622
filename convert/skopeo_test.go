package convert

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// skopeo returns the skopeo binary. It skips the test when skopeo is missing,
// except in CI (CI=true) where a missing tool is a failure.
func skopeo(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("skopeo is required in CI: %v", err)
		}
		t.Skipf("skopeo not installed: %v", err)
	}
	return p
}

func runSkopeo(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(skopeo(t), append([]string{"--insecure-policy"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeOCI writes img as an OCI layout with the tag "latest".
func writeOCI(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}
	rig.SkopeoReads(t, "oci:"+dir+":latest")
	return dir
}

// Converted indexes (eStargz, encrypted, then decrypted again) written as
// OCI layouts are read by skopeo, every platform and blob.
func TestSkopeoReadsConvertedIndex(t *testing.T) {
	skopeo(t)
	k := genKeys(t)
	src, _ := buildIndex(t, false)
	tmp := t.TempDir()
	write := func(t *testing.T, idx v1.ImageIndex) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "oci")
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
			t.Fatal(err)
		}
		rig.SkopeoReads(t, "oci:"+dir+":latest")
		rig.LayoutValid(t, dir)
		return dir
	}
	conv := func(t *testing.T, idx v1.ImageIndex, f func(context.Context, v1.Image) (v1.Image, error)) v1.ImageIndex {
		t.Helper()
		out, err := ConvertIndex(context.Background(), idx, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Close(out) })
		return out
	}
	t.Run("estargz", func(t *testing.T) {
		write(t, conv(t, src, func(ctx context.Context, img v1.Image) (v1.Image, error) {
			return ToEstargz(ctx, img, EstargzOptions{TempDir: tmp})
		}))
	})
	t.Run("encrypted and decrypted", func(t *testing.T) {
		enc := conv(t, src, func(ctx context.Context, img v1.Image) (v1.Image, error) {
			return Encrypt(ctx, img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}, TempDir: tmp})
		})
		write(t, enc)
		write(t, conv(t, enc, func(ctx context.Context, img v1.Image) (v1.Image, error) {
			return Decrypt(ctx, img, DecryptOptions{Keys: []string{k.priv}, TempDir: tmp})
		}))
	})
}

// readOCI reads the only image of an OCI layout.
func readOCI(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%d manifests in %s", len(im.Manifests), dir)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sameContent checks that got has the layers of want: byte-identical where
// the media type is the same, the same uncompressed content (diff ID)
// otherwise (skopeo compresses uncompressed layers when it writes).
func sameContent(t *testing.T, want, got v1.Image) {
	t.Helper()
	wl, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(wl) != len(gl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range wl {
		wmt, gmt := mtOf(t, wl[i]), mtOf(t, gl[i])
		if strings.HasSuffix(string(gmt), "+encrypted") {
			t.Errorf("layer %d still encrypted: %s", i, gmt)
			continue
		}
		if ociLayerType(wmt) == gmt {
			if !bytes.Equal(blobOf(t, wl[i]), blobOf(t, gl[i])) {
				t.Errorf("layer %d (%s): bytes differ", i, gmt)
			}
			continue
		}
		t.Logf("layer %d: %s became %s", i, wmt, gmt)
		if hashOf(plainOf(t, wl[i])) != hashOf(plainOf(t, gl[i])) {
			t.Errorf("layer %d: uncompressed content differs", i)
		}
	}
	if d := extractTree(t, want).diff(extractTree(t, got)); d != "" {
		t.Errorf("trees differ:\n%s", d)
	}
}

// Our encryption, skopeo's decryption.
func TestSkopeoDecryptsOurEncryption(t *testing.T) {
	skopeo(t)
	k := genKeys(t)
	src := threeLayerImage(t)
	for _, tc := range []struct {
		name      string
		recipient string
		keys      []string
	}{
		{"jwe", "jwe:" + k.pub, []string{k.priv}},
		{"pkcs7", "pkcs7:" + k.cert, []string{k.priv, k.cert}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{tc.recipient}})
			encDir := writeOCI(t, enc)
			decDir := filepath.Join(t.TempDir(), "dec")
			args := []string{"copy"}
			for _, k := range tc.keys {
				args = append(args, "--decryption-key", k)
			}
			runSkopeo(t, append(args, "oci:"+encDir+":latest", "oci:"+decDir+":latest")...)
			dec := readOCI(t, decDir)
			sameContent(t, src, dec)
			sc, _ := src.ConfigFile()
			dc, err := dec.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			for i := range sc.RootFS.DiffIDs {
				if sc.RootFS.DiffIDs[i] != dc.RootFS.DiffIDs[i] {
					t.Errorf("diff_id %d changed", i)
				}
			}
		})
	}
}

// skopeo's encryption, our decryption.
func TestWeDecryptSkopeoEncryption(t *testing.T) {
	skopeo(t)
	k := genKeys(t)
	src := threeLayerImage(t)
	srcDir := writeOCI(t, src)
	for _, tc := range []struct {
		name      string
		recipient string
		keys      []string
	}{
		{"jwe", "jwe:" + k.pub, []string{k.priv}},
		{"pkcs7", "pkcs7:" + k.cert, []string{k.priv, k.cert}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			encDir := filepath.Join(t.TempDir(), "enc")
			runSkopeo(t, "copy", "--encryption-key", tc.recipient, "oci:"+srcDir+":latest", "oci:"+encDir+":latest")
			enc := readOCI(t, encDir)
			em, err := enc.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range em.Layers {
				if !strings.HasSuffix(string(l.MediaType), "+encrypted") || l.Annotations["org.opencontainers.image.enc.keys."+tc.name] == "" || l.Annotations[AnnotationEncPubOpts] == "" {
					t.Errorf("skopeo layer %d: %s %v", i, l.MediaType, l.Annotations)
				}
			}
			// Wrong key first: the clear error.
			if _, err := Decrypt(context.Background(), enc, DecryptOptions{Keys: []string{k.priv2}}); err == nil {
				t.Error("wrong key accepted")
			}
			dec := mustDecrypt(t, enc, tc.keys...)
			sameContent(t, src, dec)
			// And the decrypted image is a valid image for a writer.
			writeOCI(t, dec)
		})
	}
}

// An image we encrypt and write survives a skopeo copy (re-encoding the
// manifest) and still decrypts with our keys: the annotations are standard.
func TestSkopeoCopiesOurEncryptedImage(t *testing.T) {
	skopeo(t)
	k := genKeys(t)
	src := buildImage(t, false, testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(13, "s", 3, 10<<10)), compGzip, types.OCILayer)})
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	encDir := writeOCI(t, enc)
	copyDir := filepath.Join(t.TempDir(), "copy")
	runSkopeo(t, "copy", "oci:"+encDir+":latest", "oci:"+copyDir+":latest")
	sameLayers(t, src, mustDecrypt(t, readOCI(t, copyDir), k.priv))
}
