package open_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

// TestGateways: gateways open the gateway store and no node: no repo is
// looked at or made, even with a daemon's api file there. With an API as
// well it is ErrTwoStores; a bad URL is ErrBadGateway; gateways that do
// not answer are ErrUnavailable.
func TestGateways(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	repo := filepath.Join(t.TempDir(), "ipfs")
	s, err := open.Store(c, open.Options{Gateways: []string{k.GatewayURL()}, IPFSPath: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, want := ipfs.Describe(s), "trustless gateway "+k.GatewayURL(); d != want {
		t.Errorf("Describe = %q, want %q", d, want)
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("the gateway store made a repo")
	}
	// A daemon's repo in IPFS_PATH does not change the choice.
	s2, err := open.Store(c, open.Options{Gateways: []string{k.GatewayURL()}, IPFSPath: k.Repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if d := ipfs.Describe(s2); d != "trustless gateway "+k.GatewayURL() {
		t.Errorf("with a daemon on IPFS_PATH: %q", d)
	}

	if _, err := open.Store(c, open.Options{Gateways: []string{k.GatewayURL()}, API: k.APIAddr}); !errors.Is(err, open.ErrTwoStores) {
		t.Errorf("gateways and an API: %v, want ErrTwoStores", err)
	}
	if _, err := open.Store(c, open.Options{Gateways: []string{"ftp://x"}}); !errors.Is(err, open.ErrBadGateway) {
		t.Errorf("ftp://x: %v, want ErrBadGateway", err)
	}
	if _, err := open.Store(c, open.Options{Gateways: []string{"http://127.0.0.1:1"}}); !errors.Is(err, ipfs.ErrUnavailable) {
		t.Errorf("a dead gateway: %v, want ErrUnavailable", err)
	}
}
