package oci_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/treegen"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

func inProcessRegistry(t testing.TB) string {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pullDests are the three writers of Pull, each with a fresh destination.
func pullDests(t *testing.T, host, repo string) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"oci":            "oci:" + filepath.Join(dir, "layout"),
		"docker-archive": "docker-archive:" + filepath.Join(dir, "image.tar"),
		"registry":       host + "/" + repo + ":v1",
	}
}

func identity(_ context.Context, img v1.Image) (v1.Image, error) { return img, nil }

// An index child of an unknown media type is copied, verified, by every
// writer; before, the oci: writer panicked on a nil reader.
func TestPullUnknownChild(t *testing.T) {
	ctx := context.Background()
	host := inProcessRegistry(t)
	unknown := []byte("bytes of a type nobody knows")
	for _, o := range []struct {
		name string
		opts oci.PullOptions
	}{
		{"keep", oci.PullOptions{URLs: oci.URLsKeep}},
		{"strip", oci.PullOptions{URLs: oci.URLsStrip}},
		{"platform", oci.PullOptions{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}},
		{"transform", oci.PullOptions{Transform: identity}},
	} {
		t.Run(o.name, func(t *testing.T) {
			st := treegen.NewMemStore()
			b := &treegen.Builder{Ctx: ctx, Store: st}
			root, err := treegen.UnknownChild(b, unknown)
			if err != nil {
				t.Fatal(err)
			}
			dests := pullDests(t, host, "unknown/"+o.name)
			opts := o.opts
			opts.Registry.Insecure = true
			for _, kind := range []string{"oci", "docker-archive", "registry"} {
				dest := dests[kind]
				if _, err := oci.Pull(ctx, st, root, dest, opts); err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
			}
			dgst := fmt.Sprintf("%x", sha256.Sum256(unknown))
			got, err := os.ReadFile(filepath.Join(strings.TrimPrefix(dests["oci"], "oci:"), "blobs", "sha256", dgst))
			if err != nil || string(got) != string(unknown) {
				t.Errorf("oci: the unknown child: %q, %v", got, err)
			}
			resp, err := http.Head("http://" + host + "/v2/unknown/" + o.name + "/blobs/sha256:" + dgst)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("registry: the unknown child: %v %v", resp, err)
			}
		})
	}
}

// A child of an unknown type whose bytes do not match is refused as an
// integrity failure, and the destination is left alone.
func TestPullUnknownChildCorrupted(t *testing.T) {
	ctx := context.Background()
	st := treegen.NewMemStore()
	b := &treegen.Builder{Ctx: ctx, Store: st}
	good := []byte("bytes of a type nobody knows")
	bad := []byte("BYTES of a type nobody knows")
	root, err := treegen.UnknownChild(b, good)
	if err != nil {
		t.Fatal(err)
	}
	// Point the child's CID at other bytes: overwrite the stored content.
	st.Replace(good, bad)
	host := inProcessRegistry(t)
	for kind, dest := range pullDests(t, host, "corrupt/x") {
		if kind == "docker-archive" {
			continue // a docker archive holds the image only
		}
		_, err := oci.Pull(ctx, st, root, dest, oci.PullOptions{Registry: registry.Options{Insecure: true}})
		if !errors.Is(err, manifests.ErrDigestMismatch) {
			t.Errorf("%s: %v, want a digest mismatch", kind, err)
		}
		if p, ok := strings.CutPrefix(dest, "oci:"); ok {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("oci: destination written: %v", err)
			}
		}
	}
}

// Hostile trees are refused by the reader, at once, for every writer.
func TestPullHostileTrees(t *testing.T) {
	ctx := context.Background()
	host := inProcessRegistry(t)
	for _, tc := range []struct {
		name  string
		build func(b *treegen.Builder) (cid.Cid, error)
		want  error
	}{
		{"repeated wide children", func(b *treegen.Builder) (cid.Cid, error) { return treegen.Repeated(b, 750, 6) }, manifests.ErrLimit},
		{"nested too deep", func(b *treegen.Builder) (cid.Cid, error) { return treegen.Nested(b, manifests.MaxDepth) }, manifests.ErrLimit},
		{"negative size", func(b *treegen.Builder) (cid.Cid, error) { return treegen.NegativeSize(b, true) }, manifests.ErrInvalidDescriptor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := treegen.NewMemStore()
			root, err := tc.build(&treegen.Builder{Ctx: ctx, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			for kind, dest := range pullDests(t, host, "hostile/x") {
				start := time.Now()
				_, err := oci.Pull(ctx, st, root, dest, oci.PullOptions{Registry: registry.Options{Insecure: true}})
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", kind, err, tc.want)
				}
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("%s: took %s", kind, took)
				}
			}
		})
	}
}
