package publish_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/publish"
)

func TestPublish(t *testing.T) {
	cs, err := car.New(filepath.Join(t.TempDir(), "x.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640000 bytes: a multi-block file
	res, err := publish.Publish(ctx, cs, []publish.File{{Name: "mirrors.yaml", Data: []byte("version: 1\n")}, {Name: "mirrors.lock", Data: big}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Directory || len(res.Files) != 2 || res.Files[0].Name != "mirrors.lock" || res.CID.Type() != cid.DagProtobuf || res.CID.Version() != 1 {
		t.Fatalf("%+v", res)
	}
	pins := cs.Pins()
	found := false
	for _, p := range pins {
		found = found || p.Equals(res.CID)
	}
	if !found {
		t.Errorf("directory %s not pinned (%v)", res.CID, pins)
	}
	one, err := publish.Publish(ctx, cs, []publish.File{{Name: "mirrors.lock", Data: big}})
	if err != nil || one.Directory || one.CID.String() != res.Files[0].CID {
		t.Errorf("one file: %+v %v", one, err)
	}
	for _, bad := range [][]publish.File{nil, {{Name: "a/b"}}, {{Name: ".."}}, {{Name: "x"}, {Name: "x"}}} {
		if _, err := publish.Publish(ctx, cs, bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
