package oci_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/treegen"
	"github.com/ipfs-mirror/mirror/mirror/oci"
)

// uploadCounter is a registry that records how many blob uploads it
// serves at once.
type uploadCounter struct {
	next http.Handler

	mu        sync.Mutex
	now, most int
}

func (u *uploadCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/blobs/uploads") {
		u.next.ServeHTTP(w, r)
		return
	}
	u.mu.Lock()
	u.now++
	u.most = max(u.most, u.now)
	u.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // long enough for uploads to overlap
	u.next.ServeHTTP(w, r)
	u.mu.Lock()
	u.now--
	u.mu.Unlock()
}

// TestPullJobs: pull to a registry uploads at most Jobs blobs at once;
// --jobs 1 is one (it used to be raised to 4).
func TestPullJobs(t *testing.T) {
	ctx := context.Background()
	img, err := random.Image(1024, 8)
	if err != nil {
		t.Fatal(err)
	}
	st := treegen.NewMemStore()
	res, err := manifests.NewWriter(st, 4, nil).Write(ctx, img, manifests.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ jobs, most int }{{1, 1}, {2, 2}, {0, 4}} {
		u := &uploadCounter{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
		srv := httptest.NewServer(u)
		o := oci.PullOptions{Jobs: tc.jobs, URLs: oci.URLsKeep}
		o.Registry.Insecure = true
		_, err := oci.Pull(ctx, st, res.Root, strings.TrimPrefix(srv.URL, "http://")+"/jobs/test:v1", o)
		srv.Close()
		if err != nil {
			t.Fatalf("jobs %d: %v", tc.jobs, err)
		}
		if u.most > tc.most || u.most < 1 {
			t.Errorf("jobs %d: %d blob uploads at once, want at most %d", tc.jobs, u.most, tc.most)
		}
		t.Logf("jobs %d: at most %d uploads at once", tc.jobs, u.most)
	}
}
