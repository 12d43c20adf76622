package pinhandle_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
)

// TestPinTree: PinTree pins the root, every blob of the tree and the
// handle, once each, also several at a time; what Held says is kept is
// not pinned again nor counted; a failing check or pin is an error that
// names the CID, with the pins done so far counted.
func TestPinTree(t *testing.T) {
	ctx := context.Background()
	s, _ := carStore(t)
	idx, err := random.Index(2000, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := manifests.NewWriter(s, 4, func(manifests.Event) {}).Write(ctx, idx, manifests.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := manifests.Resolve(ctx, s, res.Root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pinhandle.Builder(s)(ctx, res, ocidir.Node{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[cid.Cid]bool{tree.Root: true, h: true}
	for _, d := range tree.Descs {
		c, err := manifests.CID(d)
		if err != nil {
			t.Fatal(err)
		}
		want[c] = true
	}
	before := len(s.Pins())
	n, err := pinhandle.PinTree(ctx, s, tree, pinhandle.PinTreeOptions{Handle: h, Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	pins := s.Pins()[before:]
	got := map[cid.Cid]bool{}
	for _, c := range pins {
		got[c] = true
	}
	if n != len(want) || len(pins) != len(want) || len(got) != len(want) {
		t.Errorf("pinned %d (store saw %d, %d distinct), want %d", n, len(pins), len(got), len(want))
	}
	for c := range want {
		if !got[c] {
			t.Errorf("%s not pinned", c)
		}
	}

	// Held: the root and the handle are kept already.
	var mu sync.Mutex
	asked := 0
	held := func(_ context.Context, c cid.Cid) (bool, error) {
		mu.Lock()
		asked++
		mu.Unlock()
		return c == tree.Root || c == h, nil
	}
	before = len(s.Pins())
	n, err = pinhandle.PinTree(ctx, s, tree, pinhandle.PinTreeOptions{Handle: h, Held: held})
	if err != nil || n != len(want)-2 || len(s.Pins())-before != n || asked != len(want) {
		t.Errorf("with Held: pinned %d (store saw %d), asked %d, %v; want %d pinned, %d asked", n, len(s.Pins())-before, asked, err, len(want)-2, len(want))
	}

	// A failing check names the CID.
	boom := errors.New("boom")
	_, err = pinhandle.PinTree(ctx, s, tree, pinhandle.PinTreeOptions{Held: func(context.Context, cid.Cid) (bool, error) { return false, boom }})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), tree.Root.String()) {
		t.Errorf("failing Held: %v", err)
	}
	// A handle the store does not have: the rest is pinned and counted.
	missing, _ := cid.Decode("bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	n, err = pinhandle.PinTree(ctx, s, tree, pinhandle.PinTreeOptions{Handle: missing})
	if err == nil || !strings.Contains(err.Error(), "pin handle "+missing.String()) || n != len(want)-1 {
		t.Errorf("missing handle: pinned %d, %v; want %d and an error naming it", n, err, len(want)-1)
	}
}
