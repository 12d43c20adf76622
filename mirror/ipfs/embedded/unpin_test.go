package embedded_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// TestUnpin: a file Add pinned and a block PutBlock pinned are unpinned
// once; a second Unpin, and an Unpin of a block kept only as part of a
// pinned file, are ErrNotPinned; a file another pin still links stays
// held.
func TestUnpin(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ipfs"))
	file, err := s.Add(ctx, payload(1, 262144+1)) // two leaves under a dag-pb root
	if err != nil {
		t.Fatal(err)
	}
	block, err := s.PutBlock(ctx, cid.Raw, []byte("one block"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.GetBlock(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := merkledag.DecodeProtobuf(root)
	if err != nil || len(nd.Links()) != 2 {
		t.Fatalf("file root: %v, %d links", err, len(nd.Links()))
	}
	leaf := nd.Links()[0].Cid
	if err := s.Unpin(ctx, leaf); !errors.Is(err, ipfs.ErrNotPinned) {
		t.Errorf("unpin of a leaf kept by its file: %v, want ErrNotPinned", err)
	}
	for _, c := range []cid.Cid{file, block} {
		if err := s.Unpin(ctx, c); err != nil {
			t.Fatalf("unpin %s: %v", c, err)
		}
		if held, err := s.Holds(ctx, c); err != nil || held {
			t.Errorf("%s after unpin: held %v, %v", c, held, err)
		}
		if err := s.Unpin(ctx, c); !errors.Is(err, ipfs.ErrNotPinned) {
			t.Errorf("second unpin of %s: %v, want ErrNotPinned", c, err)
		}
	}
}
