package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// counting wraps a real store and counts Cat calls by CID.
type counting struct {
	ipfs.Store
	mu   sync.Mutex
	cats map[cid.Cid]int
	all  int
}

func newCounting(s ipfs.Store) *counting { return &counting{Store: s, cats: map[cid.Cid]int{}} }

func (c *counting) Cat(ctx context.Context, id cid.Cid, off, n int64) (io.ReadCloser, error) {
	c.mu.Lock()
	c.cats[ipfs.V1(id)]++
	c.all++
	c.mu.Unlock()
	return c.Store.Cat(ctx, id, off, n)
}

func (c *counting) count(id cid.Cid) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cats[ipfs.V1(id)]
}

func (c *counting) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all
}

// env is one test's kubo daemon and store.
type env struct {
	k     *rig.Kubo
	store *kubo.Store
}

func startEnv(t *testing.T) *env {
	t.Helper()
	k := rig.StartKubo(t, rig.KuboOptions{})
	s, err := kubo.New(k.APIAddr, kubo.Options{Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	return &env{k: k, store: s}
}

// push writes an image or index with the real push path (manifests.Writer).
func (e *env) push(t testing.TB, node manifests.Node) *manifests.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := manifests.NewWriter(e.store, 4, nil).Write(ctx, node, manifests.Options{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return res
}

// add stores raw bytes.
func (e *env) add(t testing.TB, b []byte) cid.Cid {
	t.Helper()
	c, err := e.store.Add(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logBuf collects the server's log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is a Server behind httptest on 127.0.0.1.
type server struct {
	*serve.Server
	url  string // http://127.0.0.1:PORT
	host string // 127.0.0.1:PORT
	log  *logBuf
}

func startServer(t *testing.T, store ipfs.Store, o serve.Options) *server {
	t.Helper()
	lb := &logBuf{}
	o.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := serve.New(store, o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
		}
	})
	return &server{Server: s, url: hs.URL, host: strings.TrimPrefix(hs.URL, "http://"), log: lb}
}

// get does one request.
func get(t testing.TB, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// errCode decodes a registry error body.
func errCode(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 {
		t.Fatalf("not a registry error body (%v): %q", err, body)
	}
	return e.Errors[0].Code
}

// layerDigests lists the layer digests of an image or index.
func layerDigests(t testing.TB, node any) []string {
	t.Helper()
	var out []string
	add := func(img v1.Image) {
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			d, _ := l.Digest()
			out = append(out, d.String())
		}
	}
	switch n := node.(type) {
	case v1.Image:
		add(n)
	case v1.ImageIndex:
		im, _ := n.IndexManifest()
		for _, m := range im.Manifests {
			img, _ := n.Image(m.Digest)
			add(img)
		}
	}
	return out
}

// treeOf resolves a pushed image from IPFS (test oracle for digests).
func (e *env) treeOf(t testing.TB, root cid.Cid) *manifests.Tree {
	t.Helper()
	tr, err := manifests.Resolve(context.Background(), e.store, root)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// firstManifest returns the first image manifest of a tree and its parsed form.
func firstManifest(t testing.TB, tr *manifests.Tree) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	ms := tr.Manifests()
	if len(ms) == 0 {
		t.Fatal("no manifests")
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(tr.Docs[ms[0].Digest], &m); err != nil {
		t.Fatal(err)
	}
	return ms[0], m
}

// addDoc stores a JSON document and returns its descriptor (with URL).
func (e *env) addDoc(t testing.TB, mt string, v any) ocispec.Descriptor {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c := e.add(t, raw)
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw)), URLs: []string{ipfs.URL(c)}}
}

// rootOf stores a root descriptor for target and returns its CID.
func (e *env) rootOf(t testing.TB, target ocispec.Descriptor) cid.Cid {
	t.Helper()
	raw, err := json.Marshal(ocispec.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: target.Size, URLs: target.URLs})
	if err != nil {
		t.Fatal(err)
	}
	return e.add(t, raw)
}

// skopeo runs skopeo (skipped outside CI when missing).
func skopeo(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--insecure-policy"}, args...)...)
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp, "REGISTRY_AUTH_FILE="+filepath.Join(tmp, "auth.json"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}
