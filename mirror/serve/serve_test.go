package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// pull reads an image or index the way a registry client does (ggcr's
// remote, which verifies every blob it reads) and returns its config and
// layer blobs by digest, plus the top digest.
func pull(ctx context.Context, ref string) (map[string][]byte, v1.Hash, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	desc, err := remote.Get(r, remote.WithContext(ctx))
	if err != nil {
		return nil, v1.Hash{}, err
	}
	out := map[string][]byte{}
	readImage := func(img v1.Image) error {
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		cn, err := img.ConfigName()
		if err != nil {
			return err
		}
		out[cn.String()] = cfg
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			d, _ := l.Digest()
			out[d.String()] = b
		}
		return nil
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		for _, m := range im.Manifests {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, v1.Hash{}, err
			}
			if err := readImage(img); err != nil {
				return nil, v1.Hash{}, err
			}
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		if err := readImage(img); err != nil {
			return nil, v1.Hash{}, err
		}
	}
	return out, desc.Digest, nil
}

func mustPull(t testing.TB, ref string) (map[string][]byte, v1.Hash) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, d, err := pull(ctx, ref)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return b, d
}

// sameBlobs checks that every source blob was pulled byte for byte.
func sameBlobs(t testing.TB, what string, src, got map[string][]byte) {
	t.Helper()
	for d, b := range src {
		g, ok := got[d]
		if !ok {
			t.Errorf("%s: blob %s missing", what, d)
			continue
		}
		if !bytes.Equal(g, b) {
			t.Errorf("%s: blob %s differs from the source", what, d)
		}
	}
}

// TestPull: a real client (ggcr's remote, in process) pulls a
// multi-platform image pushed with the real writer, over a real kubo
// daemon; every config and layer is byte-identical to the source, and the
// top digest is the IPFS-enabled index's.
func TestPull(t *testing.T) {
	e := startEnv(t)
	src := rig.MultiPlatform(t, 1, 1<<20+12345)
	res := e.push(t, src)
	s := startServer(t, e.store, serve.Options{})
	got, top := mustPull(t, s.host+"/ipfs/"+res.Root.String())
	sameBlobs(t, "ipfs/<CID>", rig.SourceBlobs(t, src), got)
	if top.String() != res.Target.Digest.String() {
		t.Errorf("top digest %s, want the IPFS-enabled index %s", top, res.Target.Digest)
	}
	// By digest, the same.
	got, _ = mustPull(t, s.host+"/ipfs/"+res.Root.String()+"@"+res.Target.Digest.String())
	sameBlobs(t, "ipfs/<CID>@digest", rig.SourceBlobs(t, src), got)
	// The url-free view: same blobs, new top digest, no ipfs:// anywhere.
	got, top = mustPull(t, s.host+"/ipfs-nourls/"+res.Root.String())
	sameBlobs(t, "ipfs-nourls/<CID>", rig.SourceBlobs(t, src), got)
	if top.String() == res.Target.Digest.String() {
		t.Error("ipfs-nourls served the stored index")
	}
}

// TestSkopeo: skopeo (containers/image) skips layers that carry urls when it
// copies to oci: — it takes them for foreign layers — so the stored view
// loses every layer; the url-free view gets them all, byte-identical.
func TestSkopeo(t *testing.T) {
	e := startEnv(t)
	src := rig.MultiPlatform(t, 2, 300<<10)
	res := e.push(t, src)
	s := startServer(t, e.store, serve.Options{})
	want := rig.SourceBlobs(t, src)

	dir := filepath.Join(t.TempDir(), "nourls")
	if out, err := skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+s.host+"/ipfs-nourls/"+res.Root.String(), "oci:"+dir+":latest"); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	sameBlobs(t, "skopeo ipfs-nourls/<CID>", want, rig.LayoutBlobs(t, dir))

	// With --strip-urls every name is url-free.
	s2 := startServer(t, e.store, serve.Options{StripURLs: true})
	dir = filepath.Join(t.TempDir(), "strip")
	if out, err := skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+s2.host+"/ipfs/"+res.Root.String(), "oci:"+dir+":latest"); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	sameBlobs(t, "skopeo --strip-urls ipfs/<CID>", want, rig.LayoutBlobs(t, dir))

	// The stored view: skopeo "succeeds" but leaves the layers out.
	dir = filepath.Join(t.TempDir(), "urls")
	if out, err := skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+s.host+"/ipfs/"+res.Root.String(), "oci:"+dir+":latest"); err != nil {
		t.Logf("skopeo copy of the stored view failed: %v\n%s", err, out)
	} else {
		blobs := rig.LayoutBlobs(t, dir)
		missing := 0
		for _, d := range layerDigests(t, src) {
			if _, ok := blobs[d]; !ok {
				missing++
			}
		}
		if missing == 0 {
			t.Error("skopeo copied every layer of the stored view: the urls caveat in docs/serve.md is out of date")
		}
	}
}

