package rig

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kubo is a real kubo daemon on 127.0.0.1 with its own repo.
type Kubo struct {
	t    testing.TB
	Bin  string
	Repo string
	// APIAddr is the RPC API multiaddr (/ip4/127.0.0.1/tcp/PORT).
	APIAddr string
	// PeerID and SwarmAddr, for connecting peers.
	PeerID    string
	SwarmAddr string

	proc *Proc
	prev string // what earlier runs (before a Restart) printed
}

// KuboOptions tune a daemon.
type KuboOptions struct {
	// Online runs without --offline (for peer tests: pair it with SwarmKey).
	Online bool
	// SwarmKey makes a private network (and sets LIBP2P_FORCE_PNET=1).
	SwarmKey string
	// Repo reuses an existing repo directory instead of a fresh one.
	Repo string
}

// StartKubo inits a repo (profile test: random loopback ports, no
// bootstrap) and starts a daemon; it is stopped when the test ends.
func StartKubo(t testing.TB, o KuboOptions) *Kubo {
	t.Helper()
	k := &Kubo{t: t, Bin: Tool(t, "MIRROR_IPFS_BIN", "ipfs"), Repo: o.Repo}
	if k.Repo == "" {
		k.Repo = filepath.Join(t.TempDir(), "ipfs")
		k.Run("init", "--profile=test", "--empty-repo")
		// Keep everything on loopback, no routers, no announcements.
		k.Run("config", "--json", "Bootstrap", "[]")
		k.Run("config", "--json", "Routing.Type", `"none"`)
		k.Run("config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`)
		k.Run("config", "--json", "Addresses.API", `"/ip4/127.0.0.1/tcp/0"`)
		k.Run("config", "--json", "Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`)
		k.Run("config", "--json", "Discovery.MDNS.Enabled", "false")
		k.Run("config", "--json", "AutoConf.Enabled", "false")
	}
	if o.SwarmKey != "" {
		if err := os.WriteFile(filepath.Join(k.Repo, "swarm.key"), []byte(o.SwarmKey), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k.start(o)
	return k
}

func (k *Kubo) env(o KuboOptions) []string {
	env := append(os.Environ(), "IPFS_PATH="+k.Repo, "IPFS_TELEMETRY=off", "GOLOG_LOG_LEVEL=error")
	if o.SwarmKey != "" {
		env = append(env, "LIBP2P_FORCE_PNET=1")
	}
	return env
}

func (k *Kubo) start(o KuboOptions) {
	t := k.t
	_ = os.Remove(filepath.Join(k.Repo, "api"))
	args := []string{"daemon", "--migrate=false"}
	if !o.Online {
		args = append(args, "--offline")
	}
	cmd := exec.Command(k.Bin, args...)
	cmd.Env = k.env(o)
	if k.proc != nil {
		k.prev += k.proc.Log()
	}
	k.proc = StartReady(t, cmd, "ipfs daemon", "Daemon is ready", 60*time.Second)
	api, err := os.ReadFile(filepath.Join(k.Repo, "api"))
	if err != nil {
		t.Fatal(err)
	}
	k.APIAddr = strings.TrimSpace(string(api))
	k.PeerID = strings.TrimSpace(k.Run("config", "Identity.PeerID"))
	t.Cleanup(k.Stop)
}

// GatewayURL is the base URL of the daemon's HTTP gateway
// (http://127.0.0.1:PORT), read from the gateway file kubo writes to its
// repo.
func (k *Kubo) GatewayURL() string {
	k.t.Helper()
	b, err := os.ReadFile(filepath.Join(k.Repo, "gateway"))
	if err != nil {
		k.t.Fatalf("kubo's gateway address: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// Log returns what the daemon printed.
func (k *Kubo) Log() string {
	if k.proc == nil {
		return k.prev
	}
	return k.prev + k.proc.Log()
}

// Stop stops the daemon (idempotent).
func (k *Kubo) Stop() {
	if k.proc != nil {
		k.proc.Stop(15 * time.Second)
	}
}

// StopGroup stops the process group cmd leads (started with Setpgid):
// SIGTERM, then SIGKILL after grace; done is closed when cmd has exited.
func StopGroup(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Restart starts the daemon again on the same repo.
func (k *Kubo) Restart(o KuboOptions) {
	k.Stop()
	k.start(o)
}

// Run runs the ipfs CLI on this repo (talking to the daemon when it runs)
// and returns stdout; failure fails the test.
func (k *Kubo) Run(args ...string) string {
	k.t.Helper()
	out, err := k.RunErr(nil, args...)
	if err != nil {
		k.t.Fatalf("ipfs %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunErr runs the ipfs CLI with optional stdin.
func (k *Kubo) RunErr(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.Bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.Repo, "IPFS_TELEMETRY=off")
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// AddOnlyHash computes, with the ipfs CLI itself, the CID of data under the
// format's add settings — an oracle independent of our code.
func (k *Kubo) AddOnlyHash(data []byte) string {
	k.t.Helper()
	out, err := k.RunErr(bytes.NewReader(data), "add", "-Q", "--only-hash", "--cid-version=1", "--raw-leaves", "--chunker=size-262144", "--hash=sha2-256")
	if err != nil {
		k.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}
