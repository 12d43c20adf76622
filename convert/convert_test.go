package convert

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ipfs-mirror/mirror/convert/modes"
)

func TestForMode(t *testing.T) {
	k := genKeys(t)
	src := threeLayerImage(t)
	opts := Options{Encrypt: EncryptOptions{Recipients: []string{"jwe:" + k.pub}}, Estargz: EstargzOptions{ChunkSize: 1 << 20}}

	plain, err := ForMode("plain", opts)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := plain(context.Background(), src); err != nil || out != src {
		t.Errorf("plain: %v", err)
	}

	esgz, err := ForMode("estargz", opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := esgz(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(out)
	m, err := out.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].Annotations[AnnotationTOCDigest] == "" {
		t.Error("estargz mode did not convert")
	}

	enc, err := ForMode("encrypted", opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err = enc(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(out)
	checkEncrypted(t, src, out, []bool{true, true, true}, "jwe")

	for _, mode := range []modes.Mode{"estargz+encrypted", "encrypted,estargz", "encrypted+estargz"} {
		if _, err := ForMode(mode, opts); !errors.Is(err, ErrExclusiveModes) {
			t.Errorf("%s: %v", mode, err)
		}
	}
	for _, mode := range []modes.Mode{"", "zstd", "plain+estargz", "ESTARGZ"} {
		if _, err := ForMode(mode, opts); !errors.Is(err, ErrUnknownMode) {
			t.Errorf("%q: %v", mode, err)
		}
	}
	if _, err := ForMode("encrypted", Options{}); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("encrypted without recipients: %v", err)
	}
	if _, err := ForMode("encrypted", Options{Encrypt: EncryptOptions{Recipients: []string{"foo:x"}}}); !errors.Is(err, ErrUnsupportedRecipient) {
		t.Errorf("encrypted with foo: %v", err)
	}
	if _, err := ForMode("estargz", Options{Estargz: EstargzOptions{CompressionLevel: 42}}); err == nil {
		t.Error("bad estargz options accepted")
	}
}

// buildIndex makes a two-platform index plus an attestation-like entry that
// refers to the first image, in the Docker or OCI flavour.
func buildIndex(t *testing.T, docker bool) (v1.ImageIndex, []v1.Image) {
	t.Helper()
	amd := withPlatform(t, threeLayerImage(t), "amd64", "")
	arm := withPlatform(t, buildImage(t, docker, testLayerSpec{layer: newBlobLayer(t, makeTar(t, randomFiles(20, "arm", 4, 30<<10)), compGzip, types.OCILayer)}), "arm64", "v8")
	amdDigest, _ := amd.Digest()
	var base v1.ImageIndex = empty.Index
	if docker {
		base = mutate.IndexMediaType(base, types.DockerManifestList)
	}
	idx := mutate.AppendManifests(base,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}, Annotations: map[string]string{"org.example/p": "amd"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	if !docker {
		// An in-toto attestation manifest (its layer is not a filesystem layer).
		att := buildImageRaw(t, false, testLayerSpec{layer: &blobLayer{blob: []byte(`{"_type":"x"}`), mt: "application/vnd.in-toto+json", digest: hashOf([]byte(`{"_type":"x"}`)), diffID: hashOf([]byte(`{"_type":"x"}`))}})
		att = withPlatform(t, att, "unknown", "")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", annotationRefDigest: amdDigest.String()},
		}})
	}
	return idx, []v1.Image{amd, arm}
}