// TestHeaders: HEAD and GET headers, HEAD costs no IPFS read, and Range
// requests answer 206 with exactly the bytes asked.
func TestHeaders(t *testing.T) {
	e := startEnv(t)
	layer := rig.Layer(t, 7, 700<<10, false)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{layer}})
	res := e.push(t, rig.Index(t, false, img))
	cs := newCounting(e.store)
	// The layer is over SmallBlob: streamed, and ranges read from IPFS.
	s := startServer(t, cs, serve.Options{SmallBlob: 64 << 10})
	base := s.url + "/v2/ipfs/" + res.Root.String()
	tree := e.treeOf(t, res.Root)
	idxRaw := tree.Docs[res.Target.Digest]

	resp, body := get(t, "HEAD", base+"/manifests/latest")
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("HEAD latest: %d, %d body bytes", resp.StatusCode, len(body))
	}
	for k, want := range map[string]string{
		"Content-Type":                    ocispec.MediaTypeImageIndex,
		"Content-Length":                  fmt.Sprint(len(idxRaw)),
		"Docker-Content-Digest":           res.Target.Digest.String(),
		"Etag":                            `"` + res.Target.Digest.String() + `"`,
		"Docker-Distribution-Api-Version": "registry/2.0",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("HEAD latest: %s = %q, want %q", k, got, want)
		}
	}
	resp, body = get(t, "GET", base+"/manifests/"+res.Target.Digest.String())
	if resp.StatusCode != 200 || !bytes.Equal(body, idxRaw) {
		t.Fatalf("GET index by digest: %d, body equal %v", resp.StatusCode, bytes.Equal(body, idxRaw))
	}
	md, _ := firstManifest(t, tree)
	resp, body = get(t, "GET", base+"/manifests/"+md.Digest.String())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != md.MediaType || digest.FromBytes(body) != md.Digest {
		t.Fatalf("GET manifest: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), digest.FromBytes(body))
	}
	// Manifests are blobs too.
	resp, body = get(t, "GET", base+"/blobs/"+md.Digest.String())
	if resp.StatusCode != 200 || digest.FromBytes(body) != md.Digest {
		t.Fatalf("GET manifest as blob: %d", resp.StatusCode)
	}

	ld, _ := layer.Digest()
	lsize, _ := layer.Size()
	rc, _ := layer.Compressed()
	lbytes, _ := io.ReadAll(rc)
	rc.Close()
	blobURL := base + "/blobs/" + ld.String()
	before := cs.total()
	resp, body = get(t, "HEAD", blobURL)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != fmt.Sprint(lsize) ||
		resp.Header.Get("Docker-Content-Digest") != ld.String() || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("HEAD blob: %d %v", resp.StatusCode, resp.Header)
	}
	if n := cs.total() - before; n != 0 {
		t.Errorf("HEAD blob read IPFS %d times, want 0", n)
	}
	resp, body = get(t, "GET", blobURL)
	if resp.StatusCode != 200 || !bytes.Equal(body, lbytes) {
		t.Fatalf("GET blob: %d, equal %v", resp.StatusCode, bytes.Equal(body, lbytes))
	}

	for _, tc := range []struct {
		rng        string
		start, end int64 // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=0-99", 0, 99},
		{"bytes=262140-262150", 262140, 262150}, // across a 256 KiB chunk
		{"bytes=524000-", 524000, lsize - 1},
		{"bytes=-10", lsize - 10, lsize - 1},
		{fmt.Sprintf("bytes=%d-%d", lsize-5, lsize+100), lsize - 5, lsize - 1},
	} {
		resp, body := get(t, "GET", blobURL, "Range", tc.rng)
		want := lbytes[tc.start : tc.end+1]
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want) {
			t.Errorf("%s: %d, %d bytes (want 206, %d exact bytes)", tc.rng, resp.StatusCode, len(body), len(want))
			continue
		}
		if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, lsize) {
			t.Errorf("%s: Content-Range %q", tc.rng, cr)
		}
		if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(want)) {
			t.Errorf("%s: Content-Length %q", tc.rng, cl)
		}
	}
	resp, body = get(t, "GET", blobURL, "Range", fmt.Sprintf("bytes=%d-", lsize))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", lsize) || errCode(t, body) != serve.CodeRangeInvalid {
		t.Errorf("unsatisfiable range: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp, body = get(t, "HEAD", blobURL, "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Length") != "10" {
		t.Errorf("HEAD with range: %d %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	// Several ranges are answered whole (RFC 9110 allows it).
	resp, body = get(t, "GET", blobURL, "Range", "bytes=0-1,5-6")
	if resp.StatusCode != 200 || !bytes.Equal(body, lbytes) {
		t.Errorf("multi-range: %d", resp.StatusCode)
	}
	if n := cs.total() - before; n != 8 {
		t.Errorf("%d IPFS reads for one GET and 7 ranges", n)
	}
	resp, _ = get(t, "GET", blobURL, "If-None-Match", `"`+ld.String()+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	resp, _ = get(t, "GET", base+"/manifests/latest", "If-None-Match", `"`+res.Target.Digest.String()+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("manifest If-None-Match: %d", resp.StatusCode)
	}
	resp, body = get(t, "GET", s.url+"/v2/")
	if resp.StatusCode != 200 || string(body) != "{}" || resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		t.Errorf("/v2/: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", base+"/tags/list")
	if resp.StatusCode != 200 || string(body) != `{"name":"ipfs/`+res.Root.String()+`","tags":["latest"]}` {
		t.Errorf("tags/list: %d %s", resp.StatusCode, body)
	}
}

// TestErrors: every error answer is the spec's JSON with the right status
// and code, and writes are refused.
func TestErrors(t *testing.T) {
	e := startEnv(t)
	layer := rig.Layer(t, 8, 1000, false)
	res := e.push(t, rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{layer}}))
	ld, _ := layer.Digest()
	lc := e.add(t, []byte("not an image"))
	missing := e.k.AddOnlyHash([]byte("never added"))
	lock := filepath.Join(t.TempDir(), "mirrors.lock")
	writeLock(t, lock, lockEntry{"docker.io/library/alpine:3.20", "plain", res.Root.String()})
	s := startServer(t, e.store, serve.Options{Locks: []string{lock}})
	root := res.Root.String()
	unknown := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/v2/ipfs/" + root + "/blobs/uploads/", 405, serve.CodeUnsupported},
		{"PUT", "/v2/ipfs/" + root + "/manifests/latest", 405, serve.CodeUnsupported},
		{"PATCH", "/v2/ipfs/" + root + "/blobs/uploads/x", 405, serve.CodeUnsupported},
		{"DELETE", "/v2/ipfs/" + root + "/manifests/" + res.Target.Digest.String(), 405, serve.CodeUnsupported},
		{"DELETE", "/v2/library/alpine/manifests/3.20", 405, serve.CodeUnsupported},
		{"GET", "/v2/ipfs/notacid/manifests/latest", 400, serve.CodeNameInvalid},
		{"GET", "/v2/ipfs/" + root + "/sub/manifests/latest", 400, serve.CodeNameInvalid},
		{"GET", "/v2/ipfs/../../etc/manifests/latest", 400, serve.CodeNameInvalid},
		{"GET", "/v2/ipfs/" + root + "%2Fsub/manifests/latest", 400, serve.CodeNameInvalid},
		{"GET", "/v2/ipfs/" + root + "/manifests/v1", 404, serve.CodeManifestUnknown},
		{"GET", "/v2/ipfs/" + root + "/manifests/" + unknown, 404, serve.CodeManifestUnknown},
		{"GET", "/v2/ipfs/" + root + "/manifests/" + ld.String(), 404, serve.CodeManifestUnknown},
		{"GET", "/v2/ipfs/" + root + "/manifests/sha256:zz", 400, serve.CodeDigestInvalid},
		{"GET", "/v2/ipfs/" + root + "/manifests/bad%20tag", 400, serve.CodeNameInvalid},
		{"GET", "/v2/ipfs/" + root + "/blobs/" + unknown, 404, serve.CodeBlobUnknown},
		{"GET", "/v2/ipfs/" + root + "/blobs/latest", 400, serve.CodeDigestInvalid},
		{"GET", "/v2/ipfs/" + missing + "/manifests/latest", 404, serve.CodeManifestUnknown},
		{"GET", "/v2/ipfs/" + missing + "/blobs/" + ld.String(), 404, serve.CodeBlobUnknown},
		{"GET", "/v2/ipfs/" + missing + "/tags/list", 404, serve.CodeNameUnknown},
		{"GET", "/v2/ipfs/" + lc.String() + "/manifests/latest", 404, serve.CodeNameUnknown},
		{"GET", "/v2/ipns/k51qzi5uqu5dj69ytzs596g7g2q6ns5fy0a0lolv2y75o1il9jmfnahajfwl2q/manifests/latest", 403, serve.CodeDenied},
		{"GET", "/v2/library/nginx/manifests/latest", 404, serve.CodeNameUnknown},
		{"GET", "/v2/library/nginx/manifests/latest?ns=docker.io", 404, serve.CodeNameUnknown},
		{"GET", "/v2/ipfs/kubo/manifests/latest?ns=docker.io", 404, serve.CodeNameUnknown},
		{"GET", "/v2/library/alpine/manifests/3.19", 404, serve.CodeManifestUnknown},
		{"GET", "/v2/library/alpine/manifests/" + unknown + "?ns=docker.io", 404, serve.CodeManifestUnknown},
		{"GET", "/v2/library/alpine/blobs/" + unknown + "?ns=docker.io", 404, serve.CodeBlobUnknown},
		{"GET", "/v2/Not_Valid/manifests/latest", 400, serve.CodeNameInvalid},
		{"GET", "/v2/_catalog?n=x", 400, serve.CodeUnsupported},
		{"GET", "/v2/ipfs/" + root + "/referrers/" + unknown, 404, serve.CodeUnsupported},
		{"GET", "/index.html", 404, serve.CodeUnsupported},
	} {
		resp, body := get(t, tc.method, s.url+tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if got := errCode(t, body); got != tc.code {
			t.Errorf("%s %s: code %s, want %s", tc.method, tc.path, got, tc.code)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
		if resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
			t.Errorf("%s %s: no Docker-Distribution-API-Version", tc.method, tc.path)
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, resp.Header.Get("Allow"))
		}
	}
	// HEAD errors: status only.
	resp, body := get(t, "HEAD", s.url+"/v2/ipfs/"+root+"/blobs/"+unknown)
	if resp.StatusCode != 404 || len(body) != 0 {
		t.Errorf("HEAD unknown blob: %d, %d bytes", resp.StatusCode, len(body))
	}
	// A tree over MaxTreeBytes is refused, not held.
	small := startServer(t, e.store, serve.Options{MaxTreeBytes: 600})
	resp, body = get(t, "GET", small.url+"/v2/ipfs/"+root+"/manifests/latest")
	if resp.StatusCode != http.StatusBadGateway || errCode(t, body) != serve.CodeManifestInvalid || !strings.Contains(string(body), "too large") {
		t.Errorf("tree over MaxTreeBytes: %d %s", resp.StatusCode, body)
	}
	// Every request is logged, with its status.
	if !strings.Contains(s.log.String(), "status=405") || !strings.Contains(s.log.String(), "code=NAME_INVALID") {
		t.Errorf("access log lacks lines:\n%s", s.log.String())
	}
}

