package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestE2EGolden pins the bytes we write for a fixed image: the root
// descriptor, the index and a manifest, and so the root CID. Same input,
// same options, same JSON encoding ⇒ the same CIDs as nerdctl; a change here
// changes every user's CIDs and must be deliberate.
func TestE2EGolden(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	shared := rig.Layer(t, 1, 70<<10, true)
	var imgs []v1.Image
	for i, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		p := p
		imgs = append(imgs, rig.Image(t, rig.ImageSpec{Docker: true, Platform: &p, Layers: []v1.Layer{shared, rig.Layer(t, uint64(2+i), 300<<10, true)}}))
	}
	idx := rig.Index(t, true, imgs...)
	dir := filepath.Join(t.TempDir(), "golden")
	rig.WriteLayout(t, dir, idx, "golden")
	root := mustRun(t, r.env, "push", "oci:"+dir+":golden").lastLine()

	rootJSON := r.k.Run("cat", root)
	var top desc
	mustUnmarshal(t, rootJSON, &top)
	indexJSON := r.k.Run("cat", strings.TrimPrefix(top.URLs[0], "ipfs://"))
	var index struct{ Manifests []desc }
	mustUnmarshal(t, indexJSON, &index)
	manifestJSON := r.k.Run("cat", strings.TrimPrefix(index.Manifests[0].URLs[0], "ipfs://"))

	for name, got := range map[string]string{"root-cid.txt": root + "\n", "root.json": rootJSON, "index.json": indexJSON, "manifest-amd64.json": manifestJSON} {
		path := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestE2EGolden -update ./cmd/mirror to create it)", err)
		}
		if string(want) != got {
			t.Errorf("%s changed:\n got: %s\nwant: %s", name, got, want)
		}
	}
}

func mustUnmarshal(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}
