//go:build !mirror_noembed

package open_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fslock "github.com/ipfs/go-fs-lock"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestExplicitAPIDoesNotFallThrough(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "ipfs")
	_, err := open.Store(ctx(t), open.Options{API: "/ip4/127.0.0.1/tcp/1", IPFSPath: repo})
	if !errors.Is(err, ipfs.ErrUnavailable) {
		t.Fatalf("dead explicit API: %v, want ErrUnavailable", err)
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("an explicit API that fails must not fall back to (and create) the embedded repo")
	}
}

func TestEmbeddedWhenNoDaemon(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "ipfs")
	s, err := open.Store(ctx(t), open.Options{IPFSPath: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := open.Describe(s); !strings.HasPrefix(d, "embedded IPFS node on "+repo+" (offline)") {
		t.Errorf("Describe = %q", d)
	}
	if _, err := os.Stat(filepath.Join(repo, "config")); err != nil {
		t.Errorf("the repo was not initialised: %v", err)
	}
	if !open.Embedded() {
		t.Error("Embedded() = false in the default build")
	}
	if _, err := open.Store(ctx(t), open.Options{IPFSPath: filepath.Join(t.TempDir(), "x"), NoEmbedded: true}); !errors.Is(err, ipfs.ErrUnavailable) {
		t.Errorf("NoEmbedded without a daemon: %v, want ErrUnavailable", err)
	}
}

// TestRunningDaemonWins: with a daemon on the repo, its API is used (the
// embedded node could not open the locked repo anyway).
func TestRunningDaemonWins(t *testing.T) {
	n := rig.StartKubo(t, rig.KuboOptions{})
	s, err := open.Store(ctx(t), open.Options{IPFSPath: n.Repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := open.Describe(s); !strings.HasPrefix(d, "kubo RPC API at http://127.0.0.1:") {
		t.Errorf("Describe = %q", d)
	}
	c, err := s.Add(ctx(t), strings.NewReader("via the daemon"))
	if err != nil {
		t.Fatal(err)
	}
	if got := run(n, "cat", c.String()); got != "via the daemon" {
		t.Errorf("daemon has %q", got)
	}
}

// TestStaleAPIFile: a daemon that crashed leaves its api file;
// the repo is unlocked, so the embedded node takes over.
func TestStaleAPIFile(t *testing.T) {
	n := rig.StartKubo(t, rig.KuboOptions{})
	apiFile := filepath.Join(n.Repo, "api")
	api, err := os.ReadFile(apiFile)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: the daemon gone (lock released), its api file
	// still there.
	n.Stop()
	if err := os.WriteFile(apiFile, api, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := open.Store(ctx(t), open.Options{IPFSPath: n.Repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := open.Describe(s); !strings.HasPrefix(d, "embedded IPFS node") {
		t.Errorf("Describe = %q, want the embedded node", d)
	}
}

// TestLockedButSilent: an api file that does not answer while the repo is
// locked is an error, not a fallback (the embedded node cannot open it).
func TestLockedButSilent(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "api"), []byte("/ip4/127.0.0.1/tcp/1"), 0o644); err != nil {
		t.Fatal(err)
	}
	lk, err := fslock.Lock(repo, "repo.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if _, err := open.Store(ctx(t), open.Options{IPFSPath: repo}); !errors.Is(err, ipfs.ErrUnavailable) || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("locked repo, silent API: %v", err)
	}
}

// run runs the ipfs CLI on n's repo and returns its trimmed stdout.
func run(n *rig.Kubo, args ...string) string { return strings.TrimSpace(n.Run(args...)) }

// output runs the ipfs CLI on n's repo and returns its stdout as is.
func output(n *rig.Kubo, args ...string) ([]byte, error) {
	s, err := n.RunErr(nil, args...)
	return []byte(s), err
}