// failing is a store whose node is down.
type failing struct{ ipfs.Store }

func (failing) Cat(context.Context, cid.Cid, int64, int64) (io.ReadCloser, error) {
	return nil, fmt.Errorf("ipfs cat: %w: connection refused", ipfs.ErrUnavailable)
}

// TestUnavailable: with the node down, a direct client is told 503
// UNAVAILABLE, while a containerd mirror request (?ns=) gets a 404 so that
// containerd falls back to the upstream registry.
func TestUnavailable(t *testing.T) {
	c := testCID(t, "x")
	lock := filepath.Join(t.TempDir(), "mirrors.lock")
	writeLock(t, lock, lockEntry{"docker.io/library/alpine:3.20", "plain", c.String()})
	s := startServer(t, failing{}, serve.Options{Locks: []string{lock}})
	resp, body := get(t, "GET", s.url+"/v2/library/alpine/manifests/3.20")
	if resp.StatusCode != 503 || errCode(t, body) != serve.CodeUnavailable {
		t.Errorf("direct: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", s.url+"/v2/library/alpine/manifests/3.20?ns=docker.io")
	if resp.StatusCode != 404 || errCode(t, body) != serve.CodeManifestUnknown {
		t.Errorf("as a mirror: %d %s", resp.StatusCode, body)
	}
}

// TestTampered: content on IPFS that does not match the digests its parent
// claims is never served as valid.
func TestTampered(t *testing.T) {
	e := startEnv(t)
	big := rig.Layer(t, 20, 2<<20, false) // streamed (over SmallBlob)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{big, rig.Layer(t, 21, 1000, false)}})
	res := e.push(t, rig.Index(t, false, img))
	tree := e.treeOf(t, res.Root)
	md, m := firstManifest(t, tree)

	// A manifest whose big layer's URL names other bytes of the same size
	// (the digest and size still claim the real layer), and whose config
	// URL names other bytes too.
	other := rig.RandomBytes(99, int(m.Layers[0].Size))
	bad := m
	bad.Layers = slices.Clone(m.Layers)
	bad.Layers[0].URLs = []string{ipfs.URL(e.add(t, other))}
	bad.Config.URLs = []string{ipfs.URL(e.add(t, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)))}
	badManifest := e.addDoc(t, ocispec.MediaTypeImageManifest, bad)
	badRoot := e.rootOf(t, badManifest)

	cs := newCounting(e.store)
	keep := t.TempDir()
	s := startServer(t, cs, serve.Options{BlobCacheDir: keep})
	base := s.url + "/v2/ipfs/" + badRoot.String()
	defer func() {
		// Nothing of a blob that failed its check stays on disk.
		var left []string
		_ = filepath.WalkDir(keep, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("the disk cache kept %v after only tampered transfers", left)
		}
	}()

	// The manifest itself is fine: it is what its descriptor says.
	resp, _ := get(t, "GET", base+"/manifests/latest")
	if resp.StatusCode != 200 {
		t.Fatalf("manifest: %d", resp.StatusCode)
	}
	// The big layer: the transfer is cut short, never complete.
	req, _ := http.NewRequest("GET", base+"/blobs/"+m.Layers[0].Digest.String(), nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, rerr := io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || rerr == nil || n >= m.Layers[0].Size {
		t.Errorf("tampered layer: status %d, read %d of %d bytes, error %v: want a broken transfer", r.StatusCode, n, m.Layers[0].Size, rerr)
	}
	// The small config: refused before the first byte.
	resp, body := get(t, "GET", base+"/blobs/"+m.Config.Digest.String())
	if resp.StatusCode != http.StatusBadGateway || errCode(t, body) != serve.CodeBlobUnknown {
		t.Errorf("tampered config: %d %s", resp.StatusCode, body)
	}
	// A client pull fails.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := pull(ctx, s.host+"/ipfs/"+badRoot.String()); err == nil {
		t.Error("pulling the tampered image succeeded")
	}
	if st := s.Stats(); st.IntegrityFailures < 2 {
		t.Errorf("IntegrityFailures = %d", st.IntegrityFailures)
	}
	if l := s.log.String(); !strings.Contains(l, "integrity failure") || !strings.Contains(l, bad.Layers[0].URLs[0][len("ipfs://"):]) {
		t.Errorf("log lacks the integrity failure with its CID:\n%s", l)
	}

	// Ranges cannot be checked against the whole digest: served as IPFS has
	// them by default, refused with VerifyRanges.
	resp, body = get(t, "GET", base+"/blobs/"+m.Layers[0].Digest.String(), "Range", "bytes=0-99")
	if resp.StatusCode != 206 || !bytes.Equal(body, other[:100]) {
		t.Errorf("range of the tampered layer: %d", resp.StatusCode)
	}
	sv := startServer(t, e.store, serve.Options{VerifyRanges: true})
	resp, body = get(t, "GET", sv.url+"/v2/ipfs/"+badRoot.String()+"/blobs/"+m.Layers[0].Digest.String(), "Range", "bytes=0-99")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("VerifyRanges, tampered layer: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", sv.url+"/v2/ipfs/"+res.Root.String()+"/blobs/"+m.Layers[0].Digest.String(), "Range", "bytes=0-99")
	rc, _ := big.Compressed()
	bigBytes, _ := io.ReadAll(rc)
	if resp.StatusCode != 206 || !bytes.Equal(body, bigBytes[:100]) {
		t.Errorf("VerifyRanges, good layer: %d", resp.StatusCode)
	}

	// A manifest whose URL names a different manifest: refused.
	otherImg := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 22, 100, false)}})
	otherRes := e.push(t, otherImg)
	lie := md
	lie.URLs = otherRes.Target.URLs
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{lie}}
	idx.SchemaVersion = 2
	lieRoot := e.rootOf(t, e.addDoc(t, ocispec.MediaTypeImageIndex, idx))
	resp, body = get(t, "GET", s.url+"/v2/ipfs/"+lieRoot.String()+"/manifests/latest")
	if resp.StatusCode != http.StatusBadGateway || errCode(t, body) != serve.CodeManifestInvalid {
		t.Errorf("tampered manifest: %d %s", resp.StatusCode, body)
	}
}

