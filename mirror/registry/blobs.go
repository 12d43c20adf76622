package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

// BlobFetcher reads registry blobs with one plain GET each, unverified:
// the manifests.Writer that adds them hashes every byte once, as it
// streams (go-containerregistry's layer readers would hash them a second
// time). It keeps one authenticated transport per repository, made on
// first use: one ping and one token exchange per repository and run.
type BlobFetcher struct {
	o   Options
	mu  sync.Mutex
	rts map[string]*repoTransport
}

type repoTransport struct {
	once sync.Once
	rt   http.RoundTripper
	err  error
}

// NewBlobFetcher returns a fetcher with o's credentials and transport.
func NewBlobFetcher(o Options) *BlobFetcher {
	return &BlobFetcher{o: o, rts: map[string]*repoTransport{}}
}

func (f *BlobFetcher) transport(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	f.mu.Lock()
	t, ok := f.rts[repo.Name()]
	if !ok {
		t = &repoTransport{}
		f.rts[repo.Name()] = t
	}
	f.mu.Unlock()
	t.once.Do(func() {
		// Shared by every image of the repository: one image giving up
		// must not fail the others waiting here.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		auth, err := authn.Resolve(ctx, f.o.keychain(), repo)
		if err != nil {
			t.err = err
			return
		}
		var base http.RoundTripper = f.o.Transport
		if base == nil {
			base = f.o.BaseTransport()
		}
		t.rt, t.err = transport.NewWithContext(ctx, repo.Registry, auth, transport.NewUserAgent(base, f.o.userAgent()), []string{repo.Scope(transport.PullScope)})
	})
	if t.err != nil {
		// Let a later call try again (the ping may have met a passing error).
		f.mu.Lock()
		if f.rts[repo.Name()] == t {
			delete(f.rts, repo.Name())
		}
		f.mu.Unlock()
		return nil, fmt.Errorf("registry %s: %w", repo.RegistryStr(), t.err)
	}
	return t.rt, nil
}

// Open GETs blob d of repo. The body is not verified: the caller must check
// it against d and size.
func (f *BlobFetcher) Open(ctx context.Context, repo name.Repository, d digest.Digest, size int64) (io.ReadCloser, error) {
	rt, err := f.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + d.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if resp.ContentLength >= 0 && size >= 0 && resp.ContentLength != size {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s: %w: the registry sends %d bytes, the manifest says %d", d, manifests.ErrDigestMismatch, resp.ContentLength, size)
	}
	return resp.Body, nil
}

// rawIndex and rawImage are registry sources whose blobs the
// manifests.Writer reads through a BlobFetcher (manifests.BlobOpener).
type rawIndex struct {
	index
	repo name.Repository
	f    *BlobFetcher
}

// index is v1.ImageIndex under a name that does not clash with its
// ImageIndex method.
type index = v1.ImageIndex

func (x *rawIndex) Image(h v1.Hash) (v1.Image, error) {
	im, err := x.index.Image(h)
	if err != nil {
		return nil, err
	}
	return &rawImage{Image: im, repo: x.repo, f: x.f}, nil
}

func (x *rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	ix, err := x.index.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &rawIndex{index: ix, repo: x.repo, f: x.f}, nil
}

type rawImage struct {
	v1.Image
	repo name.Repository
	f    *BlobFetcher
}

// OpenBlob implements manifests.BlobOpener.
func (i *rawImage) OpenBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	return i.f.Open(ctx, i.repo, d, size)
}
