package rig

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real container stack (issue 12): a containerd daemon of the test's
// own, nerdctl talking to it, BuildKit's buildkitd with the containerd
// worker. Everything lives under one short directory of /tmp (unix socket
// paths are limited to 108 bytes), listens on unix sockets only, and is
// killed and unmounted when the test ends. It needs root (containerd,
// overlay mounts, runc).

// ContainerdOptions tune StartContainerd.
type ContainerdOptions struct {
	// ProxyPlugins are snapshotters served by another process: name →
	// unix socket (stargz-snapshotter's containerd-stargz-grpc).
	ProxyPlugins map[string]string
	// Snapshotter is the one nerdctl uses (default overlayfs).
	Snapshotter string
	// IPFSAddress is the kubo RPC API multiaddr nerdctl's ipfs:// commands
	// use (Kubo.APIAddr).
	IPFSAddress string
	// ExtraConfig is appended to containerd's config.toml (version 3).
	ExtraConfig string
}

// Containerd is a running containerd with its own root, state and socket.
type Containerd struct {
	t testing.TB
	// Dir holds everything: root, state, config, socket, nerdctl's
	// data root and hosts dir.
	Dir       string
	Address   string // the gRPC unix socket
	Namespace string
	// DataRoot is nerdctl's --data-root; HostsDir its --hosts-dir
	// (containerd's hosts.toml directory: HostsDir/<host>/hosts.toml).
	DataRoot, HostsDir string
	Snapshotter        string
	IPFSAddress        string

	nerdctl string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *lockedBuffer
}

// stackDir makes a short directory for sockets (and everything else).
func stackDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireRoot fails (CI) or skips the test when not root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatal("the container stack needs root")
	}
	t.Skip("the container stack needs root")
}