// TestCache: a repeated pull walks no tree (no IPFS read of the root,
// index or manifests) and re-reads no small blob; concurrent first
// requests share one resolve.
func TestCache(t *testing.T) {
	e := startEnv(t)
	src := rig.MultiPlatform(t, 3, 1500<<10)
	res := e.push(t, src)
	tree := e.treeOf(t, res.Root)
	cs := newCounting(e.store)
	s := startServer(t, cs, serve.Options{})

	// 20 clients ask for a tree not yet resolved: one resolve.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := get(t, "GET", s.url+"/v2/ipfs/"+res.Root.String()+"/manifests/latest")
			if resp.StatusCode != 200 {
				t.Errorf("concurrent manifest: %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if n := cs.count(res.Root); n != 1 {
		t.Errorf("20 concurrent first requests read the root %d times, want 1", n)
	}
	mustPull(t, s.host+"/ipfs/"+res.Root.String())
	docs := map[string]int{res.Root.String(): cs.count(res.Root)}
	small := map[string]int{}
	for d, desc := range tree.Descs {
		c, err := manifests.CID(desc)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tree.Docs[d]; ok {
			docs[c.String()] = cs.count(c)
		} else if desc.Size <= 1<<20 {
			small[c.String()] = cs.count(c)
		}
	}
	resolves := s.Stats().Resolves
	for range 3 {
		mustPull(t, s.host+"/ipfs/"+res.Root.String())
	}
	for c, n := range docs {
		id, _ := ipfs.ParseCID(c)
		if got := cs.count(id); got != n || n != 1 {
			t.Errorf("document %s read %d times after 4 pulls (%d after the first), want 1", c, got, n)
		}
	}
	for c, n := range small {
		id, _ := ipfs.ParseCID(c)
		if got := cs.count(id); got != n {
			t.Errorf("small blob %s read again: %d → %d", c, n, got)
		}
	}
	if st := s.Stats(); st.Resolves != resolves || st.Resolves != 1 || st.ImageHits == 0 || st.BlobHits == 0 {
		t.Errorf("stats %+v, want 1 resolve and cache hits", st)
	}
	// A CIDv0 spelling of the same root is the same cache entry.
	// (Covered for real roots in TestCIDv0.)
}

// TestLoad: 50 concurrent pulls of one image and 20 of different images
// all finish, verified, within the bound.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	e := startEnv(t)
	one := rig.MultiPlatform(t, 100, 1200<<10) // streamed layers (over SmallBlob) and small cached ones
	oneRes := e.push(t, one)
	var roots []string
	var srcs []map[string][]byte
	for i := range 20 {
		img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, uint64(1000+i), 200<<10, false), rig.Layer(t, uint64(2000+i), 1500<<10, false)}})
		roots = append(roots, e.push(t, img).Root.String())
		srcs = append(srcs, rig.SourceBlobs(t, img))
	}
	oneSrc := rig.SourceBlobs(t, one)
	s := startServer(t, e.store, serve.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, 70)
	for i := range 70 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref, want := s.host+"/ipfs/"+oneRes.Root.String(), oneSrc
			if i >= 50 {
				ref, want = s.host+"/ipfs/"+roots[i-50], srcs[i-50]
			}
			got, _, err := pull(ctx, ref)
			if err != nil {
				errc <- fmt.Errorf("pull %d: %w", i, err)
				return
			}
			for d, b := range want {
				if !bytes.Equal(got[d], b) {
					errc <- fmt.Errorf("pull %d: blob %s differs", i, d)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st := s.Stats()
	t.Logf("70 concurrent pulls in %s; stats %+v", time.Since(start).Round(time.Millisecond), st)
	if st.Resolves != 21 {
		t.Errorf("%d resolves for 21 images", st.Resolves)
	}
}

type lockEntry struct{ source, mode, cid string }

// writeLock writes a lockfile (version 1) atomically.
func writeLock(t testing.TB, path string, entries ...lockEntry) {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nimages:\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "  - source: %s\n    mode: %s\n    digest: sha256:%s\n    platforms: []\n    cid: %s\n", e.source, e.mode, strings.Repeat("0", 64), e.cid)
	}
	if len(entries) == 0 {
		b.Reset()
		b.WriteString("version: 1\nimages: []\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestLockNames: lockfile entries are served under their registry names,
// in every form clients send, and a changed lockfile is picked up.
func TestLockNames(t *testing.T) {
	e := startEnv(t)
	alpine := rig.MultiPlatform(t, 30, 100<<10)
	app := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 31, 2000, false)}})
	a, b := e.push(t, alpine), e.push(t, app)
	lock := filepath.Join(t.TempDir(), "mirrors.lock")
	writeLock(t, lock,
		lockEntry{"docker.io/library/alpine:3.20", "plain", a.Root.String()},
		lockEntry{"docker.io/library/alpine:3.20", "estargz", b.Root.String()},
		lockEntry{"ghcr.io/acme/app:1.0", "plain", b.Root.String()},
		lockEntry{"oci:/srv/layout:x", "plain", b.Root.String()},
	)
	s := startServer(t, e.store, serve.Options{Locks: []string{lock}, LockCheckInterval: -1})
	for _, tc := range []struct {
		path string
		want digest.Digest
	}{
		{"/v2/docker.io/library/alpine/manifests/3.20", a.Target.Digest},
		{"/v2/library/alpine/manifests/3.20", a.Target.Digest},
		{"/v2/alpine/manifests/3.20", a.Target.Digest},
		{"/v2/index.docker.io/library/alpine/manifests/3.20", a.Target.Digest},
		{"/v2/library/alpine/manifests/3.20?ns=docker.io", a.Target.Digest},
		{"/v2/alpine/manifests/3.20?ns=docker.io", a.Target.Digest},
		{"/v2/library/alpine/manifests/3.20-estargz?ns=docker.io", b.Target.Digest},
		{"/v2/acme/app/manifests/1.0?ns=ghcr.io", b.Target.Digest},
		{"/v2/ghcr.io/acme/app/manifests/1.0", b.Target.Digest},
		{"/v2/library/alpine/manifests/" + a.Target.Digest.String() + "?ns=docker.io", a.Target.Digest},
	} {
		resp, body := get(t, "GET", s.url+tc.path)
		if resp.StatusCode != 200 || digest.FromBytes(body) != tc.want || resp.Header.Get("Docker-Content-Digest") != tc.want.String() {
			t.Errorf("%s: %d %s, want %s", tc.path, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), tc.want)
		}
	}
	for _, p := range []string{"/v2/acme/app/manifests/1.0", "/v2/library/alpine/manifests/3.21", "/v2/oci/manifests/x"} {
		resp, _ := get(t, "GET", s.url+p)
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	got, _ := mustPull(t, s.host+"/docker.io/library/alpine:3.20")
	sameBlobs(t, "docker.io/library/alpine:3.20", rig.SourceBlobs(t, alpine), got)
	got, _ = mustPull(t, s.host+"/library/alpine:3.20-estargz")
	sameBlobs(t, "library/alpine:3.20-estargz", rig.SourceBlobs(t, app), got)

	resp, body := get(t, "GET", s.url+"/v2/_catalog")
	if resp.StatusCode != 200 || string(body) != `{"repositories":["docker.io/library/alpine","ghcr.io/acme/app"]}` {
		t.Errorf("catalog: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", s.url+"/v2/_catalog?n=1")
	if string(body) != `{"repositories":["docker.io/library/alpine"]}` || !strings.Contains(resp.Header.Get("Link"), "last=docker.io%2Flibrary%2Falpine") {
		t.Errorf("catalog page: %s, Link %q", body, resp.Header.Get("Link"))
	}
	resp, body = get(t, "GET", s.url+"/v2/_catalog?n=1&last=docker.io/library/alpine")
	if string(body) != `{"repositories":["ghcr.io/acme/app"]}` {
		t.Errorf("catalog page 2: %s", body)
	}
	resp, body = get(t, "GET", s.url+"/v2/library/alpine/tags/list")
	if resp.StatusCode != 200 || string(body) != `{"name":"library/alpine","tags":["3.20","3.20-estargz"]}` {
		t.Errorf("tags/list: %d %s", resp.StatusCode, body)
	}

	// A new tag appears, atomically written: served on the next request.
	writeLock(t, lock,
		lockEntry{"docker.io/library/alpine:3.20", "plain", a.Root.String()},
		lockEntry{"docker.io/library/alpine:3.21", "plain", b.Root.String()},
	)
	resp, _ = get(t, "GET", s.url+"/v2/library/alpine/manifests/3.21")
	if resp.StatusCode != 200 {
		t.Errorf("new tag after a lockfile change: %d", resp.StatusCode)
	}
	resp, _ = get(t, "GET", s.url+"/v2/ghcr.io/acme/app/manifests/1.0")
	if resp.StatusCode != 404 {
		t.Errorf("removed name after a lockfile change: %d", resp.StatusCode)
	}
	// A broken lockfile keeps the last good names in service.
	if err := os.WriteFile(lock, []byte("version: 1\nimages: [{source: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, _ = get(t, "GET", s.url+"/v2/library/alpine/manifests/3.21")
	if resp.StatusCode != 200 || !strings.Contains(s.log.String(), "cannot be read") {
		t.Errorf("after a broken lockfile: %d", resp.StatusCode)
	}
	// A malformed lockfile at start is an error.
	if _, err := serve.New(e.store, serve.Options{Locks: []string{lock}}); err == nil {
		t.Error("New accepted a malformed lockfile")
	}
}

// TestCIDv0: a root added as CIDv0 is served under its v0 and v1 names,
// from one cache entry.
func TestCIDv0(t *testing.T) {
	e := startEnv(t)
	res := e.push(t, rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 40, 5000, false)}}))
	out, err := e.k.RunErr(bytes.NewReader(res.RootDescriptor), "add", "-Q", "--cid-version=0")
	if err != nil {
		t.Fatal(err)
	}
	v0 := strings.TrimSpace(out)
	if !strings.HasPrefix(v0, "Qm") {
		t.Fatalf("not a CIDv0: %q", v0)
	}
	c0, _ := ipfs.ParseCID(v0)
	v1s := ipfs.V1(c0).String()
	s := startServer(t, e.store, serve.Options{})
	for _, n := range []string{v0, v1s} {
		resp, body := get(t, "GET", s.url+"/v2/ipfs/"+n+"/manifests/latest")
		if resp.StatusCode != 200 || digest.FromBytes(body) != res.Target.Digest {
			t.Errorf("ipfs/%s: %d", n, resp.StatusCode)
		}
	}
	got, _ := mustPull(t, s.host+"/ipfs/"+v1s)
	if len(got) != 2 {
		t.Errorf("pulled %d blobs", len(got))
	}
	if st := s.Stats(); st.Resolves != 1 {
		t.Errorf("%d resolves for one root spelled two ways", st.Resolves)
	}
}

