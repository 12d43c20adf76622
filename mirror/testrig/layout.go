package testrig

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
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
