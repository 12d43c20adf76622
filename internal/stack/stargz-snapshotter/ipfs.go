package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/containerd/stargz-snapshotter/fs/remote"
	"github.com/containerd/stargz-snapshotter/ipfs"
	ipfsclient "github.com/containerd/stargz-snapshotter/ipfs/client"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// apiAddress returns the kubo RPC API's base URL (http://host:port).
type apiAddress func() (string, error)

// apiFromRepo reads $IPFS_PATH/api (default ~/.ipfs/api), the file kubo
// writes when its daemon starts — what upstream's handler and nerdctl do.
func apiFromRepo() (string, error) {
	return ipfsclient.GetIPFSAPIAddress(os.Getenv("IPFS_PATH"), "http")
}

// parseAPI accepts an http(s) URL or a multiaddr such as
// /ip4/127.0.0.1/tcp/5001 (the content of kubo's api file).
func parseAPI(s string) (string, error) {
	if strings.HasPrefix(s, "/") {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return "", fmt.Errorf("-ipfs-api %q: %w", s, err)
		}
		_, hostport, err := manet.DialArgs(a)
		if err != nil {
			return "", fmt.Errorf("-ipfs-api %q: %w", s, err)
		}
		return "http://" + hostport, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("-ipfs-api %q: want http://HOST:PORT or a multiaddr", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// statTimeout bounds the files/stat of a layer's CID: with no provider
// for the CID, kubo would search for it as long as the request lasts, and
// the snapshot's Prepare with it.
const statTimeout = time.Minute

// maxLayer is the largest layer the handler accepts.
const maxLayer = 1 << 40

// ipfsHandler is the snapshotter's resolve handler for layers with an
// ipfs://CID URL. It is tried for every layer before the registry fetcher;
// an error hands the layer on to the registry.
type ipfsHandler struct {
	api apiAddress
}

var _ remote.Handler = (*ipfsHandler)(nil)

func (h *ipfsHandler) Handle(ctx context.Context, desc ocispec.Descriptor) (remote.Fetcher, int64, error) {
	cid, err := ipfs.GetCID(desc)
	if err != nil {
		return nil, 0, err
	}
	base, err := h.api()
	if err != nil {
		return nil, 0, fmt.Errorf("finding the IPFS API: %w", err)
	}
	f := &ipfsFetcher{cid: cid, base: base}
	info, err := f.stat(ctx)
	if err != nil {
		return nil, 0, err
	}
	// The descriptor comes from the snapshot's labels (nerdctl's
	// containerd.io/snapshot/remote/urls, …), which carry no size: the
	// size is the file's. What is read is checked by the filesystem: the
	// TOC against the layer's toc.digest annotation, each chunk against the
	// TOC. A size the descriptor does state must match.
	if info.Type != "file" || info.Size > maxLayer || (desc.Size > 0 && info.Size != uint64(desc.Size)) {
		return nil, 0, fmt.Errorf("ipfs://%s is a %s of %d bytes, not the layer %s (%d bytes)", cid, info.Type, info.Size, desc.Digest, desc.Size)
	}
	f.size = int64(info.Size)
	return f, f.size, nil
}

// ipfsFetcher reads byte ranges of one layer with /api/v0/cat.
type ipfsFetcher struct {
	cid  string
	base string
	size int64
}

// client is an IPFS API client whose requests, bodies included, end with
// ctx (the client package's calls take no context).
func (f *ipfsFetcher) client(ctx context.Context) *ipfsclient.Client {
	return &ipfsclient.Client{Address: f.base, Client: &http.Client{Transport: ctxTransport{ctx: ctx, base: http.DefaultTransport}}}
}

func (f *ipfsFetcher) stat(ctx context.Context) (*ipfsclient.FileInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, statTimeout)
	defer cancel()
	info, err := f.client(ctx).StatCID(f.cid)
	if err != nil {
		return nil, fmt.Errorf("stat ipfs://%s: %w", f.cid, err)
	}
	return info, nil
}

func (f *ipfsFetcher) Fetch(ctx context.Context, off, size int64) (io.ReadCloser, error) {
	if off < 0 || size < 0 || off > f.size || size > f.size-off {
		return nil, fmt.Errorf("range %d+%d outside ipfs://%s (%d bytes)", off, size, f.cid, f.size)
	}
	o, n := int(off), int(size)
	rc, err := f.client(ctx).Get("/ipfs/"+f.cid, &o, &n)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, size), rc}, nil
}

// Check tells the filesystem whether the layer is still reachable.
func (f *ipfsFetcher) Check() error {
	_, err := f.stat(context.Background())
	return err
}

// GenID names a range in the snapshotter's blob cache.
func (f *ipfsFetcher) GenID(off, size int64) string {
	return fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%s-%d-%d", f.cid, off, size)))
}

// ctxTransport gives every request a context.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}