// TestIPNS: ipns/<key> is served only when allowed, resolved by kubo.
func TestIPNS(t *testing.T) {
	e := startEnv(t)
	res := e.push(t, rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 50, 5000, false)}}))
	out := e.k.Run("name", "publish", "--allow-offline", "--ipns-base=base36", "--quieter", "/ipfs/"+res.Root.String())
	key := strings.TrimSpace(out)
	s := startServer(t, e.store, serve.Options{AllowIPNS: true, Names: e.store})
	resp, body := get(t, "GET", s.url+"/v2/ipns/"+key+"/manifests/latest")
	if resp.StatusCode != 200 || digest.FromBytes(body) != res.Target.Digest {
		t.Fatalf("ipns/%s: %d %s", key, resp.StatusCode, body)
	}
	got, _ := mustPull(t, s.host+"/ipns/"+key)
	if len(got) != 2 {
		t.Errorf("pulled %d blobs", len(got))
	}
	resp, _ = get(t, "GET", s.url+"/v2/ipns/k51qzi5uqu5dj69ytzs596g7g2q6ns5fy0a0lolv2y75o1il9jmfnahajfwl2q/manifests/latest")
	if resp.StatusCode != 404 {
		t.Errorf("unknown IPNS name: %d", resp.StatusCode)
	}
	off := startServer(t, e.store, serve.Options{})
	resp, _ = get(t, "GET", off.url+"/v2/ipns/"+key+"/manifests/latest")
	if resp.StatusCode != 403 {
		t.Errorf("IPNS not allowed: %d", resp.StatusCode)
	}
}

