package pinhandle_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
)

// swarm starts count online daemons sharing a fresh swarm key: a private
// network on 127.0.0.1 (LIBP2P_FORCE_PNET=1, no bootstrap peers,
// Routing.Type=none, mDNS and AutoConf off: testrig's settings), so
// nothing leaves loopback and peers meet only by swarm connect.
func swarm(t *testing.T, count int) []*rig.Kubo {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	key := "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(b) + "\n"
	nodes := make([]*rig.Kubo, count)
	for i := range nodes {
		nodes[i] = rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
		if got := run(nodes[i], "config", "Routing.Type"); got != "none" {
			t.Fatalf("Routing.Type = %q, want none", got)
		}
	}
	return nodes
}

// connect dials from a to b by b's loopback address and peer ID.
func connect(t *testing.T, a, b *rig.Kubo) {
	t.Helper()
	run(a, "swarm", "connect", loopbackAddr(t, b))
	for _, p := range strings.Fields(run(a, "swarm", "peers")) {
		if !strings.HasPrefix(p, "/ip4/127.0.0.1/") {
			t.Errorf("a peer off loopback: %s", p)
		}
	}
}

func loopbackAddr(t *testing.T, b *rig.Kubo) string {
	t.Helper()
	var addr string
	for _, f := range strings.Fields(run(b, "swarm", "addrs", "local", "--id")) {
		if strings.HasPrefix(f, "/ip4/127.0.0.1/tcp/") {
			addr = f
		}
	}
	if addr == "" {
		t.Fatal("no loopback TCP address")
	}
	return addr
}

// TestPeerToPeer: an image added on A is fetched by B (byte-identical), B
// pins its handle (which fetches every blob), A goes away, and B, and C
// through B, still serve the whole image.
func TestPeerToPeer(t *testing.T) {
	ctx := context.Background()
	nodes := swarm(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]

	img := writeImage(t, kuboStore(t, a), 1500, 900_000, 3_000_000)
	h, err := pinhandle.Build(ctx, kuboStore(t, a), img.in)
	if err != nil {
		t.Fatal(err)
	}

	// Two nodes: B fetches from A.
	connect(t, b, a)
	if got := run(b, "cat", img.in.Root.String()); got != string(img.root) {
		t.Fatalf("B reads the root descriptor as %q", got)
	}
	run(b, "pin", "add", "--progress=false", h.String())
	if peers := run(b, "swarm", "peers"); !strings.Contains(peers, a.PeerID) || strings.Contains(peers, c.PeerID) {
		t.Fatalf("B's peers: %s", peers)
	}

	// A leaves; B holds everything, through gc.
	a.Stop()
	run(b, "repo", "gc")
	for _, blob := range img.in.Blobs {
		out, err := output(b, "cat", "--offline", blob.CID.String())
		if err != nil {
			t.Fatalf("B lost blob %s: %v", blob.Digest, err)
		}
		if digest.FromBytes(out) != blob.Digest {
			t.Errorf("B serves other bytes for %s", blob.Digest)
		}
	}

	// The network is private: a node without the key cannot join.
	outsider := rig.StartKubo(t, rig.KuboOptions{Online: true})
	if _, err := outsider.RunErr(nil, "swarm", "connect", loopbackAddr(t, b)); err == nil {
		t.Error("a node without the swarm key connected to B")
	}

	// Three nodes: C knows only B and fetches everything from it.
	connect(t, c, b)
	if peers := run(c, "swarm", "peers"); strings.Contains(peers, a.PeerID) {
		t.Errorf("C is connected to A, which is stopped: %s", peers)
	}
	for _, blob := range img.in.Blobs {
		out, err := output(c, "cat", blob.CID.String())
		if err != nil {
			t.Fatalf("C cannot fetch blob %s via B: %v", blob.Digest, err)
		}
		if digest.FromBytes(out) != blob.Digest {
			t.Errorf("C got other bytes for %s", blob.Digest)
		}
	}
	if got := run(c, "cat", h.String()+"/ipfs-root.json"); got != string(img.root) {
		t.Errorf("C reads ipfs-root.json as %q", got)
	}
}