// StartContainerd starts containerd (MIRROR_CONTAINERD_BIN) with the runc
// shim (MIRROR_SHIM_BIN or next to containerd) and Debian's runc; it finds
// nerdctl (MIRROR_NERDCTL_BIN) for Nerdctl. Both are stopped, every
// container killed and every mount under Dir unmounted when the test ends.
func StartContainerd(t testing.TB, o ContainerdOptions) *Containerd {
	t.Helper()
	requireRoot(t)
	bin := Tool(t, "MIRROR_CONTAINERD_BIN", "containerd")
	shim := Tool(t, "MIRROR_SHIM_BIN", "containerd-shim-runc-v2")
	runc := Tool(t, "MIRROR_RUNC_BIN", "runc")
	dir := stackDir(t, "ctd")
	c := &Containerd{
		t:           t,
		Dir:         dir,
		Address:     filepath.Join(dir, "containerd.sock"),
		Namespace:   "mirror-test",
		DataRoot:    filepath.Join(dir, "nerdctl"),
		HostsDir:    filepath.Join(dir, "certs.d"),
		Snapshotter: o.Snapshotter,
		IPFSAddress: o.IPFSAddress,
		log:         &lockedBuffer{},
	}
	if c.Snapshotter == "" {
		c.Snapshotter = "overlayfs"
	}
	for _, d := range []string{c.DataRoot, c.HostsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := c.config(o)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Cleanup runs last-registered first: this one, registered before
	// the daemon starts, runs after the daemon is stopped.
	t.Cleanup(func() { c.removeDir() })
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The shim is found on PATH; runc by the shim, on PATH too.
	c.cmd.Env = append(os.Environ(), "PATH="+stackPath(shim, runc))
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	c.done = make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(c.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.Dial("unix", c.Address)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-c.done:
			t.Fatalf("containerd exited:\n%s", c.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not listen on %s in 60s:\n%s", c.Address, c.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// stackPath puts the directories of the given tools first on PATH.
func stackPath(bins ...string) string {
	var dirs []string
	seen := map[string]bool{}
	for _, b := range bins {
		d := filepath.Dir(b)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return strings.Join(append(dirs, os.Getenv("PATH")), string(os.PathListSeparator))
}

func (c *Containerd) config(o ContainerdOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version = 3
root = %q
state = %q
# No CRI (no kubelet here), no NRI (one socket per host, shared by all).
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.nri.v1.nri",
  "io.containerd.podsandbox.controller.v1.podsandbox",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "state"), c.Address, c.Address+".ttrpc", filepath.Join(c.Dir, "opt"))
	names := make([]string, 0, len(o.ProxyPlugins))
	for n := range o.ProxyPlugins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\n[proxy_plugins.%s]\n  type = \"snapshot\"\n  address = %q\n", n, o.ProxyPlugins[n])
	}
	if o.ExtraConfig != "" {
		b.WriteString("\n" + o.ExtraConfig + "\n")
	}
	return b.String()
}

// Log returns what containerd printed.
func (c *Containerd) Log() string { return c.log.String() }

// NerdctlArgs are the global flags every nerdctl run gets.
func (c *Containerd) NerdctlArgs() []string {
	return []string{
		"--address", c.Address,
		"--namespace", c.Namespace,
		"--data-root", c.DataRoot,
		"--hosts-dir", c.HostsDir,
		"--cgroup-manager", "cgroupfs",
		"--snapshotter", c.Snapshotter,
	}
}

// ipfsCommands take --ipfs-address: the subcommand path as nerdctl
// spells it.
var ipfsCommands = map[string]bool{
	"pull": true, "push": true, "run": true, "create": true,
	"image pull": true, "image push": true, "container run": true, "container create": true,
	"compose": true, // a persistent flag of compose: every subcommand
}

// withIPFS inserts --ipfs-address right after the subcommand when it is
// one that takes it.
func (c *Containerd) withIPFS(args []string) []string {
	if c.IPFSAddress == "" || len(args) == 0 {
		return args
	}
	for n := 2; n >= 1; n-- {
		if len(args) >= n && ipfsCommands[strings.Join(args[:n], " ")] {
			out := append([]string{}, args[:n]...)
			out = append(out, "--ipfs-address", c.IPFSAddress)
			return append(out, args[n:]...)
		}
	}
	return args
}

// NerdctlCmd builds a nerdctl command with the global flags (and
// --ipfs-address for the commands that take it).
func (c *Containerd) NerdctlCmd(ctx context.Context, args ...string) *exec.Cmd {
	if c.nerdctl == "" {
		c.nerdctl = Tool(c.t, "MIRROR_NERDCTL_BIN", "nerdctl")
	}
	full := append(c.NerdctlArgs(), c.withIPFS(args)...)
	cmd := exec.CommandContext(ctx, c.nerdctl, full...)
	// nerdctl's OCI hook runs nerdctl again (it passes the globals on);
	// the runtime is found on PATH. HOME and XDG dirs are the test's so
	// that no user configuration is read.
	home := filepath.Join(c.Dir, "home")
	_ = os.MkdirAll(home, 0o755)
	cmd.Env = append(os.Environ(),
		"PATH="+stackPath(c.nerdctl, Tool(c.t, "MIRROR_RUNC_BIN", "runc")),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"NERDCTL_TOML="+filepath.Join(c.Dir, "nerdctl.toml"),
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
	)
	return cmd
}

// NerdctlErr runs nerdctl (up to 5 minutes) and returns stdout, stderr.
func (c *Containerd) NerdctlErr(args ...string) (string, string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := c.NerdctlCmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// Nerdctl runs nerdctl and returns stdout; a failure fails the test with
// nerdctl's output and containerd's log.
func (c *Containerd) Nerdctl(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := c.NerdctlErr(args...)
	if err != nil {
		t.Fatalf("nerdctl %s: %v\nstdout:\n%s\nstderr:\n%s\ncontainerd log (tail):\n%s", strings.Join(args, " "), err, out, errOut, tail(c.Log(), 40))
	}
	return out
}

// Ctr runs containerd's ctr (MIRROR_CTR_BIN) against this daemon.
func (c *Containerd) Ctr(t testing.TB, args ...string) []byte {
	t.Helper()
	bin := Tool(t, "MIRROR_CTR_BIN", "ctr")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--address", c.Address, "--namespace", c.Namespace}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Content returns a blob of containerd's content store (ctr content get),
// and false when the store does not have it.
func (c *Containerd) Content(t testing.TB, digest string) ([]byte, bool) {
	t.Helper()
	bin := Tool(t, "MIRROR_CTR_BIN", "ctr")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--address", c.Address, "--namespace", c.Namespace, "content", "get", digest)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "not found") {
			return nil, false
		}
		t.Fatalf("ctr content get %s: %v\n%s", digest, err, stderr.String())
	}
	return out, true
}

// HostsTOML writes HostsDir/<host>/hosts.toml.
func (c *Containerd) HostsTOML(t testing.TB, host, content string) string {
	t.Helper()
	d := filepath.Join(c.HostsDir, host)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "hosts.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop removes every container (so that the shims exit), stops containerd,
// kills any shim of this daemon left, and unmounts what is mounted under
// Dir.
func (c *Containerd) stop() {
	select {
	case <-c.done:
	default:
		if c.nerdctl == "" {
			StopGroup(c.cmd, c.done, 15*time.Second)
			break
		}
		if ids, _, err := c.NerdctlErr("ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			_, _, _ = c.NerdctlErr(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		StopGroup(c.cmd, c.done, 15*time.Second)
	}
	killByArg(c.Address)
	if c.t.Failed() {
		c.t.Logf("containerd log (tail):\n%s", tail(c.Log(), 60))
	}
}

// removeDir unmounts everything under Dir (deepest first) and removes it.
func (c *Containerd) removeDir() {
	UnmountUnder(c.Dir)
	if err := os.RemoveAll(c.Dir); err != nil {
		c.t.Errorf("removing %s: %v", c.Dir, err)
	}
}

// killByArg kills the processes whose command line has arg as one of its
// words: the shims of one containerd, which outlive it by design (they
// are started detached, with -address SOCKET).
func killByArg(arg string) {
	pids := procsWithArg(arg)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Give the kernel a moment to reap them (they are not our children).
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if err := syscall.Kill(pid, 0); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// procsWithArg lists the processes whose command line has arg as one of
// its words.
func procsWithArg(arg string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, w := range bytes.Split(b, []byte{0}) {
			if string(w) == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// UnmountUnder lazily unmounts every mount point under dir, deepest
// first (container rootfs, overlay snapshots, FUSE mounts).
func UnmountUnder(dir string) {
	for range 3 {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return
		}
		sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
		for _, mp := range mps {
			_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	}
}

func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Buildkitd is a running buildkitd with the containerd worker.
type Buildkitd struct {
	// Address is unix://SOCKET, for nerdctl build --buildkit-host and
	// buildctl --addr.
	Address string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *lockedBuffer
}

// StartBuildkitd starts buildkitd (MIRROR_BUILDKITD_BIN) with the
// containerd worker only, on c's namespace, host networking for RUN steps
// (no CNI here), its own root and socket under c.Dir. It returns the
// address for --buildkit-host.
func StartBuildkitd(t testing.TB, c *Containerd) string {
	t.Helper()
	return StartBuildkitdProc(t, c).Address
}

// StartBuildkitdProc is StartBuildkitd, returning the process (for its
// log).
func StartBuildkitdProc(t testing.TB, c *Containerd) *Buildkitd {
	t.Helper()
	bin := Tool(t, "MIRROR_BUILDKITD_BIN", "buildkitd")
	runc := Tool(t, "MIRROR_RUNC_BIN", "runc")
	root := filepath.Join(c.Dir, "buildkit")
	sock := filepath.Join(c.Dir, "buildkitd.sock")
	b := &Buildkitd{Address: "unix://" + sock, log: &lockedBuffer{}}
	b.cmd = exec.Command(bin,
		"--root", root,
		"--addr", b.Address,
		"--oci-worker=false",
		"--containerd-worker=true",
		"--containerd-worker-addr", c.Address,
		"--containerd-worker-namespace", c.Namespace,
		"--containerd-worker-snapshotter", c.Snapshotter,
		"--containerd-worker-net", "host",
	)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.Env = append(os.Environ(), "PATH="+stackPath(runc))
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	b.done = make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	// Registered after containerd's: runs before containerd stops.
	t.Cleanup(func() {
		StopGroup(b.cmd, b.done, 15*time.Second)
		UnmountUnder(root)
		if t.Failed() {
			t.Logf("buildkitd log (tail):\n%s", tail(b.log.String(), 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			conn.Close()
			return b
		}
		select {
		case <-b.done:
			t.Fatalf("buildkitd exited:\n%s", b.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd did not listen in 60s:\n%s", b.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns what buildkitd printed.
func (b *Buildkitd) Log() string { return b.log.String() }
