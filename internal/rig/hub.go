package rig

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// FakeHub stands in for Docker Hub on 127.0.0.1: go-containerregistry's
// registry over TLS (a self-signed certificate), reached through an HTTP
// CONNECT proxy that sends Docker Hub's registry hosts to it and refuses
// every other host. A client given HTTPS_PROXY=Proxy (and unverified TLS)
// resolves docker.io/library/NAME:TAG as if from Docker Hub.
type FakeHub struct {
	// Proxy is the proxy's URL (http://127.0.0.1:PORT), for HTTPS_PROXY.
	Proxy string

	mu       sync.Mutex
	connects []string
}

// hubHosts are the hosts Docker Hub's registry is reached at.
var hubHosts = []string{"index.docker.io:443", "registry-1.docker.io:443"}

// StartFakeHub starts the registry and the proxy for the test's life.
func StartFakeHub(t testing.TB) *FakeHub {
	t.Helper()
	reg := httptest.NewUnstartedServer(registry.New(registry.Logger(nopLogger())))
	reg.Config.ErrorLog = nopLogger() // handshakes cut short at cleanup
	reg.StartTLS()
	t.Cleanup(reg.Close)
	target := reg.Listener.Addr().String()
	h := &FakeHub{}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.connects = append(h.connects, r.Method+" "+r.Host)
		h.mu.Unlock()
		if r.Method != http.MethodConnect || !slices.Contains(hubHosts, r.Host) {
			http.Error(w, "this proxy only reaches the fake Docker Hub", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			up.Close()
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, rw, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() {
			defer up.Close()
			defer conn.Close()
			done := make(chan struct{})
			go func() {
				_, _ = io.Copy(up, rw)
				close(done)
			}()
			_, _ = io.Copy(conn, up)
			<-done
		}()
	}))
	t.Cleanup(proxy.Close)
	h.Proxy = proxy.URL
	return h
}

// Connects lists the proxy's requests ("CONNECT host:port").
func (h *FakeHub) Connects() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.connects)
}

// Push writes an image or index to the fake hub under a Docker Hub
// reference (docker.io/library/NAME:TAG).
func (h *FakeHub) Push(t testing.TB, ref string, node any) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(h.Proxy)
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the fake hub's self-signed certificate
	defer tr.CloseIdleConnections()
	switch n := node.(type) {
	case v1.Image:
		err = remote.Write(r, n, remote.WithTransport(tr))
	case v1.ImageIndex:
		err = remote.WriteIndex(r, n, remote.WithTransport(tr))
	}
	if err != nil {
		t.Fatalf("pushing %s to the fake hub: %v", ref, err)
	}
	return Digest(t, node)
}
