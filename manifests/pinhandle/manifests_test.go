package pinhandle_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
)

// TestFromResultAndTree: the handle of what the writer wrote (its Result)
// equals the handle of the same image resolved back from the store, and
// the handle lists exactly the writer's blobs.
func TestFromResultAndTree(t *testing.T) {
	ctx := context.Background()
	s, _ := carStore(t)
	idx, err := random.Index(3000, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := manifests.NewWriter(s, 4, func(manifests.Event) {}).Write(ctx, idx, manifests.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h1, err := pinhandle.Builder(s)(ctx, res, ocidir.Node{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := manifests.Resolve(ctx, s, res.Root)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pinhandle.FromTree(tree, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Blobs) != len(res.Blobs) {
		t.Errorf("tree has %d blobs, the writer %d", len(in.Blobs), len(res.Blobs))
	}
	h2, err := pinhandle.Build(ctx, s, in)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Errorf("handle from the result %s, from the resolved tree %s", h1, h2)
	}
}
