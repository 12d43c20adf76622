package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	carv2 "github.com/ipld/go-car/v2"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// carRoots reads a CAR header's roots with go-car.
func carRoots(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br, err := carv2.NewBlockReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range br.Roots {
		out = append(out, r.String())
	}
	return out
}

// TestE2EDaemonless: push to a CAR with no node at all, load it into a
// daemon, pin by root or handle, survive gc, pull; push and pull through
// the embedded node when no daemon runs.
func TestE2EDaemonless(t *testing.T) {
	r := newRig(t)
	idx := rig.MultiPlatform(t, 300, 700<<10)
	src := r.reg.Host + "/test/daemonless:v1"
	rig.Push(t, src, idx)
	want := mustRun(t, r.env, "push", src).lastLine()

	// No daemon, no repo: --car needs neither.
	noRepo := filepath.Join(t.TempDir(), "never")
	carFile := filepath.Join(t.TempDir(), "image.car")
	res := mustRun(t, []string{"IPFS_PATH=" + noRepo}, "push", "--car", carFile, src)
	if got := res.lastLine(); got != want {
		t.Fatalf("push --car: root %s, push to the daemon %s", got, want)
	}
	if _, err := os.Stat(noRepo); err == nil {
		t.Error("push --car touched $IPFS_PATH")
	}
	roots := carRoots(t, carFile)
	if len(roots) != 1 || !strings.HasPrefix(roots[0], "bafybei") || !strings.Contains(res.stderr, roots[0]) {
		t.Fatalf("CAR roots %v (want the pin handle, a dag-pb CIDv1); stderr: %s", roots, res.stderr)
	}
	handle := roots[0]

	t.Run("pin by root", func(t *testing.T) {
		k := rig.StartKubo(t, rig.KuboOptions{})
		env := []string{"IPFS_API=" + k.APIAddr}
		k.Run("dag", "import", "--pin-roots=false", carFile)
		if got := mustRun(t, env, "pin", "ipfs://"+want).lastLine(); got != want {
			t.Errorf("mirror pin printed %q", got)
		}
		k.Run("repo", "gc")
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, env, "--timeout", "60s", "pull", "ipfs://"+want, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
	})
	t.Run("pin by handle", func(t *testing.T) {
		k := rig.StartKubo(t, rig.KuboOptions{})
		env := []string{"IPFS_API=" + k.APIAddr}
		k.Run("dag", "import", "--pin-roots=false", carFile)
		// The handle alone keeps the image through gc.
		if got := mustRun(t, env, "pin", handle).lastLine(); got != handle {
			t.Errorf("mirror pin HANDLE printed %q", got)
		}
		k.Run("repo", "gc")
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, env, "--timeout", "60s", "pull", "ipfs://"+want, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
		// Built from the root on a node, it is the CAR's handle.
		if got := mustRun(t, env, "pin", "--handle", want).lastLine(); got != handle {
			t.Errorf("mirror pin --handle built %s, the CAR's handle is %s", got, handle)
		}
		if res := mirrorRun(t, env, "pin", r.k.AddOnlyHash([]byte("not an image"))); res.code != ExitIPFS {
			t.Errorf("pin of a non-image: exit %d: %s", res.code, res.stderr)
		}
	})
	t.Run("embedded node", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "ipfs")
		env := []string{"IPFS_PATH=" + repo}
		if got := mustRun(t, env, "push", src).lastLine(); got != want {
			t.Fatalf("embedded push: root %s, want %s", got, want)
		}
		if _, err := os.Stat(filepath.Join(repo, "config")); err != nil {
			t.Fatalf("no repo initialised: %v", err)
		}
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, env, "pull", "ipfs://"+want, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
		mustRun(t, env, "pin", "--handle", want)
	})
}

// TestE2EOnline: with --online the embedded node joins the network of its
// repo (here a private swarm on loopback) and fetches from a peer; without
// it, it stays offline and cannot.
func TestE2EOnline(t *testing.T) {
	r := newRig(t)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 31, 300<<10, false)}})
	src := r.reg.Host + "/test/online:v1"
	rig.Push(t, src, img)

	key := swarmKey()
	peer := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	root := mustRun(t, []string{"IPFS_API=" + peer.APIAddr}, "push", src).lastLine()
	var addr string
	for _, a := range strings.Fields(peer.Run("swarm", "addrs", "local", "--id")) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			addr = a
		}
	}
	if addr == "" {
		t.Fatal("the peer has no loopback TCP address")
	}

	// The embedded node's repo: test profile, the peer as its only
	// bootstrap peer, the same swarm key, no routers.
	repo := filepath.Join(t.TempDir(), "ipfs")
	bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	ipfsCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ipfsCmd("init", "--profile=test", "--empty-repo")
	ipfsCmd("config", "--json", "Bootstrap", `["`+addr+`"]`)
	ipfsCmd("config", "Routing.Type", "none")
	if err := os.WriteFile(filepath.Join(repo, "swarm.key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"IPFS_PATH=" + repo, "LIBP2P_FORCE_PNET=1"}

	if res := mirrorRun(t, env, "--timeout", "10s", "inspect", root); res.code != ExitIPFS {
		t.Errorf("offline embedded node found a peer's content: exit %d: %s", res.code, res.stderr)
	}
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, env, "--online", "--timeout", "90s", "pull", "ipfs://"+root, "oci:"+out)
	rig.SkopeoReads(t, "oci:"+out)
}