func TestConvertIndex(t *testing.T) {
	for _, docker := range []bool{false, true} {
		t.Run(map[bool]string{false: "oci", true: "docker"}[docker], func(t *testing.T) {
			src, _ := buildIndex(t, docker)
			tmp := t.TempDir()
			out, err := ConvertIndex(context.Background(), src, func(ctx context.Context, img v1.Image) (v1.Image, error) {
				return ToEstargz(ctx, img, EstargzOptions{TempDir: tmp})
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(out, validate.Fast); err != nil {
				t.Fatal(err)
			}
			sm, _ := src.IndexManifest()
			om, err := out.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if om.MediaType != types.OCIImageIndex {
				t.Errorf("index media type %s", om.MediaType)
			}
			if len(om.Manifests) != len(sm.Manifests) {
				t.Fatalf("%d manifests, want %d", len(om.Manifests), len(sm.Manifests))
			}
			for i, d := range om.Manifests {
				s := sm.Manifests[i]
				if d.Platform.String() != s.Platform.String() {
					t.Errorf("entry %d: platform %s, want %s", i, d.Platform, s.Platform)
				}
				if d.MediaType != types.OCIManifestSchema1 || d.Digest == s.Digest {
					t.Errorf("entry %d not converted: %s %s", i, d.MediaType, d.Digest)
				}
				for k, v := range s.Annotations {
					if k != annotationRefDigest && d.Annotations[k] != v {
						t.Errorf("entry %d: annotation %s lost", i, k)
					}
				}
				img, err := out.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
					if m.Layers[0].MediaType != "application/vnd.in-toto+json" {
						t.Errorf("attestation layer changed: %s", m.Layers[0].MediaType)
					}
					if d.Annotations[annotationRefDigest] != om.Manifests[0].Digest.String() {
						t.Errorf("attestation still refers to %s", d.Annotations[annotationRefDigest])
					}
					continue
				}
				if err := validate.Image(img); err != nil {
					t.Errorf("entry %d: %v", i, err)
				}
				for _, l := range m.Layers {
					if l.Annotations[AnnotationTOCDigest] == "" {
						t.Errorf("entry %d: layer not eStargz", i)
					}
				}
			}
			if err := Close(out); err != nil {
				t.Fatal(err)
			}
			if names := dirEntries(t, tmp); len(names) != 0 {
				t.Errorf("temp files left after Close: %v", names)
			}
			if _, err := out.IndexManifest(); !errors.Is(err, ErrClosed) {
				t.Errorf("after Close: %v", err)
			}
		})
	}
}

func TestConvertIndexErrorNamesPlatform(t *testing.T) {
	idx, _ := buildIndex(t, false)
	out, err := ConvertIndex(context.Background(), idx, func(ctx context.Context, img v1.Image) (v1.Image, error) {
		return nil, errors.New("boom")
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = out.Digest()
	if err == nil || !strings.Contains(err.Error(), "linux/amd64") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("got %v", err)
	}
}

// go-containerregistry's random images (gzip layers of random files) convert
// and validate, as do nested indexes.
func TestRandomImagesAndNestedIndex(t *testing.T) {
	ri, err := random.Index(4096, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	nested := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: ri, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex}})
	k := genKeys(t)
	for name, f := range map[string]func(context.Context, v1.Image) (v1.Image, error){
		"estargz": func(ctx context.Context, img v1.Image) (v1.Image, error) {
			return ToEstargz(ctx, img, EstargzOptions{})
		},
		"encrypt": func(ctx context.Context, img v1.Image) (v1.Image, error) {
			return Encrypt(ctx, img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := ConvertIndex(context.Background(), nested, f)
			if err != nil {
				t.Fatal(err)
			}
			defer Close(out)
			if err := validate.Index(out, validate.Fast); err != nil {
				t.Fatal(err)
			}
			om, _ := out.IndexManifest()
			sub, err := out.ImageIndex(om.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			sm, _ := sub.IndexManifest()
			for _, d := range sm.Manifests {
				img, err := sub.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if name == "estargz" {
					if err := validate.Image(img); err != nil {
						t.Fatal(err)
					}
					continue
				}
				dec, err := Decrypt(context.Background(), img, DecryptOptions{Keys: []string{k.priv}})
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(dec); err != nil {
					t.Fatal(err)
				}
				Close(dec)
			}
		})
	}
}

func withPlatform(t *testing.T, img v1.Image, arch, variant string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", arch, variant
	if arch == "unknown" {
		cf.OS = "unknown"
	}
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Encrypting an index with a buildx-style attestation manifest: the images
// are encrypted, the attestation (no filesystem layer) passes through and
// points at the encrypted image.
func TestConvertIndexEncryptWithAttestation(t *testing.T) {
	k := genKeys(t)
	src, _ := buildIndex(t, false)
	out, err := ConvertIndex(context.Background(), src, func(ctx context.Context, img v1.Image) (v1.Image, error) {
		return Encrypt(ctx, img, EncryptOptions{Recipients: []string{"jwe:" + k.pub}})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer Close(out)
	sm, _ := src.IndexManifest()
	om, err := out.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		img, err := out.Image(om.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := img.Manifest()
		for _, l := range m.Layers {
			if !strings.HasSuffix(string(l.MediaType), "+encrypted") {
				t.Errorf("entry %d: layer %s not encrypted", i, l.MediaType)
			}
		}
	}
	att := om.Manifests[2]
	if att.Digest != sm.Manifests[2].Digest {
		t.Error("attestation manifest changed")
	}
	if att.Annotations[annotationRefDigest] != om.Manifests[0].Digest.String() {
		t.Errorf("attestation refers to %s", att.Annotations[annotationRefDigest])
	}
}
