package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/treegen"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// Hand-crafted trees added to a real kubo, each through the binary with its
// documented exit code and message (issue 13: hostile content).
func TestE2EHostileTrees(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	st, err := kubo.New(r.k.APIAddr, kubo.Options{Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := &treegen.Builder{Ctx: context.Background(), Store: st}
	build := func(root cid.Cid, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return root.String()
	}
	for _, tc := range []struct {
		name string
		root string
		code int
		msg  []string
	}{
		{"negative size", build(treegen.NegativeSize(b, true)), ExitIntegrity, []string{"invalid descriptor", "negative size -1"}},
		{"repeated wide children", build(treegen.Repeated(b, 750, 6)), ExitIPFS, []string{"over the format reader's limits", "more than 10000 descriptors"}},
		{"nested too deep", build(treegen.Nested(b, manifests.MaxDepth)), ExitIPFS, []string{"over the format reader's limits", "nested more than 8 deep"}},
		{"over the manifest limit", build(func() (cid.Cid, error) {
			d, err := b.Image(nil, nil)
			if err != nil {
				return cid.Undef, err
			}
			d.Size = manifests.MaxManifestSize + 1
			return b.Root(d)
		}()), ExitIPFS, []string{"over the format reader's limits", "manifest limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"pull", tc.root, "oci:" + filepath.Join(t.TempDir(), "out")},
				{"pull", tc.root, "docker-archive:" + filepath.Join(t.TempDir(), "out.tar")},
				{"pull", tc.root, r.reg.Host + "/hostile/x:v1"},
				{"inspect", tc.root},
				{"pin", tc.root},
			} {
				start := time.Now()
				res := mirrorRun(t, r.env, args...)
				took := time.Since(start)
				if res.code != tc.code {
					t.Errorf("%s: exit %d, want %d: %s", args[0], res.code, tc.code, res.stderr)
				}
				for _, m := range tc.msg {
					if !strings.Contains(res.stderr, m) {
						t.Errorf("%s: stderr does not say %q: %s", args[0], m, res.stderr)
					}
				}
				if strings.Contains(res.stderr, "goroutine ") || strings.Contains(res.stderr, "panic") {
					t.Errorf("%s: a stack trace: %s", args[0], res.stderr)
				}
				if took > 30*time.Second {
					t.Errorf("%s took %s", args[0], took)
				}
				if args[0] == "pull" {
					if p, ok := strings.CutPrefix(args[2], "oci:"); ok {
						if _, err := os.Stat(p); err == nil {
							t.Errorf("oci: destination written")
						}
					}
				}
			}
		})
	}

	t.Run("unknown media type child", func(t *testing.T) {
		unknown := []byte("an artifact of a type nobody knows")
		root := build(treegen.UnknownChild(b, unknown))
		dgst := fmt.Sprintf("%x", sha256.Sum256(unknown))
		for _, urls := range []string{"keep", "strip"} {
			dir := filepath.Join(t.TempDir(), "layout")
			res := mustRun(t, r.env, "pull", "--urls", urls, root, "oci:"+dir+":v1")
			if strings.Contains(res.stderr, "panic") {
				t.Fatalf("%s", res.stderr)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", dgst)); err != nil || string(got) != string(unknown) {
				t.Errorf("urls %s: the unknown child in the layout: %q %v", urls, got, err)
			}
			if urls == "strip" {
				// skopeo reads the layout and copies the image out of it.
				out := filepath.Join(t.TempDir(), "dir")
				skopeo(t, "copy", "--override-os", "linux", "--override-arch", "amd64", "oci:"+dir+":v1", "dir:"+out)
				if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
					t.Errorf("skopeo copy: %v", err)
				}
			}
		}
		mustRun(t, r.env, "pull", root, "docker-archive:"+filepath.Join(t.TempDir(), "out.tar"))
		res := mirrorRun(t, r.env, "pull", root, r.reg.Host+"/unknown/child:v1")
		switch {
		case res.code == 0:
			skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+r.reg.Host+"/unknown/child:v1")
			skopeo(t, "copy", "--src-tls-verify=false", "--override-os", "linux", "--override-arch", "amd64", "docker://"+r.reg.Host+"/unknown/child:v1", "dir:"+filepath.Join(t.TempDir(), "reg"))
		case strings.Contains(res.stderr, "panic"):
			t.Fatalf("registry: %s", res.stderr)
		default:
			t.Logf("registry refuses it: exit %d: %s", res.code, res.stderr)
		}
		// The child's bytes corrupted: an integrity failure, nothing written.
		other := []byte("AN ARTIFACT of a type nobody knows")
		bad, err := b.Blob(other, treegen.UnknownType)
		if err != nil {
			t.Fatal(err)
		}
		img, err := b.Image([][]byte{[]byte("the image's layer")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		img.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
		good, _ := b.Blob(unknown, treegen.UnknownType)
		good.URLs = bad.URLs
		idx, err := b.Index([]ocispec.Descriptor{img, good})
		if err != nil {
			t.Fatal(err)
		}
		badRoot := build(b.Root(idx))
		dir := filepath.Join(t.TempDir(), "bad")
		res = mirrorRun(t, r.env, "pull", badRoot, "oci:"+dir)
		if res.code != ExitIntegrity || !strings.Contains(res.stderr, "digest mismatch") {
			t.Errorf("corrupted unknown child: exit %d: %s", res.code, res.stderr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("corrupted unknown child: destination written")
		}
	})
	_ = rig.InCI
}
