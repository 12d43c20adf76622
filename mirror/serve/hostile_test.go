package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// evilServer counts the requests that reach the URLs a hostile tree lists.
type evilServer struct {
	*httptest.Server
	hits atomic.Int64
}

func startEvil(t *testing.T) *evilServer {
	e := &evilServer{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		_, _ = io.WriteString(w, "evil")
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *env) hostile(t *testing.T, evilURL string) *rig.Hostile {
	return rig.BuildHostile(t, func(b []byte) cid.Cid { return e.add(t, b) }, evilURL)
}

// isErrorJSON reports whether body is one registry error of code (any code
// when code is "").
func isErrorJSON(body []byte, code string) bool {
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	return json.Unmarshal(body, &e) == nil && len(e.Errors) == 1 && (code == "" || e.Errors[0].Code == code)
}

// TestHostileSizes (issue 13 item 1): descriptors with negative or absurd
// sizes never crash the server (before: a panic in the small-blob flight
// goroutine took the process down) and never reach a header (before: HEAD
// answered Content-Length: -1); they are refused with the error JSON.
func TestHostileSizes(t *testing.T) {
	e := startEnv(t)
	h := e.hostile(t, "http://127.0.0.1:1")
	s := startServer(t, e.store, serve.Options{BlobCacheDir: t.TempDir()})
	for name, root := range map[string]cid.Cid{"negative": h.NegativeSize, "huge": h.HugeSize, "maxint": h.MaxSize} {
		base := s.url + "/v2/ipfs/" + root.String() + "/blobs/" + h.BadLayer.String()
		for _, rng := range []string{"", "bytes=0-", "bytes=0-9", "bytes=-1", "bytes=1-"} {
			for _, method := range []string{"HEAD", "GET"} {
				req, _ := http.NewRequest(method, base, nil)
				if rng != "" {
					req.Header.Set("Range", rng)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s %s %q: %v", name, method, base, rng, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway || resp.ContentLength < 0 || resp.Header.Get("Content-Range") != "" ||
					(method == "GET" && !isErrorJSON(body, serve.CodeManifestInvalid)) {
					t.Errorf("%s size, %s %q: %d, Content-Length %d, Content-Range %q, %q", name, method, rng, resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Range"), body)
				}
			}
		}
		// The manifest itself is what its digest says: served (or, when
		// the format reader refuses such descriptors at resolve, refused
		// as invalid).
		if resp, body := get(t, "GET", s.url+"/v2/ipfs/"+root.String()+"/manifests/latest"); resp.StatusCode != 200 && !(resp.StatusCode == 502 && isErrorJSON(body, serve.CodeManifestInvalid)) {
			t.Errorf("%s: manifest %d %q", name, resp.StatusCode, body)
		}
		// As a mirror: 404, so the client falls back.
		lockless, _ := get(t, "GET", base+"?ns=docker.io")
		if lockless.StatusCode != 404 {
			t.Errorf("%s size as a mirror: %d", name, lockless.StatusCode)
		}
	}
	// An index child claiming -1 bytes: the resolve fails cleanly.
	for _, view := range []string{"ipfs", "ipfs-nourls"} {
		resp, body := get(t, "GET", s.url+"/v2/"+view+"/"+h.NegativeChild.String()+"/manifests/latest")
		if resp.StatusCode < 500 || !isErrorJSON(body, "") {
			t.Errorf("%s/negative child: %d %q", view, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, "GET", s.url+"/v2/"); resp.StatusCode != 200 {
		t.Fatalf("server down: %d", resp.StatusCode)
	}
	if l := s.log.String(); !strings.Contains(l, "impossible size") && !strings.Contains(l, "integrity failure") {
		t.Errorf("the refusals are not logged:\n%s", s.log.String())
	}
}

// panicStore panics on every read of one CID.
type panicStore struct {
	ipfs.Store
	bad cid.Cid
}

func (p panicStore) Cat(ctx context.Context, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	if ipfs.V1(c) == ipfs.V1(p.bad) {
		panic("boom: a bug somewhere below serve")
	}
	return p.Store.Cat(ctx, c, off, n)
}

// TestPanicRecovered (item 1): a panic anywhere below a handler — in the
// handler's goroutine (a large blob streams there) or in a goroutine serve
// started (a shared resolve, a shared small-blob read) — answers 500 with
// the error JSON and is logged; the server stays up. Before: a handler
// panic dropped the connection, a goroutine's panic ended the process.
func TestPanicRecovered(t *testing.T) {
	e := startEnv(t)
	h := e.hostile(t, "http://127.0.0.1:1")
	layerCID, _ := ipfs.ParseCID(h.GoodLayer.URLs[0])
	configCID, _ := ipfs.ParseCID(h.GoodConfig.URLs[0])
	for _, tc := range []struct {
		name, path string
		bad        cid.Cid
	}{
		{"handler (large blob)", "/blobs/" + h.GoodLayer.Digest.String(), layerCID},
		{"flight (small blob)", "/blobs/" + h.GoodConfig.Digest.String(), configCID},
		{"flight (resolve)", "/manifests/latest", h.Good},
	} {
		s := startServer(t, panicStore{Store: e.store, bad: tc.bad}, serve.Options{})
		resp, body := get(t, "GET", s.url+"/v2/ipfs/"+h.Good.String()+tc.path)
		if resp.StatusCode != 500 || !isErrorJSON(body, serve.CodeUnknown) {
			t.Errorf("%s: %d %q", tc.name, resp.StatusCode, body)
		}
		if resp, _ := get(t, "GET", s.url+"/v2/"); resp.StatusCode != 200 {
			t.Errorf("%s: server down after the panic", tc.name)
		}
		if l := s.log.String(); !strings.Contains(l, "panic") || !strings.Contains(l, "boom") {
			t.Errorf("%s: the panic is not logged:\n%s", tc.name, l)
		}
	}
}

// TestHostileTree (item 2): the url-free view of a small tree whose indexes
// repeat wide children several levels deep answers promptly (each document
// is rewritten once), and so do later requests. Before: it never answered
// (400^4 manifests rewritten), kept a core busy after the client left, and
// every later request for the view hung behind it.
func TestHostileTree(t *testing.T) {
	e := startEnv(t)
	h := e.hostile(t, "http://127.0.0.1:1")
	s := startServer(t, e.store, serve.Options{})
	client := &http.Client{Timeout: 20 * time.Second}
	for i := range 3 {
		start := time.Now()
		resp, err := client.Get(s.url + "/v2/ipfs-nourls/" + h.Wide.String() + "/manifests/latest")
		if err != nil {
			t.Fatalf("request %d for the url-free view: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Served, or refused as over the format reader's limits (a child
		// listed again counts again there): promptly, either way.
		if resp.StatusCode != 200 && !((resp.StatusCode == 502 || resp.StatusCode == 404) && isErrorJSON(body, "")) {
			t.Fatalf("request %d: %d %.200q", i, resp.StatusCode, body)
		}
		if resp.StatusCode == 200 {
			var idx ocispec.Index
			if err := json.Unmarshal(body, &idx); err != nil || len(idx.Manifests) != h.WideWidth || bytes.Contains(body, []byte("ipfs://")) {
				t.Fatalf("url-free wide index: %v, %d children", err, len(idx.Manifests))
			}
			// Walk down: every level is served, url-free, by digest.
			d := idx.Manifests[0].Digest
			for level := 1; level < h.WideDepth; level++ {
				r, b := get(t, "GET", s.url+"/v2/ipfs-nourls/"+h.Wide.String()+"/manifests/"+d.String())
				var x ocispec.Index
				if r.StatusCode != 200 || json.Unmarshal(b, &x) != nil || len(x.Manifests) != h.WideWidth || digest.FromBytes(b) != d {
					t.Fatalf("level %d: %d", level, r.StatusCode)
				}
				d = x.Manifests[0].Digest
			}
			r, b := get(t, "GET", s.url+"/v2/ipfs-nourls/"+h.Wide.String()+"/manifests/"+d.String())
			if r.StatusCode != 200 || bytes.Contains(b, []byte("ipfs://")) {
				t.Fatalf("leaf manifest: %d", r.StatusCode)
			}
		}
		t.Logf("request %d: %d in %s", i, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
}

// TestStripEveryURL (item 3): the url-free view lists no URL on an
// ordinary layer, a config or a manifest descriptor — not only no ipfs://
// one — so no client is sent to an address the tree's author chose; a
// foreign (non-distributable) layer keeps its http(s) URLs only. skopeo
// copies the url-free image without one request to those URLs.
func TestStripEveryURL(t *testing.T) {
	e := startEnv(t)
	evil := startEvil(t)
	h := e.hostile(t, evil.URL)
	s := startServer(t, e.store, serve.Options{})
	base := s.url + "/v2/ipfs-nourls/" + h.URLs.String()
	resp, body := get(t, "GET", base+"/manifests/latest")
	if resp.StatusCode != 200 || bytes.Contains(body, []byte("127.0.0.1")) || bytes.Contains(body, []byte(`"urls"`)) {
		t.Fatalf("url-free index: %d %s", resp.StatusCode, body)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatal(err)
	}
	resp, body = get(t, "GET", base+"/manifests/"+idx.Manifests[0].Digest.String())
	if resp.StatusCode != 200 || bytes.Contains(body, []byte(`"urls"`)) {
		t.Errorf("url-free manifest: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", s.url+"/v2/ipfs-nourls/"+h.Foreign.String()+"/manifests/latest")
	var m ocispec.Manifest
	if resp.StatusCode != 200 || json.Unmarshal(body, &m) != nil || len(m.Layers) != 2 {
		t.Fatalf("foreign: %d %s", resp.StatusCode, body)
	}
	if len(m.Config.URLs) != 0 || len(m.Layers[0].URLs) != 0 || fmt.Sprint(m.Layers[1].URLs) != "[https://foreign.example/layer]" {
		t.Errorf("foreign layer's manifest, url-free: config %v, layer %v, foreign layer %v", m.Config.URLs, m.Layers[0].URLs, m.Layers[1].URLs)
	}

	out := t.TempDir()
	if msg, err := skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+s.host+"/ipfs-nourls/"+h.URLs.String(), "dir:"+out); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, msg)
	}
	if b, err := os.ReadFile(filepath.Join(out, h.GoodLayer.Digest.Encoded())); err != nil || !bytes.Equal(b, h.GoodBytes) {
		t.Errorf("skopeo did not copy the layer from the registry: %v", err)
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("the client was sent to the tree's URLs: %d requests", n)
	}
}

// flipByte changes one byte of a file in place and puts its modification
// time back, as a careful tamperer (or a bad disk) would.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestDiskCacheTampered (item 4): a cached blob file changed between two
// requests is hashed again before it is served, found wrong, removed,
// logged, and the blob served from IPFS instead; a range covering a whole
// blob goes through the verified path; a deleted cache directory is made
// again. Before: the changed file was served as a full 200 of wrong bytes
// with no log line, `Range: bytes=0-` of a blob that does not match its
// digest was a 206 of all the wrong bytes, and a deleted directory ended
// the caching for good.
func TestDiskCacheTampered(t *testing.T) {
	e := startEnv(t)
	h := e.hostile(t, "http://127.0.0.1:1")
	dir := t.TempDir()
	cs := newCounting(e.store)
	s := startServer(t, cs, serve.Options{BlobCacheDir: dir})
	url := s.url + "/v2/ipfs/" + h.Good.String() + "/blobs/" + h.GoodLayer.Digest.String()
	file := filepath.Join(dir, "sha256", h.GoodLayer.Digest.Encoded())
	if resp, body := get(t, "GET", url); resp.StatusCode != 200 || !bytes.Equal(body, h.GoodBytes) {
		t.Fatalf("first GET: %d", resp.StatusCode)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("not cached: %v", err)
	}
	layerCID, _ := ipfs.ParseCID(h.GoodLayer.URLs[0])
	for i, hdr := range [][]string{nil, {"Range", "bytes=0-"}, {"Range", "bytes=100-199"}} {
		flipByte(t, file, int64(1000+i))
		before := cs.count(layerCID)
		resp, body := get(t, "GET", url, hdr...)
		want, status := h.GoodBytes, 200
		if hdr != nil {
			status = 206
			if hdr[1] == "bytes=100-199" {
				want = h.GoodBytes[100:200]
			}
		}
		if resp.StatusCode != status || !bytes.Equal(body, want) {
			t.Errorf("after a byte flipped in the cached file, %v: %d, right bytes %v", hdr, resp.StatusCode, bytes.Equal(body, want))
		}
		if cs.count(layerCID) == before {
			t.Errorf("%v: the changed file was served, not the blob from IPFS", hdr)
		}
		// Whole answers put the verified blob back; a partial one only
		// removes the changed file.
		if b, err := os.ReadFile(file); (err != nil || digest.FromBytes(b) != h.GoodLayer.Digest) && !(i == 2 && os.IsNotExist(err)) {
			t.Errorf("%v: the cache holds neither the verified blob nor nothing: %v", hdr, err)
		}
	}
	if n := strings.Count(s.log.String(), "changed since it was verified"); n < 3 {
		t.Errorf("%d log lines about the changed file, want 3:\n%s", n, s.log.String())
	}
	// Unchanged, the file is served without IPFS.
	get(t, "GET", url)
	before := cs.count(layerCID)
	if resp, body := get(t, "GET", url); resp.StatusCode != 200 || !bytes.Equal(body, h.GoodBytes) || cs.count(layerCID) != before {
		t.Errorf("unchanged cached file: %d, IPFS reads %d", resp.StatusCode, cs.count(layerCID)-before)
	}

	// The whole blob as a range, from a CID whose bytes do not match.
	os.RemoveAll(dir) // and the cache directory goes away meanwhile
	for _, rng := range []string{"bytes=0-", fmt.Sprintf("bytes=0-%d", h.GoodLayer.Size-1), "bytes=-" + strconv.FormatInt(h.GoodLayer.Size, 10)} {
		s2 := startServer(t, e.store, serve.Options{})
		req, _ := http.NewRequest("GET", s2.url+"/v2/ipfs/"+h.Mismatch.String()+"/blobs/"+h.GoodLayer.Digest.String(), nil)
		req.Header.Set("Range", rng)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, rerr := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if rerr == nil || n >= h.GoodLayer.Size {
			t.Errorf("%s of a blob that does not match its digest: %d, %d of %d bytes, %v: want a broken transfer", rng, r.StatusCode, n, h.GoodLayer.Size, rerr)
		}
	}
	// The deleted directory is made again and the blob kept there.
	if resp, body := get(t, "GET", url); resp.StatusCode != 200 || !bytes.Equal(body, h.GoodBytes) {
		t.Fatalf("GET after the cache directory went: %d", resp.StatusCode)
	}
	if b, err := os.ReadFile(file); err != nil || digest.FromBytes(b) != h.GoodLayer.Digest {
		t.Errorf("the deleted cache directory was not made again: %v", err)
	}
}

// rangeCase is one Range request and what any path must answer, for a blob
// of size n.
type rangeCase struct {
	hdr    []string
	status int
	from   int64 // body is blob[from:to] (to < 0: to the end)
	to     int64
	crange string // Content-Range, %d is the size
}

func rangeCases(n int64) []rangeCase {
	return []rangeCase{
		{nil, 200, 0, n, ""},
		{[]string{"Range", "bytes=0-0"}, 206, 0, 1, "bytes 0-0/%d"},
		{[]string{"Range", "bytes=10-19"}, 206, 10, 20, "bytes 10-19/%d"},
		{[]string{"Range", "bytes=10-"}, 206, 10, n, "bytes 10-" + strconv.FormatInt(n-1, 10) + "/%d"},
		{[]string{"Range", "bytes=0-"}, 206, 0, n, "bytes 0-" + strconv.FormatInt(n-1, 10) + "/%d"},
		{[]string{"Range", "bytes=-5"}, 206, n - 5, n, "bytes " + strconv.FormatInt(n-5, 10) + "-" + strconv.FormatInt(n-1, 10) + "/%d"},
		{[]string{"Range", fmt.Sprintf("bytes=-%d", n+100)}, 206, 0, n, "bytes 0-" + strconv.FormatInt(n-1, 10) + "/%d"},
		{[]string{"Range", fmt.Sprintf("bytes=5-%d", n+100)}, 206, 5, n, "bytes 5-" + strconv.FormatInt(n-1, 10) + "/%d"},
		{[]string{"Range", "bytes=-0"}, 416, 0, 0, "bytes */%d"},
		{[]string{"Range", fmt.Sprintf("bytes=%d-", n)}, 416, 0, 0, "bytes */%d"},
		{[]string{"Range", "bytes=20-10"}, 416, 0, 0, "bytes */%d"},
		{[]string{"Range", "bytes=x-y"}, 416, 0, 0, "bytes */%d"},
		{[]string{"Range", "bytes=-"}, 416, 0, 0, "bytes */%d"},
		{[]string{"Range", "bytes=0-1,3-4"}, 200, 0, n, ""},
		{[]string{"Range", "bytes=0-1, 5-"}, 200, 0, n, ""},
		{[]string{"Range", "items=0-1"}, 200, 0, n, ""},
		{[]string{"Range", "Bytes=0-1"}, 206, 0, 2, "bytes 0-1/%d"},
		{[]string{"Range", "bytes=0-1", "If-Range", `"sha256:0000"`}, 200, 0, n, ""},
	}
}

// TestRangeTable (item 5): every Range answer is the same whether the blob
// comes from IPFS, the disk cache, the small-blob cache or the documents
// of the tree: one parser, one error format (the JSON of RANGE_INVALID
// with Content-Range: bytes */SIZE). Before: bytes=-0, multi-range,
// unknown units and 416 bodies differed between cached and uncached blobs,
// and a cached bytes=-0 answered an impossible Content-Range.
func TestRangeTable(t *testing.T) {
	e := startEnv(t)
	h := e.hostile(t, "http://127.0.0.1:1")
	tree := e.treeOf(t, h.Good)
	md := tree.RootDescriptor
	noCache := startServer(t, e.store, serve.Options{})
	cached := startServer(t, e.store, serve.Options{BlobCacheDir: t.TempDir()})
	blobs := func(s *server, d digest.Digest) string {
		return s.url + "/v2/ipfs/" + h.Good.String() + "/blobs/" + d.String()
	}
	// Fill the caches.
	for _, u := range []string{blobs(cached, h.GoodLayer.Digest), blobs(cached, h.GoodConfig.Digest), blobs(noCache, h.GoodConfig.Digest)} {
		if resp, _ := get(t, "GET", u); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
	}
	if st := cached.Stats(); st.DiskBlobs != 1 {
		t.Fatalf("the layer is not in the disk cache: %+v", st)
	}
	fixed := func(u string) func() string { return func() string { return u } }
	_, config := get(t, "GET", blobs(noCache, h.GoodConfig.Digest))
	for _, p := range []struct {
		name string
		url  func() string
		data []byte
	}{
		{"ipfs (large, uncached)", fixed(blobs(noCache, h.GoodLayer.Digest)), h.GoodBytes},
		{"disk cache", fixed(blobs(cached, h.GoodLayer.Digest)), h.GoodBytes},
		{"small blob (first read)", func() string { return blobs(startServer(t, e.store, serve.Options{}), h.GoodConfig.Digest) }, config},
		{"small blob (cached)", fixed(blobs(noCache, h.GoodConfig.Digest)), config},
		{"document as a blob", fixed(blobs(noCache, md.Digest)), tree.Docs[md.Digest]},
		{"document as a manifest", fixed(noCache.url + "/v2/ipfs/" + h.Good.String() + "/manifests/" + md.Digest.String()), tree.Docs[md.Digest]},
	} {
		data := p.data
		n := int64(len(data))
		for _, tc := range rangeCases(n) {
			for _, method := range []string{"GET", "HEAD"} {
				resp, body := get(t, method, p.url(), tc.hdr...)
				what := fmt.Sprintf("%s, %s %q", p.name, method, tc.hdr)
				if resp.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d", what, resp.StatusCode, tc.status)
					continue
				}
				wantCR := ""
				if tc.crange != "" {
					wantCR = fmt.Sprintf(tc.crange, n)
				}
				if cr := resp.Header.Get("Content-Range"); cr != wantCR {
					t.Errorf("%s: Content-Range %q, want %q", what, cr, wantCR)
				}
				if tc.status == 416 {
					if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
						t.Errorf("%s: 416 as %q", what, ct)
					}
					if method == "GET" && !isErrorJSON(body, serve.CodeRangeInvalid) {
						t.Errorf("%s: 416 body %q", what, body)
					}
					continue
				}
				want := data[tc.from:tc.to]
				if resp.ContentLength != int64(len(want)) {
					t.Errorf("%s: Content-Length %d, want %d", what, resp.ContentLength, len(want))
				}
				if method == "GET" && !bytes.Equal(body, want) {
					t.Errorf("%s: %d bytes, not the %d wanted", what, len(body), len(want))
				}
			}
		}
	}
}

// TestHostileBurst (item 6, in process): a bounded burst of every hostile
// class above, alongside good pulls, leaves the server answering and its
// goroutines and heap back at their baseline. The figures are logged.
func TestHostileBurst(t *testing.T) {
	e := startEnv(t)
	evil := startEvil(t)
	h := e.hostile(t, evil.URL)
	dir := t.TempDir()
	s := startServer(t, e.store, serve.Options{BlobCacheDir: dir})
	good := s.url + "/v2/ipfs/" + h.Good.String() + "/blobs/" + h.GoodLayer.Digest.String()
	checkGood := func() {
		t.Helper()
		if resp, body := get(t, "GET", good); resp.StatusCode != 200 || !bytes.Equal(body, h.GoodBytes) {
			t.Fatalf("good request: %d", resp.StatusCode)
		}
	}
	checkGood()
	http.DefaultClient.CloseIdleConnections()
	base, baseHeap := settle(t, 0)
	reqs := hostileRequests(s.url, h)
	began := time.Now()
	stop := began.Add(30 * time.Second)
	var wg sync.WaitGroup
	var sent, peak atomic.Int64
	sem := make(chan struct{}, 16)
	client := &http.Client{Timeout: 5 * time.Second}
	for round := 0; round < 5 && time.Now().Before(stop); round++ {
		for i, rq := range reqs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if i%3 == 0 { // a third of the clients hang up at once
					ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
					defer cancel()
				}
				req, _ := http.NewRequestWithContext(ctx, rq.method, rq.url, nil)
				for k, v := range rq.hdr {
					req.Header.Set(k, v)
				}
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<20))
					resp.Body.Close()
				}
				sent.Add(1)
				if g := int64(runtime.NumGoroutine()); g > peak.Load() { // all, during
					peak.Store(g)
				}
			}()
		}
		checkGood()
	}
	wg.Wait()
	checkGood()
	client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	after, afterHeap := settle(t, base)
	t.Logf("burst: %d hostile requests in %s; goroutines (but idle client connections) %d before, %d after, all goroutines at the peak %d; live heap %d KiB before, %d KiB after",
		sent.Load(), time.Since(began).Round(time.Millisecond), base, after, peak.Load(), baseHeap>>10, afterHeap>>10)
	if after > base {
		t.Errorf("goroutines %d after the burst, %d before:\n%s", after, base, strings.Join(goroutines(), "\n\n"))
	}
	if afterHeap > baseHeap+64<<20 {
		t.Errorf("heap %d MiB after the burst, %d before", afterHeap>>20, baseHeap>>20)
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the tree's URLs", n)
	}
}

