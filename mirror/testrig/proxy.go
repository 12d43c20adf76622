package testrig

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Counter counts requests by "METHOD kind" where kind is manifests, blobs,
// tags, uploads, or the path for anything else (e.g. /api/v0/add).
type Counter struct {
	mu sync.Mutex
	m  map[string]int
}

// Add counts one request.
func (c *Counter) Add(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[r.Method+" "+kind(r.URL.Path)]++
}

func kind(p string) string {
	switch {
	case strings.Contains(p, "/blobs/uploads"):
		return "uploads"
	case strings.Contains(p, "/manifests/"):
		return "manifests"
	case strings.Contains(p, "/blobs/"):
		return "blobs"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	}
	return p
}

// Get returns the count of "METHOD kind".
func (c *Counter) Get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// Total is every request counted.
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

// Snapshot copies the counts.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// Counting returns a Wrap function for StartRegistry that counts requests.
func (c *Counter) Counting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Add(r)
		next.ServeHTTP(w, r)
	})
}

// KuboProxy puts a counting (and optionally intercepting) reverse proxy in
// front of a kubo RPC API; it returns the proxy's URL for --ipfs-api.
func KuboProxy(t testing.TB, k *Kubo, c *Counter, before func(r *http.Request)) string {
	t.Helper()
	u, err := url.Parse("http://" + strings.TrimPrefix(strings.Replace(strings.Replace(k.APIAddr, "/ip4/", "", 1), "/tcp/", ":", 1), "/"))
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c != nil {
			c.Add(r)
		}
		if before != nil {
			before(r)
		}
		// kubo answers an add while it still reads the upload: without
		// full duplex the server in front may cut the request body.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
