package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestE2EPeer: `mirror --peer ADDR serve` on a fresh repo that can find no
// one by itself (private swarm, no bootstrap peers, no routing) connects to
// the kubo node at ADDR, which holds an image (`mirror push` into it), and
// serves the image fetched from it over bitswap: crane and skopeo get
// byte-identical blobs, and kubo's bitswap ledger shows it sent them.
func TestE2EPeer(t *testing.T) {
	t.Parallel()
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 41, 600<<10, false), rig.Layer(t, 42, 300<<10, false)}})
	src := reg.Host + "/test/peer:v1"
	rig.Push(t, src, img)
	want := rig.SourceBlobs(t, img)
	var size int
	for _, b := range want {
		size += len(b)
	}

	key := swarmKey()
	k := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	root := mustRun(t, []string{"IPFS_API=" + k.APIAddr}, "push", src).lastLine()
	addr := swarmAddr(t, k)

	repo := privateRepo(t, key)
	self := ipfsOn(t, repo, "config", "Identity.PeerID")
	env := []string{"IPFS_PATH=" + repo, "LIBP2P_FORCE_PNET=1"}
	p := startMirrorServe(t, env, "--peer", addr, "serve", "--blob-cache", "none")

	crane := craneBin(t)
	out := filepath.Join(t.TempDir(), "crane")
	runTool(t, crane, "pull", "--format=oci", p.host+"/ipfs/"+root, out)
	sameBlobs(t, "crane pull /ipfs/<CID> from serve --peer", want, rig.LayoutBlobs(t, out))
	out = filepath.Join(t.TempDir(), "skopeo")
	runTool(t, rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo"), "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p.host+"/ipfs-nourls/"+root, "oci:"+out+":latest")
	sameBlobs(t, "skopeo ipfs-nourls/<CID> from serve --peer", want, rig.LayoutBlobs(t, out))

	var ledger struct{ Sent int }
	if err := json.Unmarshal([]byte(k.Run("bitswap", "ledger", "--enc=json", self)), &ledger); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubo sent %d bytes over bitswap to the embedded node; the image's blobs are %d bytes", ledger.Sent, size)
	if ledger.Sent < size {
		t.Errorf("kubo's bitswap ledger: %d bytes sent to the embedded node, want at least the image's %d", ledger.Sent, size)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("serve exited %d after SIGTERM", code)
	}
}

// TestE2EPeerUsage: a malformed --peer (flag or MIRROR_PEERS) is exit 2
// naming it; --peer with a daemon (--ipfs-api, or one running on the repo)
// is exit 2 saying to set Peering.Peers in that daemon's config. No node is
// started and no repo made.
func TestE2EPeerUsage(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	root := k.AddOnlyHash([]byte("x"))
	good := "/ip4/127.0.0.1/tcp/4001/p2p/" + k.PeerID
	repo := filepath.Join(t.TempDir(), "ipfs")
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"not a multiaddr", nil, []string{"--peer", "127.0.0.1:4001"}, []string{`"127.0.0.1:4001"`, "not a multiaddr"}},
		{"no peer ID", []string{"MIRROR_PEERS=" + good + ",/ip4/127.0.0.1/tcp/4002"}, nil, []string{`"/ip4/127.0.0.1/tcp/4002"`, "/p2p/<peer ID>"}},
		{"--ipfs-api", nil, []string{"--peer", good, "--ipfs-api", k.APIAddr}, []string{"--ipfs-api", "Peering.Peers", "that daemon's config"}},
		{"daemon on the repo", []string{"IPFS_PATH=" + k.Repo}, []string{"--peer", good}, []string{"a daemon serves the repo", "Peering.Peers"}},
	} {
		env := append([]string{"IPFS_PATH=" + repo}, c.env...)
		res := mirrorRun(t, env, append(c.args, "inspect", root)...)
		if res.code != ExitUsage {
			t.Errorf("%s: exit %d, want %d: %s", c.name, res.code, ExitUsage, res.stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", c.name, w, res.stderr)
			}
		}
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("a repo was made")
	}
}

// privateRepo is a fresh kubo repo that can find no peer by itself, with
// the swarm key (rig.PrivateRepo).
func privateRepo(t *testing.T, key string) string { return rig.PrivateRepo(t, key) }

// ipfsOn runs the ipfs CLI on repo and returns its trimmed output.
func ipfsOn(t *testing.T, repo string, args ...string) string { return rig.IPFS(t, repo, args...) }
