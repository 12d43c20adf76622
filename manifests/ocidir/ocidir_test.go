package ocidir_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
)

func carStore(t *testing.T) *car.Store {
	t.Helper()
	s, err := car.New(filepath.Join(t.TempDir(), "x.car"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// plain hides every method but ipfs.Store's.
type plain struct{ ipfs.Store }

func TestBuildAndRead(t *testing.T) {
	ctx := context.Background()
	s := carStore(t)
	var blobs []ocidir.Blob
	files := map[digest.Digest][]byte{}
	for i, n := range []int{10, 300_000, 5000} {
		b := bytes.Repeat([]byte{byte(i + 1)}, n)
		c, err := s.Add(ctx, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(b)
		files[d] = b
		blobs = append(blobs, ocidir.Blob{Digest: d, Size: int64(n), CID: c})
	}
	extra, err := ocidir.PutFile(ctx, s, []byte("extra file"))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := ocidir.Build(ctx, s, ocidir.Layout{Index: []byte(`{"inner":1}`), Blobs: blobs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	l := ocidir.Layout{Index: []byte(`{"schemaVersion":2}`), Blobs: blobs, Links: []ocidir.Link{{Name: "x.json", Node: extra}, {Name: "inner", Node: inner}}}
	n, err := ocidir.Build(ctx, s, l)
	if err != nil {
		t.Fatal(err)
	}
	// The same through a store that cannot read blocks (simulated sizes).
	if n2, err := ocidir.Build(ctx, plain{s}, l); err != nil || n2 != n {
		t.Errorf("Build without blocks: %v, %v; want %v", n2, err, n)
	}
	got, err := ocidir.Blobs(ctx, s, n.CID, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Blobs: %v, %v", got, err)
	}
	for _, b := range blobs {
		if got[b.Digest] != ipfs.V1(b.CID) {
			t.Errorf("blob %s: %s, want %s", b.Digest, got[b.Digest], b.CID)
		}
	}
	entries, err := ocidir.ReadDir(ctx, s, n.CID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if fmt.Sprint(names) != "[blobs index.json inner oci-layout x.json]" {
		t.Errorf("entries %v", names)
	}
	ic, err := ocidir.Lookup(ctx, s, n.CID, "index.json")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ocidir.ReadFile(ctx, s, ic, 100); err != nil || string(b) != `{"schemaVersion":2}` {
		t.Errorf("index.json: %q, %v", b, err)
	}
	if _, err := ocidir.ReadFile(ctx, s, ic, 5); !errors.Is(err, ocidir.ErrLimit) {
		t.Errorf("ReadFile over its bound: %v", err)
	}
	if _, err := ocidir.Lookup(ctx, s, n.CID, "blobs/sha256/00"); !errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("Lookup of a missing name: %v", err)
	}
	if dn, err := ocidir.DirNode(ctx, s, inner.CID); err != nil || dn != inner {
		t.Errorf("DirNode = %v, %v; want %v", dn, err, inner)
	}
	if _, err := ocidir.ReadDir(ctx, s, n.CID, 2); !errors.Is(err, ocidir.ErrLimit) {
		t.Errorf("ReadDir over its bound: %v", err)
	}
	if _, err := ocidir.ReadDir(ctx, s, extra.CID, 0); !errors.Is(err, ocidir.ErrNotLayout) {
		t.Errorf("ReadDir of a file: %v", err)
	}
	if _, err := ocidir.ReadDir(ctx, s, blobs[1].CID, 0); !errors.Is(err, ocidir.ErrNotLayout) {
		t.Errorf("ReadDir of a dag-pb file: %v", err)
	}
}

func TestBuildRejects(t *testing.T) {
	ctx := context.Background()
	s := carStore(t)
	f, err := ocidir.PutFile(ctx, s, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]ocidir.Layout{
		"reserved name": {Links: []ocidir.Link{{Name: "blobs", Node: f}}},
		"slash":         {Links: []ocidir.Link{{Name: "a/b", Node: f}}},
		"twice":         {Links: []ocidir.Link{{Name: "a", Node: f}, {Name: "a", Node: f}}},
		"no CID":        {Links: []ocidir.Link{{Name: "a"}}},
		"bad digest":    {Blobs: []ocidir.Blob{{Digest: "sha256:abc", CID: f.CID}}},
		"two CIDs": {Blobs: []ocidir.Blob{
			{Digest: digest.FromString("x"), Size: 1, CID: f.CID},
			{Digest: digest.FromString("x"), Size: 2, CID: f.CID},
		}},
	} {
		if _, err := ocidir.Build(ctx, s, l); !errors.Is(err, ocidir.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}
