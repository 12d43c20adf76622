package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// vmRSS reads a process's resident set size, in KiB.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// goroutineDump ends a serve with SIGQUIT (the Go runtime then prints every
// goroutine) and counts the goroutines it printed. Goroutines of idle
// client connections (serve's pool of connections to kubo) are not counted.
func goroutineDump(t *testing.T, p *serveProc) (int, string) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("mirror serve did not exit on SIGQUIT")
	}
	dump := p.stderr()
	if i := strings.Index(dump, "SIGQUIT"); i >= 0 {
		dump = dump[i:]
	}
	n := 0
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.HasPrefix(strings.TrimSpace(g), "goroutine ") && !strings.Contains(g, "net/http.(*persistConn).") {
			n++
		}
	}
	return n, dump
}

// TestE2EServeHostileBurst (issue 13, what it must show 2): the `mirror
// serve` binary under a bounded burst of every hostile class (negative and
// absurd sizes, an index child of negative size, a wide repeated tree in
// the url-free view, attacker URLs, a layer that does not match its
// digest, whole-blob and odd ranges, clients that hang up at once) on
// 127.0.0.1 stays up, keeps answering good requests, and its RSS and
// goroutine count come back to their baseline. A second serve that got only
// the good requests is the goroutine baseline (both are counted from the
// runtime's SIGQUIT dump). The figures are logged.
func TestE2EServeHostileBurst(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	store, err := kubo.New(k.APIAddr, kubo.Options{Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evilHits.Add(1) }))
	defer evil.Close()
	h := rig.BuildHostile(t, func(b []byte) cid.Cid {
		c, err := store.Add(context.Background(), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, evil.URL)
	env := []string{"IPFS_API=" + k.APIAddr, "GOTRACEBACK=all"}
	burst := startServe(t, env)
	quiet := startServe(t, env)
	client := &http.Client{Timeout: 10 * time.Second}
	good := func(p *serveProc) {
		t.Helper()
		for _, u := range []string{
			"/v2/ipfs/" + h.Good.String() + "/manifests/latest",
			"/v2/ipfs-nourls/" + h.Good.String() + "/manifests/latest",
			"/v2/ipfs/" + h.Good.String() + "/blobs/" + h.GoodConfig.Digest.String(),
		} {
			resp, err := client.Get("http://" + p.host + u)
			if err != nil {
				t.Fatalf("good request %s: %v", u, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("good request %s: %d", u, resp.StatusCode)
			}
		}
		resp, err := client.Get("http://" + p.host + "/v2/ipfs/" + h.Good.String() + "/blobs/" + h.GoodLayer.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, h.GoodBytes) {
			t.Fatalf("good layer: %d, %v", resp.StatusCode, err)
		}
	}
	for range 3 { // warm: trees resolved, layer on disk
		good(burst)
		good(quiet)
	}
	client.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	pid := burst.cmd.Process.Pid
	rssBefore := vmRSS(t, pid)

	type req struct {
		method, path string
		rng          string
	}
	var reqs []req
	for _, root := range []cid.Cid{h.NegativeSize, h.HugeSize, h.MaxSize} {
		for _, m := range []string{"GET", "HEAD"} {
			reqs = append(reqs, req{m, "/v2/ipfs/" + root.String() + "/blobs/" + h.BadLayer.String(), ""}, req{m, "/v2/ipfs/" + root.String() + "/blobs/" + h.BadLayer.String(), "bytes=0-"})
		}
	}
	reqs = append(reqs,
		req{"GET", "/v2/ipfs/" + h.NegativeChild.String() + "/manifests/latest", ""},
		req{"GET", "/v2/ipfs-nourls/" + h.NegativeChild.String() + "/manifests/latest", ""},
		req{"GET", "/v2/ipfs-nourls/" + h.Wide.String() + "/manifests/latest", ""},
		req{"GET", "/v2/ipfs/" + h.Wide.String() + "/manifests/latest", ""},
		req{"GET", "/v2/ipfs-nourls/" + h.URLs.String() + "/manifests/latest", ""},
		req{"GET", "/v2/ipfs/" + h.Mismatch.String() + "/blobs/" + h.GoodLayer.Digest.String(), ""},
		req{"GET", "/v2/ipfs/" + h.Mismatch.String() + "/blobs/" + h.GoodLayer.Digest.String(), "bytes=0-"},
		req{"GET", "/v2/ipfs/" + h.Good.String() + "/blobs/sha256:" + strings.Repeat("0", 64), ""},
		req{"DELETE", "/v2/ipfs/" + h.Good.String() + "/manifests/latest", ""},
	)
	for _, rng := range []string{"bytes=-0", "bytes=0-1,3-4", "items=0-1", "bytes=99999999-", "bytes=x-y", "bytes=0-"} {
		reqs = append(reqs, req{"GET", "/v2/ipfs/" + h.Good.String() + "/blobs/" + h.GoodLayer.Digest.String(), rng})
	}

	// The burst: 20 rounds of every request, 16 at a time, a third of the
	// clients hanging up after 20 ms; at most a minute.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var sent atomic.Int64
	var rssPeak atomic.Int64
	deadline := time.Now().Add(time.Minute)
	began := time.Now()
	hc := &http.Client{}
	for round := 0; round < 20 && time.Now().Before(deadline); round++ {
		for i, rq := range reqs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				timeout := 10 * time.Second
				if i%3 == 0 {
					timeout = 20 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				r, _ := http.NewRequestWithContext(ctx, rq.method, "http://"+burst.host+rq.path, nil)
				if rq.rng != "" {
					r.Header.Set("Range", rq.rng)
				}
				if resp, err := hc.Do(r); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<20))
					resp.Body.Close()
				}
				sent.Add(1)
			}()
		}
		if rss := vmRSS(t, pid); rss > rssPeak.Load() {
			rssPeak.Store(rss)
		}
		good(burst) // answered in the middle of the burst
	}
	wg.Wait()
	took := time.Since(began)
	if rss := vmRSS(t, pid); rss > rssPeak.Load() {
		rssPeak.Store(rss)
	}
	hc.CloseIdleConnections()
	good(burst)
	client.CloseIdleConnections()

	// Back to the baseline: RSS within 32 MiB of it (the Go runtime gives
	// memory back to the OS lazily) within 30 s.
	var rssAfter int64
	for end := time.Now().Add(30 * time.Second); ; {
		rssAfter = vmRSS(t, pid)
		if rssAfter <= rssBefore+32<<10 || time.Now().After(end) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // connections of the burst closed on the server's side
	gBurst, dump := goroutineDump(t, burst)
	gQuiet, _ := goroutineDump(t, quiet)
	t.Logf("burst: %d hostile requests in %s; VmRSS %d KiB before, %d KiB peak during, %d KiB after; goroutines after: %d (a serve that got only the good requests: %d)",
		sent.Load(), took.Round(time.Millisecond), rssBefore, rssPeak.Load(), rssAfter, gBurst, gQuiet)
	if rssAfter > rssBefore+32<<10 {
		t.Errorf("VmRSS %d KiB after the burst, %d KiB before", rssAfter, rssBefore)
	}
	if gBurst > gQuiet+2 {
		t.Errorf("%d goroutines after the burst, %d in a serve without it:\n%s", gBurst, gQuiet, dump)
	}
	if n := evilHits.Load(); n != 0 {
		t.Errorf("%d requests reached the URLs of the hostile tree", n)
	}
	if strings.Contains(burst.stderr(), "panic:") && !strings.Contains(burst.stderr(), "panic recovered") {
		t.Errorf("serve panicked:\n%s", burst.stderr())
	}
}
