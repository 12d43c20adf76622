package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/repo/fsrepo"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/embedded"
)

type prng struct{ r *rand.ChaCha8 }

func (p *prng) Read(b []byte) (int, error) { return p.r.Read(b) }

func payload(seed uint64, n int64) io.Reader {
	return io.LimitReader(&prng{r: rand.NewChaCha8([32]byte{byte(seed), 3})}, n)
}

func openStore(t *testing.T, repo string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(context.Background(), embedded.Options{IPFSPath: repo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore: a fresh repo is initialised; adds give the same CIDs as the
// CAR store (whose CIDs are tested equal to a daemon's); Cat, PutBlock,
// GetBlock and Pin work; a missing CID is ErrNotFound at once offline; Close
// releases the repo.
func TestStore(t *testing.T) {
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "ipfs")
	s := openStore(t, repo)
	if !s.Initialized() || !fsrepo.IsInitialized(repo) {
		t.Fatal("the repo was not initialised")
	}
	if s.Online() {
		t.Error("online by default")
	}
	cs, err := car.New(filepath.Join(t.TempDir(), "x.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var big cid.Cid
	for i, size := range []int64{0, 1, 262144, 262145, 174*262144 + 1} {
		got, err := s.Add(ctx, payload(uint64(i), size))
		if err != nil {
			t.Fatal(err)
		}
		want, err := cs.Add(ctx, payload(uint64(i), size))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%d bytes: embedded %s, car %s", size, got, want)
		}
		big = got
	}
	all, _ := io.ReadAll(payload(4, 174*262144+1))
	rc, err := s.Cat(ctx, big, 262140, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, all[262140:262150]) {
		t.Errorf("cat with offset and length: %x", got)
	}
	bc, err := s.PutBlock(ctx, cid.Raw, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := cs.PutBlock(ctx, cid.Raw, []byte("hello")); bc != want {
		t.Errorf("block put: %s, want %s", bc, want)
	}
	if b, err := s.GetBlock(ctx, bc); err != nil || string(b) != "hello" {
		t.Errorf("GetBlock: %q, %v", b, err)
	}
	if err := s.Pin(ctx, big); err != nil {
		t.Fatal(err)
	}
	missing, _ := cid.Decode("bafkreie7ohywtosou76tasm7j63yigtzxe7d5zqus4zu3j6oltvgtibeom")
	start := time.Now()
	if _, err := s.Cat(ctx, missing, 0, -1); !errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("cat of a missing CID: %v, want ErrNotFound", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("offline cat of a missing CID took %v", d)
	}

	if _, err := embedded.Open(ctx, embedded.Options{IPFSPath: repo}); !errors.Is(err, embedded.ErrRepoLocked) {
		t.Errorf("second Open in-process: %v, want ErrRepoLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if locked, _ := fsrepo.LockedByOtherProcess(repo); locked {
		t.Error("the repo is still locked after Close")
	}
	s2 := openStore(t, repo)
	if s2.Initialized() {
		t.Error("the repo was initialised twice")
	}
	rc, err = s2.Cat(ctx, big, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, all) {
		t.Error("content lost across a reopen")
	}
}

// TestDaemonServesEmbeddedRepo: what the embedded node added, a later
// `ipfs daemon` on the same repo serves (pinned); while it runs, Open says
// the repo is locked.
func TestDaemonServesEmbeddedRepo(t *testing.T) {
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "ipfs")
	s := openStore(t, repo)
	c, err := s.Add(ctx, payload(7, 1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The embedded node made a default repo: move a daemon on it to
	// loopback port 0, with no peers, before starting one.
	bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	for _, kv := range [][2]string{
		{"Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
		{"Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
		{"Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`},
		{"Bootstrap", `[]`},
		{"AutoConf.Enabled", `false`},
	} {
		cmd := exec.Command(bin, "config", "--json", kv[0], kv[1])
		cmd.Env = append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ipfs config %s: %v\n%s", kv[0], err, out)
		}
	}
	n := rig.StartKubo(t, rig.KuboOptions{Repo: repo})
	if _, err := embedded.Open(ctx, embedded.Options{IPFSPath: repo}); !errors.Is(err, embedded.ErrRepoLocked) {
		t.Fatalf("Open while the daemon runs: %v, want ErrRepoLocked", err)
	}
	run(n, "repo", "gc")
	out, err := output(n, "cat", c.String())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(payload(7, 1_000_000))
	if !bytes.Equal(out, want) {
		t.Error("the daemon serves different bytes")
	}
	if pins := run(n, "pin", "ls", "--type=recursive", c.String()); pins == "" {
		t.Error("not pinned")
	}
	n.Stop()
	if _, err := os.Stat(filepath.Join(repo, "api")); err == nil {
		t.Log("the daemon left its api file")
	}
}

// run runs the ipfs CLI on n's repo and returns its trimmed stdout.
func run(n *rig.Kubo, args ...string) string { return strings.TrimSpace(n.Run(args...)) }

// output runs the ipfs CLI on n's repo and returns its stdout as is.
func output(n *rig.Kubo, args ...string) ([]byte, error) {
	s, err := n.RunErr(nil, args...)
	return []byte(s), err
}

// TestNames: the embedded node publishes IPNS names with the repo's
// keystore (its own key and one `ipfs key gen` made) and resolves them
// offline; a new value replaces the old; an unknown key is ErrNoKey. The
// record stays in the repo: the ipfs CLI resolves it there after Close.
func TestNames(t *testing.T) {
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "ipfs")
	s := openStore(t, repo)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	ipfsCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	keyName := ipfsCLI("key", "gen", "--ipns-base=base36", "lockfiles")

	s = openStore(t, repo)
	one, err := s.Add(ctx, strings.NewReader("one"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.Add(ctx, strings.NewReader("two"))
	if err != nil {
		t.Fatal(err)
	}
	var p ipfs.NamePublisher = s
	var r ipfs.NameResolver = s
	name, err := p.PublishIPNS(ctx, "lockfiles", one)
	if err != nil {
		t.Fatal(err)
	}
	if name != keyName || !strings.HasPrefix(name, "k51") {
		t.Errorf("published under %q, `ipfs key gen` made %q", name, keyName)
	}
	if got, err := r.ResolveIPNS(ctx, name); err != nil || got != one {
		t.Errorf("resolve: %s, %v; want %s", got, err, one)
	}
	if _, err := p.PublishIPNS(ctx, "lockfiles", two); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ResolveIPNS(ctx, name); err != nil || got != two {
		t.Errorf("resolve after a second publish: %s, %v; want %s", got, err, two)
	}
	self, err := p.PublishIPNS(ctx, "self", one)
	if err != nil || self == name || !strings.HasPrefix(self, "k51") {
		t.Errorf("publish with the node's own key: %q, %v", self, err)
	}
	if _, err := p.PublishIPNS(ctx, "nokey", one); !errors.Is(err, ipfs.ErrNoKey) {
		t.Errorf("unknown key: %v, want ErrNoKey", err)
	}
	// A name nobody published: not found, at once offline.
	start := time.Now()
	if _, err := r.ResolveIPNS(ctx, "k51qzi5uqu5dj69ytzs596g7g2q6ns5fy0a0lolv2y75o1il9jmfnahajfwl2q"); !errors.Is(err, ipfs.ErrNotFound) {
		t.Errorf("unknown name: %v, want ErrNotFound", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("offline resolve of an unknown name took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ipfsCLI("name", "resolve", "--offline", "/ipns/"+name); got != "/ipfs/"+two.String() {
		t.Errorf("the ipfs CLI resolves /ipns/%s in the repo to %q, want /ipfs/%s", name, got, two)
	}
}
