package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// slowBlobs delays every blob GET by d, so that a sync lasts long enough
// for another to start meanwhile.
func slowBlobs(d time.Duration) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				time.Sleep(d)
			}
			h.ServeHTTP(w, r)
		})
	}
}

// Two syncs of one list on one lockfile at once, each with its own --only
// (as a CI matrix shards a list; with no --only, a run removes the entries
// its list does not select, by design): before the lock, both read the
// empty lockfile and the second write dropped the first's entry while both
// exited 0. Now the second waits for the first and adds
// its entry to what the first wrote; with --lock-timeout 0 it fails with
// exit 6 instead, and nothing is lost either way.
func TestE2ESyncConcurrentLockfile(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	reg := rig.StartRegistry(t, rig.RegistryOptions{Wrap: slowBlobs(300 * time.Millisecond)})
	sixApps(t, reg.Host, 900)
	env := []string{"IPFS_API=" + k.APIAddr}
	dir := t.TempDir()
	lockPath := filepath.Join(dir, "mirrors.lock")
	list := writeList(t, dir, appsList(reg.Host, ""))
	only := func(i int) []string {
		return []string{"sync", "--lock", lockPath, "--only", fmt.Sprintf("/app%d$", i), list}
	}

	t.Run("the second waits and adds its entry", func(t *testing.T) {
		var wg sync.WaitGroup
		res := make([]result, 2)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = mirrorRun(t, env, only(i)...)
			}()
		}
		wg.Wait()
		waited := 0
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("sync %d: exit %d: %s", i, r.code, r.stderr)
			}
			if strings.Contains(r.stderr, "waiting for "+lockPath) && strings.Contains(r.stderr, "another mirror sync (pid ") {
				waited++
			}
		}
		lock := readLock(t, lockPath)
		for i := range res {
			if _, ok := lock.Lookup(fmt.Sprintf("%s/app%d:1.0", reg.Host, i), "plain"); !ok {
				t.Errorf("entry of list %d lost: lockfile has %d entries", i, len(lock.Images))
			}
		}
		if waited != 1 {
			t.Errorf("%d runs said they waited for the lock, want 1:\n%s\n---\n%s", waited, res[0].stderr, res[1].stderr)
		}
		if _, err := os.Stat(lockfile.LockPath(lockPath)); !os.IsNotExist(err) {
			t.Errorf("lock file left behind: %v", err)
		}
	})

	t.Run("--lock-timeout 0 fails with exit 6", func(t *testing.T) {
		before, _ := os.ReadFile(lockPath)
		done := make(chan result, 1)
		go func() { done <- mirrorRun(t, env, only(2)...) }()
		deadline := time.Now().Add(time.Minute)
		for {
			if _, err := os.Stat(lockfile.LockPath(lockPath)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first sync never took the lock")
			}
			time.Sleep(5 * time.Millisecond)
		}
		r := mirrorRun(t, env, append([]string{"sync", "--lock-timeout", "0"}, only(3)[1:]...)...)
		if r.code != ExitLocked || !strings.Contains(r.stderr, lockPath+" is locked by another mirror sync (pid ") {
			t.Errorf("exit %d (want %d): %s", r.code, ExitLocked, r.stderr)
		}
		if first := <-done; first.code != 0 {
			t.Fatalf("first sync: exit %d: %s", first.code, first.stderr)
		}
		lock := readLock(t, lockPath)
		if len(lock.Images) != 3 {
			t.Errorf("lockfile has %d entries, want 3 (before: %s)", len(lock.Images), before)
		}
	})
}
