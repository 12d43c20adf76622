package convert

import (
	"bytes"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/manifests"
)

// TestVerified: convert reads source blobs through manifests' one
// verifying reader; every failure is a manifests.ErrDigestMismatch.
func TestVerified(t *testing.T) {
	blob := []byte("layer bytes")
	h, size, _ := v1.SHA256(bytes.NewReader(blob))
	good := v1.Descriptor{Digest: h, Size: size}
	vr, err := verified(bytes.NewReader(blob), good)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(vr); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("good blob: %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		desc v1.Descriptor
		data []byte
	}{
		"other content": {good, []byte("layer bytez")},
		"short":         {good, blob[:4]},
		"long":          {good, append(append([]byte{}, blob...), 'x')},
		"sha512":        {v1.Descriptor{Digest: v1.Hash{Algorithm: "sha512", Hex: h.Hex + h.Hex}, Size: size}, blob},
		"malformed":     {v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: "abc"}, Size: size}, blob},
	} {
		vr, err := verified(bytes.NewReader(tc.data), tc.desc)
		if err == nil {
			_, err = io.ReadAll(vr)
		}
		if !errors.Is(err, manifests.ErrDigestMismatch) {
			t.Errorf("%s: %v, want ErrDigestMismatch", name, err)
		}
	}
}