// TestStrip: the url-free view has no ipfs:// URL in any document, every
// document is served under its own digest, and the blobs are the same.
func TestStrip(t *testing.T) {
	e := startEnv(t)
	src := rig.MultiPlatform(t, 60, 4000)
	res := e.push(t, src)
	s := startServer(t, e.store, serve.Options{})
	base := s.url + "/v2/ipfs-nourls/" + res.Root.String()
	resp, body := get(t, "GET", base+"/manifests/latest")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("ipfs://")) || len(idx.Manifests) != 3 || digest.FromBytes(body).String() != resp.Header.Get("Docker-Content-Digest") {
		t.Fatalf("stripped index: %s", body)
	}
	want := rig.SourceBlobs(t, src)
	for _, m := range idx.Manifests {
		resp, mb := get(t, "GET", base+"/manifests/"+m.Digest.String())
		if resp.StatusCode != 200 || digest.FromBytes(mb) != m.Digest || int64(len(mb)) != m.Size || bytes.Contains(mb, []byte("ipfs://")) {
			t.Fatalf("stripped manifest %s: %d", m.Digest, resp.StatusCode)
		}
		var man ocispec.Manifest
		if err := json.Unmarshal(mb, &man); err != nil {
			t.Fatal(err)
		}
		for _, l := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
			if _, ok := want[l.Digest.String()]; !ok {
				t.Errorf("stripped manifest names blob %s not in the source", l.Digest)
			}
		}
	}
	// The stored documents stay reachable by digest under ipfs-nourls/.
	resp, _ = get(t, "GET", base+"/manifests/"+res.Target.Digest.String())
	if resp.StatusCode != 200 {
		t.Errorf("stored index by digest under ipfs-nourls/: %d", resp.StatusCode)
	}
}

