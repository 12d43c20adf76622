package oci_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/treegen"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// FuzzPull drives the format reader and every writer of Pull (oci: with
// urls kept or stripped, docker-archive:, a registry: go-containerregistry's
// in-process one) with generated trees, hostile shapes seeded: no panic, no
// unbounded work, a tree the reader refuses is written nowhere, and every
// blob of a layout written hashes to its name.
func FuzzPull(f *testing.F) {
	f.Add(byte(1), []byte{0x02, 0xee, 6})  // 750 wide children, 6 deep
	f.Add(byte(1), []byte{0x00, 0x02, 3})  // 3 wide, 3 deep: fine
	f.Add(byte(2), []byte{9})              // nested too deep
	f.Add(byte(3), []byte{1})              // negative size under an index
	f.Add(byte(4), []byte("opaque bytes")) // an index child of an unknown type
	f.Add(byte(12), []byte("opaque bytes"))
	f.Add(byte(0), []byte{})
	f.Add(byte(0), []byte{3, 1, 20, 1, 2, 30, 0, 4, 31, 1, 1, 31, 2, 0, 1, 31, 31, 3, 1, 3, 0xff, 31, 2, 1, 0xff, 31, 31})
	f.Add(byte(8), []byte{2, 0, 10, 2, 5, 20, 6, 4, 1, 9, 31, 0, 6, 31, 2, 31, 4, 1, 1, 0, 31, 0, 0, 31})
	host := inProcessRegistry(f)
	var run atomic.Int64
	f.Fuzz(func(t *testing.T, shape byte, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st := treegen.NewMemStore()
		root, err := treegen.Shape(&treegen.Builder{Ctx: ctx, Store: st}, shape, data)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, rerr := manifests.Resolve(ctx, st, root)
		urls := oci.URLsKeep
		if shape&8 != 0 {
			urls = oci.URLsStrip
		}
		dir := t.TempDir()
		layout := filepath.Join(dir, "layout")
		dests := []string{"oci:" + layout, "docker-archive:" + filepath.Join(dir, "image.tar"), fmt.Sprintf("%s/fuzz/r%d:v1", host, run.Add(1))}
		for _, dest := range dests {
			_, err := oci.Pull(ctx, st, root, dest, oci.PullOptions{URLs: urls, Registry: registry.Options{Insecure: true}})
			if rerr != nil && err == nil {
				t.Fatalf("%s: written, but the reader refuses the tree: %v", dest, rerr)
			}
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("took %s", took)
		}
		_ = filepath.WalkDir(filepath.Join(layout, "blobs", "sha256"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := digest.FromBytes(b).Encoded(); got != d.Name() {
				t.Fatalf("layout blob %s holds bytes hashing to %s", d.Name(), got)
			}
			return nil
		})
	})
}
