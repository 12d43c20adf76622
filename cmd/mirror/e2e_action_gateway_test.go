package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestE2EActionGateway: the setup action's gateway input exports
// MIRROR_GATEWAY, and a later plain step with no IPFS node at all (no
// IPFS_API, an empty IPFS_PATH) verifies the lockfile and pulls an image
// through the gateway.
func TestE2EActionGateway(t *testing.T) {
	root := moduleRoot(t)
	k := rig.StartKubo(t, rig.KuboOptions{})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	ws := t.TempDir()
	writeList(t, ws, twoImages(t, reg.Host, 1700))
	mustRun(t, []string{"IPFS_API=" + k.APIAddr}, "sync", filepath.Join(ws, "mirrors.yaml"))
	lock := readLock(t, filepath.Join(ws, "mirrors.lock"))

	r := newActionRunner(t, ws)
	gw := k.GatewayURL()
	setup := r.Use(filepath.Join(root, "actions", "setup"), map[string]string{"go-cache": "false", "gateway": " " + gw + "/\n"})
	mustOK(t, "setup", setup)
	if got := setup.Outputs["gateway"]; got != gw+"/" {
		t.Errorf("gateway output %q, want %q", got, gw+"/")
	}
	exported := r.JobEnv()["MIRROR_GATEWAY"]
	if exported != gw+"/" {
		t.Fatalf("MIRROR_GATEWAY %q", exported)
	}

	noRepo := filepath.Join(t.TempDir(), "no-repo")
	env := []string{"IPFS_API=", "IPFS_PATH=" + noRepo, "MIRROR_GATEWAY=" + exported}
	v := mustRun(t, env, "verify", filepath.Join(ws, "mirrors.lock"))
	if !strings.Contains(v.stdout, "verify: 2 ok") {
		t.Errorf("verify through the gateway:\n%s\n%s", v.stdout, v.stderr)
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	mustRun(t, env, "pull", "--platform", "linux/amd64", lock.Images[0].CID, "docker-archive:"+archive+":mirrored:latest")
	rig.SkopeoReads(t, "docker-archive:"+archive)
	if _, err := os.Stat(noRepo); err == nil {
		t.Error("a step with MIRROR_GATEWAY opened a node")
	}

	bad := r.Use(filepath.Join(root, "actions", "setup"), map[string]string{"go-cache": "false", "gateway": "ftp://x"})
	if !bad.Failed || !strings.Contains(bad.Log, "want http(s) URLs") {
		t.Errorf("gateway: ftp://x accepted:\n%s", bad.Log)
	}
}
