package embedded_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/embedded"
)

// TestPeers: an online embedded node with Peers set to a kubo daemon (a
// private swarm on loopback, no bootstrap peers, no routing, so nothing but
// Peers can find it) becomes connected to it without a swarm connect,
// fetches a block from it over bitswap, and reconnects when the daemon drops
// it (kubo's peering service). Peers are merged into the repo's
// Peering.Peers (one entry per peer, its addresses merged; the node's own ID
// skipped) in memory: kubo's peering service has them (`ipfs swarm peering
// ls` through the node's RPC API), the config file on disk is
// byte-identical afterwards.
func TestPeers(t *testing.T) {
	ctx := context.Background()
	key := "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("5c", 32) + "\n"
	k := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	kuboAddr := loopbackAddr(t, k)

	// A repo whose node can find no one (rig.PrivateRepo), with another
	// peer already in its Peering.Peers (nothing listens there): kept
	// beside the ones given.
	other := "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	repo := rig.PrivateRepo(t, key, [2]string{"Peering.Peers", `[{"ID": "` + other + `", "Addrs": ["/ip4/127.0.0.1/tcp/9"]}]`})
	ipfsCLI := func(args ...string) string { t.Helper(); return rig.IPFS(t, repo, args...) }
	self := ipfsCLI("config", "Identity.PeerID")
	configBefore, err := os.ReadFile(filepath.Join(repo, "config"))
	if err != nil {
		t.Fatal(err)
	}

	// The daemon under two addresses (one where nothing listens), and the
	// node itself: what a list shared by a group of nodes has.
	var peers []peer.AddrInfo
	for _, a := range []string{kuboAddr, "/ip4/127.0.0.1/tcp/9/p2p/" + k.PeerID, "/ip4/127.0.0.1/tcp/9/p2p/" + self} {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, *ai)
	}
	s, err := embedded.Open(ctx, embedded.Options{IPFSPath: repo, Online: true, Peers: peers, ServeAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	connected := func(within time.Duration) bool {
		t.Helper()
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if strings.Contains(k.Run("swarm", "peers"), self) {
				return true
			}
		}
		return false
	}
	if !connected(30 * time.Second) {
		t.Fatalf("the embedded node did not connect to its peer in 30s; the daemon's peers:\n%s", k.Run("swarm", "peers"))
	}

	// kubo's peering service has the repo's peer and the daemon, once,
	// with both of its addresses; not the node itself.
	var ls struct {
		Peers []struct {
			ID    string
			Addrs []string
		}
	}
	if err := json.Unmarshal([]byte(ipfsCLI("swarm", "peering", "ls", "--enc=json")), &ls); err != nil {
		t.Fatal(err)
	}
	addrs := map[string]int{}
	for _, p := range ls.Peers {
		addrs[p.ID] += len(p.Addrs)
	}
	if len(ls.Peers) != 2 || addrs[other] != 1 || addrs[k.PeerID] != 2 {
		t.Errorf("the node peers with %+v; want %s (1 address) and %s (2 addresses)", ls.Peers, other, k.PeerID)
	}

	// Content comes over that connection.
	out, err := k.RunErr(strings.NewReader("peered block"), "block", "put")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cid.Decode(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	b, err := s.GetBlock(bctx, c)
	cancel()
	if err != nil || string(b) != "peered block" {
		t.Fatalf("block from the peer: %q, %v", b, err)
	}

	// Dropped by the daemon, the node dials it again.
	k.Run("swarm", "disconnect", "/p2p/"+self)
	if connected(0) {
		t.Log("still connected right after swarm disconnect")
	}
	if !connected(60 * time.Second) {
		t.Error("the embedded node did not reconnect in 60s after the daemon dropped it")
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	configAfter, err := os.ReadFile(filepath.Join(repo, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(configBefore, configAfter) {
		t.Errorf("the repo's config file changed:\n%s", configAfter)
	}
}

// loopbackAddr is k's 127.0.0.1 TCP address with /p2p/<peer ID>.
func loopbackAddr(t *testing.T, k *rig.Kubo) string {
	t.Helper()
	var id struct{ Addresses []string }
	if err := json.Unmarshal([]byte(k.Run("id")), &id); err != nil {
		t.Fatal(err)
	}
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.HasSuffix(a, "/p2p/"+k.PeerID) {
			return a
		}
	}
	t.Fatalf("no loopback TCP address in %v", id.Addresses)
	return ""
}
