package kubo_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// TestUnpin against a real daemon: what Add and PutBlock pinned leaves
// the pin set at once and for good (`ipfs pin ls` agrees); a second Unpin,
// and one of a CID kept only as part of a pinned file, are ErrNotPinned;
// a daemon that is gone is ErrUnavailable.
func TestUnpin(t *testing.T) {
	ctx := context.Background()
	k := rig.StartKubo(t, rig.KuboOptions{})
	s, err := kubo.New(k.APIAddr, kubo.Options{Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	file, err := s.Add(ctx, bytes.NewReader(bytes.Repeat([]byte("x"), 262144+1)))
	if err != nil {
		t.Fatal(err)
	}
	block, err := s.PutBlock(ctx, cid.Raw, []byte("one block"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := strings.Fields(k.Run("refs", file.String()))[0]
	lc, _ := cid.Decode(leaf)
	if err := s.Unpin(ctx, lc); !errors.Is(err, ipfs.ErrNotPinned) {
		t.Errorf("unpin of a leaf kept by its file: %v, want ErrNotPinned", err)
	}
	for _, c := range []cid.Cid{file, block} {
		if err := s.Unpin(ctx, c); err != nil {
			t.Fatalf("unpin %s: %v", c, err)
		}
		if out, err := k.RunErr(nil, "pin", "ls", "--type=recursive", c.String()); err == nil {
			t.Errorf("pin ls %s after unpin: %s", c, out)
		}
		if err := s.Unpin(ctx, c); !errors.Is(err, ipfs.ErrNotPinned) {
			t.Errorf("second unpin of %s: %v, want ErrNotPinned", c, err)
		}
	}
	k.Stop()
	if err := s.Unpin(ctx, file); !errors.Is(err, ipfs.ErrUnavailable) {
		t.Errorf("unpin with the daemon gone: %v, want ErrUnavailable", err)
	}
}
