package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs-mirror/mirror/internal/reqcount"
)

// The rig: a kubo daemon and a CNCF distribution registry on 127.0.0.1,
// started the way internal/rig starts them for the tests (that package
// needs a testing.TB, so the recipe is repeated here).

// findTool finds an executable: env (if set), then PATH, then the CI cache.
func findTool(env, name string) (string, error) {
	if env != "" {
		if p := os.Getenv(env); p != "" {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "mirror-ci", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if env != "" {
		return "", fmt.Errorf("%s not found (set %s or put it on PATH; .ci/run installs it)", name, env)
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}

// proc is a long-running child (daemon) in its own process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log.Len() < 1<<20 {
		p.log.Write(b)
	}
	return len(b), nil
}

func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startProc starts cmd; ready (may be nil) is called with each output line
// until it returns true.
func startProc(cmd *exec.Cmd, ready func(line string) bool) (*proc, chan struct{}, error) {
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	readyCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p, line)
			if ready != nil && ready(line) {
				once.Do(func() { close(readyCh) })
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, readyCh, nil
}

// Stop ends the process group: SIGTERM, then SIGKILL after grace.
func (p *proc) Stop(grace time.Duration) {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// cpuSeconds is utime+stime of a live process, from /proc/PID/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// Fields after the command: state(3) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ is 100 on Linux
}

// kubo is a daemon on a fresh, offline, loopback-only repo.
type kubo struct {
	bin, repo string
	api       string // multiaddr
	apiURL    string // http://127.0.0.1:PORT
	p         *proc
}

func (k *kubo) env() []string {
	return append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off", "GOLOG_LOG_LEVEL=error")
}

// cli runs the ipfs CLI against the repo (and so the daemon).
func (k *kubo) cli(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func startKubo(ctx context.Context, bin, dir string) (*kubo, error) {
	k := &kubo{bin: bin, repo: filepath.Join(dir, "ipfs")}
	steps := [][]string{
		{"init", "--profile=test", "--empty-repo"},
		{"config", "--json", "Bootstrap", "[]"},
		{"config", "--json", "Routing.Type", `"none"`},
		{"config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`},
		{"config", "--json", "Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
		{"config", "--json", "Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
		{"config", "--json", "Discovery.MDNS.Enabled", "false"},
		{"config", "--json", "AutoConf.Enabled", "false"},
	}
	for _, s := range steps {
		if _, err := k.cli(ctx, nil, s...); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, "daemon", "--offline", "--migrate=false")
	cmd.Env = k.env()
	p, ready, err := startProc(cmd, func(l string) bool { return strings.Contains(l, "Daemon is ready") })
	if err != nil {
		return nil, fmt.Errorf("starting ipfs daemon: %w", err)
	}
	k.p = p
	select {
	case <-ready:
	case <-p.done:
		return nil, fmt.Errorf("ipfs daemon exited:\n%s", p.Log())
	case <-time.After(90 * time.Second):
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("ipfs daemon not ready in 90s:\n%s", p.Log())
	case <-ctx.Done():
		p.Stop(5 * time.Second)
		return nil, ctx.Err()
	}
	b, err := os.ReadFile(filepath.Join(k.repo, "api"))
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	k.api = strings.TrimSpace(string(b))
	hp := strings.TrimPrefix(k.api, "/ip4/")
	hp = strings.Replace(hp, "/tcp/", ":", 1)
	k.apiURL = "http://" + hp
	return k, nil
}

func (k *kubo) Stop() { k.p.Stop(15 * time.Second) }

// cpu is the daemon's CPU seconds so far.
func (k *kubo) cpu() float64 { return cpuSeconds(k.p.cmd.Process.Pid) }

// reset unpins everything and collects garbage, so that the next
// measurement writes every block again.
func (k *kubo) reset(ctx context.Context) error {
	out, err := k.cli(ctx, nil, "pin", "ls", "--type=recursive", "-q")
	if err != nil {
		return err
	}
	pins := strings.Fields(out)
	for len(pins) > 0 {
		n := min(len(pins), 200)
		if _, err := k.cli(ctx, nil, append([]string{"pin", "rm"}, pins[:n]...)...); err != nil {
			return err
		}
		pins = pins[n:]
	}
	if _, err = k.cli(ctx, nil, "repo", "gc", "-q"); err != nil {
		return err
	}
	// Write back what the previous contender left dirty (kubo's blocks,
	// skopeo's layout, the files gc removed), so that its disk work is not
	// billed to the next one.
	syscall.Sync()
	return nil
}

// registry is Debian's docker-registry (CNCF distribution 2.8).
type registry struct {
	host string // 127.0.0.1:PORT
	p    *proc
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startRegistry(ctx context.Context, bin, dir string) (*registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:%d
  secret: benchsecret
`, filepath.Join(dir, "data"), port)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	p, _, err := startProc(cmd, nil)
	if err != nil {
		return nil, err
	}
	r := &registry{host: fmt.Sprintf("127.0.0.1:%d", port), p: p}
	if err := waitHTTP(ctx, "http://"+r.host+"/v2/", 30*time.Second, p.done); err != nil {
		p.Stop(time.Second)
		return nil, fmt.Errorf("docker-registry: %w\n%s", err, p.Log())
	}
	return r, nil
}

func (r *registry) Stop() { r.p.Stop(5 * time.Second) }

// waitHTTP polls u until it answers (any status) or the process ends.
func waitHTTP(ctx context.Context, u string, limit time.Duration, done <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("exited before answering")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in %s: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// formatCounts prints counts sorted by key: "HEAD manifests=200, GET /v2/=1".
func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// countingProxy is a reverse proxy on 127.0.0.1 that counts every request
// before passing it to target (http://HOST:PORT).
type countingProxy struct {
	host string
	c    *reqcount.Counter
	srv  *http.Server
}

func startCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cp := &countingProxy{host: ln.Addr().String(), c: &reqcount.Counter{}}
	cp.srv = &http.Server{Handler: reqcount.Proxy(u, cp.c, nil), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = cp.srv.Serve(ln) }()
	return cp, nil
}

func (p *countingProxy) Stop() { _ = p.srv.Close() }
