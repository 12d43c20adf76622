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

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open/kubotest"
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
	n := kubotest.Start(t, kubotest.Options{})
	s, err := open.Store(ctx(t), open.Options{IPFSPath: n.Path})
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
	if got := n.Run(t, "cat", c.String()); got != "via the daemon" {
		t.Errorf("daemon has %q", got)
	}
}

// TestStaleAPIFile: a daemon killed without cleanup leaves its api file;
// the repo is unlocked, so the embedded node takes over.
func TestStaleAPIFile(t *testing.T) {
	n := kubotest.Start(t, kubotest.Options{})
	n.Kill(t)
	if _, err := os.Stat(filepath.Join(n.Path, "api")); err != nil {
		t.Skipf("the killed daemon left no api file: %v", err)
	}
	s, err := open.Store(ctx(t), open.Options{IPFSPath: n.Path})
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
