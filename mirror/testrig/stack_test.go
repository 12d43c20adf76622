package testrig

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestContainerdRig: the daemon answers, and its teardown leaves no
// process of it and no mount or file under its directory.
func TestContainerdRig(t *testing.T) {
	var dir, addr string
	t.Run("up", func(t *testing.T) {
		c := StartContainerd(t, ContainerdOptions{})
		dir, addr = c.Dir, c.Address
		if out := string(c.Ctr(t, "version")); !strings.Contains(out, "Server:") {
			t.Errorf("ctr version: %s", out)
		}
		if !strings.Contains(c.Log(), "containerd successfully booted") {
			t.Errorf("containerd log:\n%s", c.Log())
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
	_ = addr
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
