// Package kubotest starts real kubo daemons for tests: one offline node, or
// several online nodes in a private swarm on 127.0.0.1 (swarm key,
// LIBP2P_FORCE_PNET=1, no bootstrap peers, Routing.Type=none, AutoConf and
// mDNS off), so nothing ever leaves loopback.
//
// The ipfs binary is $MIRROR_IPFS_BIN, else `ipfs` on PATH. Without one the
// test is skipped, unless CI=true, where that is a failure.
package kubotest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary returns the ipfs binary to use, or skips (fails under CI=true).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MIRROR_IPFS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("MIRROR_IPFS_BIN=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("ipfs"); err == nil {
		return p
	}
	Missing(t, "the ipfs binary (set MIRROR_IPFS_BIN or put ipfs on PATH)")
	return ""
}

// Missing skips the test for want of a tool, or fails it under CI=true.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s is missing", what)
	}
	t.Skipf("%s is missing", what)
}

// Options shape a node.
type Options struct {
	// Online starts the daemon with networking (for swarms); otherwise it
	// runs with --offline.
	Online bool
	// SwarmKey makes the node part of a private network (needs Online).
	SwarmKey []byte
}

// Node is one kubo repo and, while started, its daemon.
type Node struct {
	Bin  string
	Path string // IPFS_PATH
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	// API is the RPC multiaddr of the running daemon.
	API string
	// ID is the node's peer ID.
	ID string
}

// New initialises a repo (ipfs init --profile=test -e) without starting it.
func New(t testing.TB, opts Options) *Node {
	t.Helper()
	bin := Binary(t)
	n := &Node{Bin: bin, Path: filepath.Join(t.TempDir(), "ipfs"), opts: opts}
	n.Run(t, "init", "--profile=test", "-e")
	if opts.Online {
		// Nothing leaves loopback: no routers at all, peers are connected
		// by hand (swarm connect), content moves over bitswap.
		n.Run(t, "config", "Routing.Type", "none")
		n.Run(t, "config", "--json", "Swarm.Transports.Network.QUIC", "false")
		n.Run(t, "config", "--json", "Swarm.Transports.Network.WebTransport", "false")
		n.Run(t, "config", "--json", "Swarm.Transports.Network.WebRTCDirect", "false")
		n.Run(t, "config", "--json", "Swarm.RelayClient.Enabled", "false")
		n.Run(t, "config", "--json", "Swarm.RelayService.Enabled", "false")
		n.Run(t, "config", "--json", "Provide.Enabled", "false")
	}
	if len(opts.SwarmKey) > 0 {
		if err := os.WriteFile(filepath.Join(n.Path, "swarm.key"), opts.SwarmKey, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n.ID = n.Run(t, "config", "Identity.PeerID")
	return n
}

// Attach uses an existing repo (made by someone else, e.g. the embedded
// node) without starting it. Its addresses are moved to loopback port 0 and
// its bootstrap list emptied, so a daemon on it cannot collide or dial out.
func Attach(t testing.TB, repo string, opts Options) *Node {
	t.Helper()
	n := &Node{Bin: Binary(t), Path: repo, opts: opts}
	n.Run(t, "config", "--json", "Addresses.API", `"/ip4/127.0.0.1/tcp/0"`)
	n.Run(t, "config", "--json", "Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`)
	n.Run(t, "config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`)
	n.Run(t, "config", "--json", "Bootstrap", `[]`)
	n.Run(t, "config", "--json", "AutoConf.Enabled", `false`)
	n.ID = n.Run(t, "config", "Identity.PeerID")
	return n
}

// Start initialises a node and starts its daemon; the test's cleanup stops it.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	n := New(t, opts)
	n.Start(t)
	return n
}

// SwarmKey returns a fresh private-network key (the swarm.key format).
func SwarmKey(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(b) + "\n")
}

// Swarm starts count online nodes sharing one fresh swarm key. They are not
// connected: use Connect.
func Swarm(t testing.TB, count int) []*Node {
	t.Helper()
	key := SwarmKey(t)
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = Start(t, Options{Online: true, SwarmKey: key})
	}
	return nodes
}

// Env is the environment for this node's ipfs commands.
func (n *Node) Env() []string {
	env := []string{"IPFS_PATH=" + n.Path, "IPFS_TELEMETRY=off"}
	if len(n.opts.SwarmKey) > 0 {
		env = append(env, "LIBP2P_FORCE_PNET=1")
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "IPFS_PATH", "IPFS_TELEMETRY", "LIBP2P_FORCE_PNET", "IPFS_API":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Run runs an ipfs command against this repo (through the daemon when it
// runs) and returns its trimmed stdout; a failure fails the test.
func (n *Node) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.RunErr(nil, args...)
	if err != nil {
		t.Fatalf("ipfs %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunIn is Run with stdin.
func (n *Node) RunIn(t testing.TB, stdin io.Reader, args ...string) string {
	t.Helper()
	out, err := n.RunErr(stdin, args...)
	if err != nil {
		t.Fatalf("ipfs %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunErr runs an ipfs command and returns its trimmed stdout or an error
// carrying its stderr.
func (n *Node) RunErr(stdin io.Reader, args ...string) (string, error) {
	b, err := n.Output(stdin, args...)
	return strings.TrimSpace(string(b)), err
}

// Output runs an ipfs command and returns its raw stdout.
func (n *Node) Output(stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Env = n.Env()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Start runs the daemon and waits until its API answers.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		t.Fatal("kubotest: daemon already started")
	}
	args := []string{"daemon"}
	if !n.opts.Online {
		args = append(args, "--offline")
	}
	logf, err := os.OpenFile(filepath.Join(n.Path, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(n.Bin, args...)
	cmd.Env = n.Env()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ipfs daemon: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if strings.Contains(sc.Text(), "Daemon is ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done, n.log = cmd, done, logf
	t.Cleanup(func() { n.Stop(t) })

	select {
	case <-ready:
	case <-done:
		t.Fatalf("ipfs daemon exited early:\n%s", n.Log())
	case <-time.After(90 * time.Second):
		t.Fatalf("ipfs daemon not ready after 90s:\n%s", n.Log())
	}
	api, err := os.ReadFile(filepath.Join(n.Path, "api"))
	if err != nil {
		t.Fatalf("ipfs daemon wrote no api file: %v", err)
	}
	n.API = strings.TrimSpace(string(api))
}

// Stop stops the daemon (SIGTERM, then SIGKILL after 20s). Safe to call twice.
func (n *Node) Stop(t testing.TB) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		t.Logf("ipfs daemon %s did not stop on SIGTERM; killing it", n.Path)
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.log.Close()
	n.cmd, n.API = nil, ""
}

// Kill ends the daemon with SIGKILL, leaving its api file behind (a stale
// api file, as after a crash).
func (n *Node) Kill(t testing.TB) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	n.log.Close()
	n.cmd = nil
}

// Log returns what the daemon printed.
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Path, "daemon.log"))
	return string(b)
}

// SwarmAddr returns a loopback multiaddr of the running daemon, with /p2p/ID.
func (n *Node) SwarmAddr(t testing.TB) string {
	t.Helper()
	out := n.Run(t, "swarm", "addrs", "local", "--id")
	for _, a := range strings.Fields(out) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			return a
		}
	}
	t.Fatalf("no /ip4/127.0.0.1/tcp address in %q", out)
	return ""
}

// Connect connects n to other (both running, same swarm key).
func (n *Node) Connect(t testing.TB, other *Node) {
	t.Helper()
	n.Run(t, "swarm", "connect", other.SwarmAddr(t))
}
