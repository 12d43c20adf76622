package rig

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// LayoutBlobs reads every blob of an OCI layout directory, by digest, and
// checks that each file hashes to its name.
func LayoutBlobs(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != e.Name() {
			t.Errorf("layout blob %s hashes to %s", e.Name(), got)
		}
		out["sha256:"+e.Name()] = b
	}
	return out
}

// LayoutValid has go-containerregistry (the library crane is built on, not
// our reader) open the OCI layout at dir and validate its structure at
// every level (validate.Index with validate.Fast): each index names
// documents that are in blobs/ with their digest, size and media type, each
// manifest's config is there and agrees with it, and every blob file hashes
// to its name (LayoutBlobs). containers/image (skopeo) does not read nested
// indexes; this does. (A full validate.Index would also decompress the
// layers, which go-containerregistry cannot do for zstd, uncompressed or
// encrypted layers, nor for attestation manifests.)
func LayoutValid(t testing.TB, dir string) {
	t.Helper()
	LayoutBlobs(t, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("layout %s: %v", dir, err)
	}
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Errorf("layout %s: go-containerregistry validate: %v", dir, err)
	}
}