// TestShutdown: Serve stops on its context, lets a request in flight
// finish, and returns nil.
func TestShutdown(t *testing.T) {
	e := startEnv(t)
	layer := rig.Layer(t, 70, 3<<20, false)
	res := e.push(t, rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{layer}}))
	slow := &slowStore{Store: e.store, delay: 300 * time.Millisecond}
	s, err := serve.New(slow, serve.Options{ShutdownGrace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	ld, _ := layer.Digest()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/v2/ipfs/" + res.Root.String() + "/blobs/" + ld.String())
		if err != nil {
			got <- result{err: err}
			return
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- result{n, err}
	}()
	time.Sleep(400 * time.Millisecond) // the request is in flight (resolving or streaming)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	r := <-got
	size, _ := layer.Size()
	if r.err != nil || r.n != size {
		t.Errorf("request in flight: %d of %d bytes, %v", r.n, size, r.err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/v2/"); err == nil {
		t.Error("still accepting after shutdown")
	}
}

// slowStore delays every Cat.
type slowStore struct {
	ipfs.Store
	delay time.Duration
}

func (s *slowStore) Cat(ctx context.Context, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.Cat(ctx, c, off, n)
}

// testCID is the raw CIDv1 of s (never added anywhere).
func testCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDiskCache: a blob over SmallBlob is kept on disk once it was served
// whole and verified, then served from there (whole, ranges) without
// reading IPFS (HEAD never reads); the directory stays within its bound; a later server on the
// same directory re-hashes what it finds before trusting it; a tampered
// blob is never kept.
func TestDiskCache(t *testing.T) {
	e := startEnv(t)
	l1 := rig.Layer(t, 31, 3<<20, false)
	l2 := rig.Layer(t, 32, 3<<20, false)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{l1, l2}})
	res := e.push(t, img)
	want := rig.SourceBlobs(t, img)
	tree := e.treeOf(t, res.Root)
	_, m := firstManifest(t, tree)
	dir := t.TempDir()
	cs := newCounting(e.store)
	s := startServer(t, cs, serve.Options{BlobCacheDir: dir})
	ref := s.host + "/ipfs/" + res.Root.String()
	got, _ := mustPull(t, ref)
	sameBlobs(t, "first pull", want, got)
	cats := cs.total()
	for _, l := range m.Layers {
		b, err := os.ReadFile(filepath.Join(dir, "sha256", l.Digest.Encoded()))
		if err != nil || digest.FromBytes(b) != l.Digest {
			t.Fatalf("layer %s not kept on disk after a pull: %v", l.Digest, err)
		}
	}
	got, _ = mustPull(t, ref)
	sameBlobs(t, "second pull", want, got)
	l0 := m.Layers[0]
	blobURL := s.url + "/v2/ipfs/" + res.Root.String() + "/blobs/" + l0.Digest.String()
	resp, body := get(t, "GET", blobURL, "Range", "bytes=1000-1999")
	if resp.StatusCode != 206 || !bytes.Equal(body, want[l0.Digest.String()][1000:2000]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", l0.Size) {
		t.Errorf("range from the disk cache: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp, _ = get(t, "HEAD", blobURL)
	if resp.StatusCode != 200 || resp.ContentLength != l0.Size || resp.Header.Get("Docker-Content-Digest") != l0.Digest.String() {
		t.Errorf("HEAD from the disk cache: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, _ = get(t, "GET", blobURL, "If-None-Match", `"`+l0.Digest.String()+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match from the disk cache: %d", resp.StatusCode)
	}
	if n := cs.total(); n != cats {
		t.Errorf("IPFS read %d more times after the first pull, want 0", n-cats)
	}
	// Hits: the second pull's two layers and the range (HEAD and
	// If-None-Match are answered from the descriptor, before any read).
	if st := s.Stats(); st.DiskHits < 3 || st.DiskBlobs != 2 || st.DiskBytes != l0.Size+m.Layers[1].Size {
		t.Errorf("stats %+v", st)
	}

	// A bound of one layer and a bit: the least recently used goes.
	small := t.TempDir()
	sb := startServer(t, e.store, serve.Options{BlobCacheDir: small, BlobCacheDirBytes: l0.Size + 1000})
	mustPull(t, sb.host+"/ipfs/"+res.Root.String())
	files, _ := filepath.Glob(filepath.Join(small, "sha256", "*"))
	if st := sb.Stats(); len(files) != 1 || st.DiskBlobs != 1 || st.DiskBytes > l0.Size+1000 {
		t.Errorf("bounded cache: files %v, stats %+v", files, st)
	}

	// A new server on the first directory: one file is intact, the other
	// was damaged (same size) while no server ran.
	bad := filepath.Join(dir, "sha256", m.Layers[1].Digest.Encoded())
	junk := rig.RandomBytes(7, int(m.Layers[1].Size))
	if err := os.WriteFile(bad, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	cs2 := newCounting(e.store)
	s2 := startServer(t, cs2, serve.Options{BlobCacheDir: dir})
	got, _ = mustPull(t, s2.host+"/ipfs/"+res.Root.String())
	sameBlobs(t, "pull after restart", want, got)
	c0, _ := manifests.CID(l0)
	c1, _ := manifests.CID(m.Layers[1])
	if cs2.count(c0) != 0 || cs2.count(c1) != 1 {
		t.Errorf("after restart: intact layer read %d times from IPFS (want 0), damaged one %d (want 1)", cs2.count(c0), cs2.count(c1))
	}
	if b, err := os.ReadFile(bad); err != nil || digest.FromBytes(b) != m.Layers[1].Digest {
		t.Errorf("the damaged file was not replaced by the verified blob: %v", err)
	}
	if !strings.Contains(s2.log.String(), "does not match its digest") {
		t.Errorf("no warning about the damaged file:\n%s", s2.log.String())
	}
}
