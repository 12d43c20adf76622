package rig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerdRig: the daemon answers and runs a container, and its
// teardown — with a container still running — leaves no process of it
// (shims included) and no mount or file under its directory.
func TestContainerdRig(t *testing.T) {
	var dir, addr string
	t.Run("up", func(t *testing.T) {
		c := StartContainerd(t, ContainerdOptions{})
		dir, addr = c.Dir, c.Address
		if out := string(c.Ctr(t, "version")); !strings.Contains(out, "Server:") {
			t.Errorf("ctr version: %s", out)
		}
		archive := filepath.Join(t.TempDir(), "bb.tar")
		WriteArchive(t, archive, "example.com/bb:rig", BusyboxImage(t))
		c.Nerdctl(t, "load", "-i", archive)
		if out := c.Nerdctl(t, "run", "--rm", "--net", "none", "example.com/bb:rig", "echo", "rig-ok"); strings.TrimSpace(out) != "rig-ok" {
			t.Errorf("nerdctl run printed %q", out)
		}
		c.Nerdctl(t, "run", "-d", "--net", "none", "--name", "left-running", "example.com/bb:rig", "sleep", "600")
		if len(mountsUnder(dir)) == 0 {
			t.Errorf("no mount under %s with a container running", dir)
		}
	})
	if dir == "" {
		t.Skip("no daemon")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after the test: %v", dir, err)
	}
	if m := mountsUnder(dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if left := procsWithArg(addr); len(left) > 0 {
		t.Errorf("processes of the daemon left: %v", left)
	}
}

// TestBuildkitdRig: buildkitd comes up with the containerd worker of the
// rig's daemon.
func TestBuildkitdRig(t *testing.T) {
	c := StartContainerd(t, ContainerdOptions{})
	addr := StartBuildkitd(t, c)
	bin := Tool(t, "MIRROR_BUILDCTL_BIN", "buildctl")
	out, err := exec.Command(bin, "--addr", addr, "debug", "workers", "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl debug workers: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "worker.containerd.namespace:\t"+c.Namespace) {
		t.Errorf("buildctl debug workers:\n%s", out)
	}
}