// settle waits (up to 15 s) for the goroutine count to come down to want
// (0: to stop changing) and returns it with the live heap. Goroutines of
// idle HTTP client connections (the test's, and the store's pool of
// connections to kubo, which grows with concurrency) are not counted.
func settle(t *testing.T, want int) (int, uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := -1
	for {
		runtime.GC()
		n := len(goroutines())
		if (want > 0 && n <= want) || (want == 0 && n == last) || time.Now().After(deadline) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return n, ms.HeapAlloc
		}
		last = n
		time.Sleep(200 * time.Millisecond)
	}
}

// goroutines returns the stacks of the live goroutines but those of idle
// client connections.
func goroutines() []string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn).") {
			continue
		}
		out = append(out, g)
	}
	return out
}

type hostileRequest struct {
	method, url string
	hdr         map[string]string
}

// hostileRequests lists one request of each hostile class against h.
func hostileRequests(base string, h *rig.Hostile) []hostileRequest {
	var out []hostileRequest
	add := func(method, path string, hdr ...string) {
		m := map[string]string{}
		for i := 0; i+1 < len(hdr); i += 2 {
			m[hdr[i]] = hdr[i+1]
		}
		out = append(out, hostileRequest{method, base + path, m})
	}
	for _, root := range []cid.Cid{h.NegativeSize, h.HugeSize, h.MaxSize} {
		add("GET", "/v2/ipfs/"+root.String()+"/blobs/"+h.BadLayer.String())
		add("HEAD", "/v2/ipfs/"+root.String()+"/blobs/"+h.BadLayer.String())
		add("GET", "/v2/ipfs/"+root.String()+"/blobs/"+h.BadLayer.String(), "Range", "bytes=0-")
	}
	add("GET", "/v2/ipfs/"+h.NegativeChild.String()+"/manifests/latest")
	add("GET", "/v2/ipfs-nourls/"+h.NegativeChild.String()+"/manifests/latest")
	add("GET", "/v2/ipfs-nourls/"+h.Wide.String()+"/manifests/latest")
	add("GET", "/v2/ipfs/"+h.Wide.String()+"/manifests/latest")
	add("GET", "/v2/ipfs-nourls/"+h.URLs.String()+"/manifests/latest")
	add("GET", "/v2/ipfs/"+h.Mismatch.String()+"/blobs/"+h.GoodLayer.Digest.String())
	add("GET", "/v2/ipfs/"+h.Mismatch.String()+"/blobs/"+h.GoodLayer.Digest.String(), "Range", "bytes=0-")
	for _, rng := range []string{"bytes=-0", "bytes=0-1,3-4", "items=0-1", "bytes=99999999-", "bytes=x-y"} {
		add("GET", "/v2/ipfs/"+h.Good.String()+"/blobs/"+h.GoodLayer.Digest.String(), "Range", rng)
		add("GET", "/v2/ipfs/"+h.Good.String()+"/blobs/"+h.GoodConfig.Digest.String(), "Range", rng)
	}
	add("GET", "/v2/ipfs/"+h.Good.String()+"/blobs/sha256:"+strings.Repeat("0", 64))
	add("GET", "/v2/ipfs/..%2f..%2fetc/manifests/latest")
	add("DELETE", "/v2/ipfs/"+h.Good.String()+"/manifests/latest")
	return out
}
