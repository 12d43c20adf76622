package rig

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a registry on 127.0.0.1: Debian's docker-registry (CNCF
// distribution) when installed — always in CI — else go-containerregistry's
// in-process one.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// Real says it is CNCF distribution.
	Real bool

	cmd *exec.Cmd
	log *lockedBuffer
}

// RegistryOptions tune StartRegistry.
type RegistryOptions struct {
	// Htpasswd, when set, is an htpasswd file requiring basic auth.
	Htpasswd string
	// Handler wraps the registry (counting, fault injection); it gets the
	// real registry's reverse proxy.
	Wrap func(http.Handler) http.Handler
}

// StartRegistry starts a registry that lives as long as the test.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	bin := os.Getenv("MIRROR_REGISTRY_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("docker-registry")
	}
	if bin == "" {
		if InCI() {
			t.Fatal("docker-registry not found; .ci/run installs it (apt-get install docker-registry)")
		}
		if o.Htpasswd != "" {
			t.Skip("docker-registry not installed: needed for htpasswd auth")
		}
		var h http.Handler = registry.New(registry.Logger(nopLogger()))
		if o.Wrap != nil {
			h = o.Wrap(h)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return &Registry{Host: srv.Listener.Addr().String()}
	}
	dir := t.TempDir()
	port := FreePort(t)
	auth := ""
	if o.Htpasswd != "" {
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", o.Htpasswd)
	}
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:%d
  secret: testsecret
%s`, filepath.Join(dir, "data"), port, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), Real: true, log: &lockedBuffer{}}
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		_ = r.cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer: %v\n%s", err, r.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if o.Wrap != nil {
		// Put the wrapper in front: a proxy on another port.
		target := r.Host
		proxy := &http.Transport{}
		h := o.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			out := req.Clone(req.Context())
			out.URL.Scheme, out.URL.Host, out.RequestURI = "http", target, ""
			resp, err := proxy.RoundTrip(out)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = copyBuf(w, resp)
		}))
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		r.Host = srv.Listener.Addr().String()
	}
	return r
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
