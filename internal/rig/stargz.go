package rig

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Stargz is a running stargz snapshotter: our own main over
// stargz-snapshotter's service package (internal/stack/stargz-snapshotter,
// built by .ci/stack.sh into containerd-stargz-grpc), with ipfs = true.
type Stargz struct {
	// Socket is the gRPC unix socket containerd's proxy plugin dials.
	Socket string
	// Root is the snapshotter's root: snapshots and the FUSE mounts
	// (Root/snapshotter/snapshots/N/fs) live under it.
	Root string

	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// StargzPlugin is the proxy plugin's name in containerd's config, hence
// nerdctl's --snapshotter.
const StargzPlugin = "stargz"

// StartStargz starts the snapshotter (MIRROR_STARGZ_BIN) with ipfs = true,
// reading ipfs:// layers from the kubo RPC API ipfsAPI (a multiaddr, as
// Kubo.APIAddr), and returns its socket: pass
// ContainerdOptions{ProxyPlugins: map[string]string{StargzPlugin: socket}}.
func StartStargz(t testing.TB, ipfsAPI string) string {
	t.Helper()
	return StartStargzProc(t, ipfsAPI).Socket
}

// StartStargzProc is StartStargz, returning the process (for its log and
// root). Start it before containerd: its cleanup (stop, unmount every FUSE
// mount, remove the root) then runs after containerd has stopped.
func StartStargzProc(t testing.TB, ipfsAPI string) *Stargz {
	t.Helper()
	requireRoot(t)
	bin := Tool(t, "MIRROR_STARGZ_BIN", "containerd-stargz-grpc")
	dir := stackDir(t, "sgz")
	s := &Stargz{Socket: filepath.Join(dir, "stargz.sock"), Root: filepath.Join(dir, "root"), log: &lockedBuffer{}}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(StargzConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		UnmountUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	// debug: the resolve handler that served each layer is logged
	// ("contents is provided by a handler").
	s.cmd = exec.Command(bin, "-address", s.Socket, "-root", s.Root, "-config", cfg, "-ipfs-api", ipfsAPI, "-log-level", "debug")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// go-fuse falls back to fusermount3 when a direct mount fails.
	s.cmd.Env = os.Environ()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		StopGroup(s.cmd, s.done, 30*time.Second)
		if t.Failed() {
			t.Logf("stargz snapshotter log (tail):\n%s", tail(s.Log(), 60))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.Dial("unix", s.Socket)
		if err == nil {
			conn.Close()
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("stargz snapshotter exited:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stargz snapshotter did not listen on %s in 60s:\n%s", s.Socket, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StargzConfig is the snapshotter's config.toml: upstream's keys; ipfs =
// true turns the ipfs:// resolve handler on.
const StargzConfig = `# stargz snapshotter (containerd-stargz-grpc) config
ipfs = true
`

// Log returns what the snapshotter printed (JSON lines).
func (s *Stargz) Log() string { return s.log.String() }

// FuseMounts lists the FUSE mounts under the snapshotter's root: the
// lazily mounted layers (fstype fuse.rawBridge, source "stargz").
func (s *Stargz) FuseMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		line := sc.Text()
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		mp := unescapeMount(fields[4])
		if (mp == s.Root || strings.HasPrefix(mp, s.Root+"/")) && strings.HasPrefix(fields[sep+1], "fuse") {
			out = append(out, fmt.Sprintf("%s %s %s", mp, fields[sep+1], fields[sep+2]))
		}
	}
	return out
}
