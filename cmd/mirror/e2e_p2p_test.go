package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestE2EPeerToPeer is the point of IPFS, shown through the binary: three
// kubo daemons in a private swarm on 127.0.0.1; `mirror sync` into A; B
// (connected to A) pulls and serves byte-identical images and pins them
// whole (`mirror pin`); A stops; B still serves them and C, connected only
// to B, pulls them from B.
func TestE2EPeerToPeer(t *testing.T) {
	t.Parallel()
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	apps := sixApps(t, reg.Host, 2100)
	key := swarmKey()
	a := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	b := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	c := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	b.Run("swarm", "connect", swarmAddr(t, a))
	c.Run("swarm", "connect", swarmAddr(t, b))

	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/app0:1.0\n  - source: %s/app1:1.0\n", reg.Host, reg.Host))
	mustRun(t, []string{"IPFS_API=" + a.APIAddr}, "sync", list)
	lock := readLock(t, filepath.Join(dir, "mirrors.lock"))

	envB := []string{"IPFS_API=" + b.APIAddr}
	for i, e := range lock.Images {
		out := filepath.Join(t.TempDir(), "oci")
		mustRun(t, envB, "--timeout", "2m", "pull", e.CID, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
		sameBlobs(t, "B pulled from A", rig.SourceBlobs(t, apps[i]), rig.LayoutBlobs(t, out))
		mustRun(t, envB, "--timeout", "2m", "pin", e.CID)
	}
	a.Stop()
	b.Run("repo", "gc")

	srv := startServe(t, envB)
	for i, e := range lock.Images {
		ref, err := name.ParseReference(srv.host + "/ipfs/" + e.CID)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("serve on B after A stopped: %v", err)
		}
		sameBlobs(t, "served by B", rig.SourceBlobs(t, apps[i]), rig.SourceBlobs(t, idx))
		out := filepath.Join(t.TempDir(), "oci")
		mustRun(t, []string{"IPFS_API=" + c.APIAddr}, "--timeout", "2m", "pull", e.CID, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
		sameBlobs(t, "C pulled via B", rig.SourceBlobs(t, apps[i]), rig.LayoutBlobs(t, out))
	}
}
