package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// TestRawBlobFetch: a registry image's layers are read with one GET each,
// through the writer's own verifier (the bytes are hashed once), and a
// registry that sends other bytes is a digest mismatch naming the blob.
func TestRawBlobFetch(t *testing.T) {
	var c rig.Counter
	var corrupt atomic.Value // digest string whose bytes get flipped
	corrupt.Store("")
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(c.Counting(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := corrupt.Load().(string); d != "" && r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			b[len(b)/2] ^= 0xff
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(b)
			return
		}
		reg.ServeHTTP(w, r)
	})))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	l1, l2 := rig.Layer(t, 61, 300<<10, false), rig.Layer(t, 62, 200<<10, true)
	idx := rig.Index(t, false,
		rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{l1, l2}, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}),
		rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{l1}, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}))
	rig.Push(t, host+"/raw/img:v1", idx)

	ctx := context.Background()
	push := func() (*oci.PushResult, error) {
		st, err := car.New(filepath.Join(t.TempDir(), "out.car"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		return oci.Push(ctx, manifests.NewWriter(st, 4, nil), host+"/raw/img:v1", oci.PushOptions{Registry: registry.Options{Insecure: true}})
	}
	c.Reset()
	if _, err := push(); err != nil {
		t.Fatal(err)
	}
	// Two distinct layers: two blob GETs (the configs come with the
	// manifests' reads as blobs too: two more).
	if n := c.Get("GET blobs"); n != 4 {
		t.Errorf("blob GETs = %d, want 4 (2 layers, 2 configs): %v", n, c.Snapshot())
	}

	d1, _ := l1.Digest()
	corrupt.Store(d1.String())
	_, err := push()
	if !errors.Is(err, manifests.ErrDigestMismatch) || !strings.Contains(err.Error(), d1.String()) {
		t.Fatalf("corrupted layer: %v, want a digest mismatch naming %s", err, d1)
	}
}

// TestBlobFetcherErrors: a blob the registry does not have is the
// registry's error, and a Content-Length that contradicts the manifest is
// a mismatch before any byte is read.
func TestBlobFetcherErrors(t *testing.T) {
	missing := digest.Digest("sha256:" + strings.Repeat("00", 32))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(200)
		case strings.HasSuffix(r.URL.Path, "/blobs/"+missing.String()):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`)
		default:
			_, _ = io.Copy(w, bytes.NewReader(make([]byte, 10)))
		}
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, err := registry.ParseRef(host+"/x/y:z", registry.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	f := registry.NewBlobFetcher(registry.Options{Insecure: true})
	if _, err := f.Open(context.Background(), ref.Ref.Context(), missing, 10); err == nil || !strings.Contains(err.Error(), "BLOB_UNKNOWN") {
		t.Errorf("missing blob: %v, want the registry's BLOB_UNKNOWN", err)
	}
	rc, err := f.Open(context.Background(), ref.Ref.Context(), digest.Digest("sha256:"+strings.Repeat("ab", 32)), 11)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Errorf("short Content-Length: %v, want a digest mismatch", err)
	}
}
