//go:build !mirror_noembed

package open_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

const (
	peerA = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	peerB = "12D3KooWSYtgwysHgCJgpmYW1159MXYRckYwhh53zP5hvBmuBBkg"
)

// TestParsePeers: addresses of the same peer merge into one AddrInfo (as
// kubo's Peering.Peers config does); a bare /p2p/<ID> is a peer with no
// address; anything else is ErrBadPeer naming the address.
func TestParsePeers(t *testing.T) {
	got, err := open.ParsePeers([]string{
		"/ip4/127.0.0.1/tcp/4001/p2p/" + peerA,
		"/p2p/" + peerB,
		"",
		"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + peerA,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, p := range got {
		n[p.ID.String()] = len(p.Addrs)
	}
	if len(got) != 2 || n[peerA] != 2 || n[peerB] != 0 {
		t.Errorf("ParsePeers: %v", got)
	}
	if got, err := open.ParsePeers(nil); got != nil || err != nil {
		t.Errorf("no peers: %v, %v", got, err)
	}
	for _, bad := range []string{"127.0.0.1:4001", "/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4001/p2p/notanid", "/ip4/999.0.0.1/tcp/1/p2p/" + peerA} {
		_, err := open.ParsePeers([]string{bad})
		if !errors.Is(err, open.ErrBadPeer) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v, want ErrBadPeer naming it", bad, err)
		}
	}
}

// TestPeersNeedEmbedded: peers with an explicit API, a daemon serving the
// repo, or gateways are ErrPeersNeedEmbedded (no node is opened, no repo
// made); a malformed one is ErrBadPeer before anything else.
func TestPeersNeedEmbedded(t *testing.T) {
	peers := []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + peerA}
	repo := filepath.Join(t.TempDir(), "ipfs")
	for name, o := range map[string]open.Options{
		"api":      {API: "/ip4/127.0.0.1/tcp/1", IPFSPath: repo, Peers: peers},
		"gateways": {Gateways: []string{"http://127.0.0.1:1"}, IPFSPath: repo, Peers: peers},
	} {
		if _, err := open.Store(ctx(t), o); !errors.Is(err, open.ErrPeersNeedEmbedded) {
			t.Errorf("%s: %v, want ErrPeersNeedEmbedded", name, err)
		}
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("a repo was made")
	}
	n := rig.StartKubo(t, rig.KuboOptions{})
	_, err := open.Store(ctx(t), open.Options{IPFSPath: n.Repo, Peers: peers})
	if !errors.Is(err, open.ErrPeersNeedEmbedded) || !strings.Contains(err.Error(), "Peering.Peers") || !strings.Contains(err.Error(), "127.0.0.1:"+n.APIAddr[strings.LastIndex(n.APIAddr, "/")+1:]) {
		t.Errorf("daemon on the repo: %v, want ErrPeersNeedEmbedded naming it and Peering.Peers", err)
	}
	if _, err := open.Store(ctx(t), open.Options{API: "/ip4/127.0.0.1/tcp/1", Peers: []string{"/ip4/127.0.0.1"}}); !errors.Is(err, open.ErrBadPeer) {
		t.Errorf("malformed peer with an API: %v, want ErrBadPeer", err)
	}
}
