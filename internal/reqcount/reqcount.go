// Package reqcount counts HTTP requests by kind and puts a counting reverse
// proxy in front of a server. It is the part of the test rig that does not
// need package testing, so that the benchmark program (cmd/mirror-bench)
// uses the same counting as the tests.
package reqcount

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Counter counts requests by "METHOD kind" where kind is manifests, blobs,
// tags, uploads, or the path for anything else (e.g. /api/v0/add). The
// zero value is ready to use.
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
	c.m[r.Method+" "+Kind(r.URL.Path)]++
}

// Kind names what a registry request path asks for.
func Kind(p string) string {
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

// Counting wraps next so that c counts every request it serves.
func (c *Counter) Counting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Add(r)
		next.ServeHTTP(w, r)
	})
}

// Proxy is a reverse proxy to target that counts every request with c (nil:
// none) and calls before (nil: none) on it first. It streams both ways: it
// flushes at once, and runs full duplex, since kubo answers an add while it
// still reads the upload (without full duplex Go's server would drain the
// rest of the upload as soon as the answer starts).
func Proxy(target *url.URL, c *Counter, before func(*http.Request)) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c != nil {
			c.Add(r)
		}
		if before != nil {
			before(r)
		}
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
}
