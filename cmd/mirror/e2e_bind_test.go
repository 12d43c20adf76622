package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// A lockfile entry whose CID (and pin handle) is another entry's: before,
// verify said ok and sync said unchanged. The entry's configs (the config
// digests of its image) tie the CID to its source: verify fails with the
// integrity code naming the entries (wrong-image), and sync mirrors them
// again (repaired) and writes the right CIDs back.
func TestE2ESwappedCIDs(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	dir := t.TempDir()
	var body strings.Builder
	body.WriteString("version: 1\nimages:\n")
	for i, seed := range []uint64{61, 62} {
		img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, seed, 64<<10, false)}})
		p := filepath.Join(dir, "src"+string(rune('a'+i)))
		rig.WriteLayout(t, p, img, "v1")
		body.WriteString("  - source: oci:" + p + ":v1\n")
	}
	list := writeList(t, dir, body.String())
	lockPath := filepath.Join(dir, "mirrors.lock")
	mustRun(t, env, "sync", list)
	good, _ := os.ReadFile(lockPath)
	lock := readLock(t, lockPath)
	if len(lock.Images) != 2 || len(lock.Images[0].Configs) != 1 || len(lock.Images[1].Configs) != 1 {
		t.Fatalf("entries do not record their configs:\n%s", good)
	}
	// A no-op run rewrites nothing.
	mustRun(t, env, "sync", list)
	if again, _ := os.ReadFile(lockPath); !bytes.Equal(again, good) {
		t.Errorf("no-op run changed the lockfile:\n%s\n---\n%s", good, again)
	}

	swap := func() {
		t.Helper()
		l := readLock(t, lockPath)
		a, b := &l.Images[0], &l.Images[1]
		a.CID, b.CID = b.CID, a.CID
		a.Pin, b.Pin = b.Pin, a.Pin
		if err := l.WriteFile(lockPath); err != nil {
			t.Fatal(err)
		}
	}
	swap()
	res := mirrorRun(t, env, "--json", "verify", lockPath)
	var rep struct {
		Entries []struct{ Source, Problem, Error string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, res.stdout)
	}
	if res.code != ExitIntegrity || len(rep.Entries) != 2 {
		t.Fatalf("verify of swapped CIDs: exit %d (want %d): %s%s", res.code, ExitIntegrity, res.stdout, res.stderr)
	}
	for i, e := range rep.Entries {
		if e.Problem != "wrong-image" || !strings.Contains(res.stderr, lock.Images[i].Source+" (plain) ipfs://"+lock.Images[1-i].CID) || !strings.Contains(e.Error, lock.Images[i].Configs[0]) {
			t.Errorf("entry %s: problem %q, error %q; stderr:\n%s", e.Source, e.Problem, e.Error, res.stderr)
		}
	}

	// --dry-run plans the repair; sync does it.
	res = mustRun(t, env, "sync", "--dry-run", list)
	if strings.Count(res.stderr, "repaired ") != 2 {
		t.Errorf("dry run: %s", res.stderr)
	}
	res = mustRun(t, env, "sync", list)
	if strings.Count(res.stderr, "repaired ") != 2 || strings.Contains(res.stderr, "unchanged") {
		t.Errorf("sync of swapped CIDs: %s", res.stderr)
	}
	if fixed, _ := os.ReadFile(lockPath); !bytes.Equal(fixed, good) {
		t.Errorf("sync did not write the right CIDs back:\n%s\n---\n%s", fixed, good)
	}
	mustRun(t, env, "verify", lockPath)

	// A lockfile from before configs were recorded: still read, verify
	// passes, and the next sync records them (unchanged otherwise).
	old := lockfile.New()
	for _, e := range readLock(t, lockPath).Images {
		e.Configs = nil
		old.Put(e)
	}
	if err := old.WriteFile(lockPath); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "verify", lockPath)
	res = mustRun(t, env, "sync", list)
	if !strings.Contains(res.stderr, "2 unchanged") {
		t.Errorf("sync of an old lockfile: %s", res.stderr)
	}
	if upgraded, _ := os.ReadFile(lockPath); !bytes.Equal(upgraded, good) {
		t.Errorf("sync did not record the configs:\n%s", upgraded)
	}
}
