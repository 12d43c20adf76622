package rig

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/reqcount"
)

// Counter counts requests by "METHOD kind" (see reqcount.Counter).
type Counter = reqcount.Counter

// KuboProxy puts a counting (and optionally intercepting) reverse proxy in
// front of a kubo RPC API; it returns the proxy's URL for --ipfs-api.
func KuboProxy(t testing.TB, k *Kubo, c *Counter, before func(r *http.Request)) string {
	t.Helper()
	u, err := url.Parse("http://" + strings.TrimPrefix(strings.Replace(strings.Replace(k.APIAddr, "/ip4/", "", 1), "/tcp/", ":", 1), "/"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reqcount.Proxy(u, c, before))
	t.Cleanup(srv.Close)
	return srv.URL
}
