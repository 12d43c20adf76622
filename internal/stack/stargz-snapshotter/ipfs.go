package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"

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
	c := ipfsclient.New(base)
	info, err := c.StatCID(cid)
	if err != nil {
		return nil, 0, fmt.Errorf("stat ipfs://%s: %w", cid, err)
	}
	// The descriptor comes from the snapshot's labels (nerdctl's
	// containerd.io/snapshot/remote/urls, …), which carry no size: the
	// size is the file's. What is read is checked by the filesystem: the
	// TOC against the layer's toc.digest annotation, each chunk against the
	// TOC. A size the descriptor does state must match.
	const maxLayer = 1 << 40
	if info.Type != "file" || info.Size > maxLayer || (desc.Size > 0 && info.Size != uint64(desc.Size)) {
		return nil, 0, fmt.Errorf("ipfs://%s is a %s of %d bytes, not the layer %s (%d bytes)", cid, info.Type, info.Size, desc.Digest, desc.Size)
	}
	size := int64(info.Size)
	return &ipfsFetcher{cid: cid, size: size, client: c}, size, nil
}

// ipfsFetcher reads byte ranges of one layer with /api/v0/cat.
type ipfsFetcher struct {
	cid    string
	size   int64
	client *ipfsclient.Client
}

func (f *ipfsFetcher) Fetch(ctx context.Context, off, size int64) (io.ReadCloser, error) {
	if off < 0 || size < 0 || off > f.size || size > f.size-off {
		return nil, fmt.Errorf("range %d+%d outside ipfs://%s (%d bytes)", off, size, f.cid, f.size)
	}
	o, n := int(off), int(size)
	rc, err := f.client.Get("/ipfs/"+f.cid, &o, &n)
	if err != nil {
		return nil, err
	}
	// The client takes no context: closing the body on cancellation ends a
	// read that the filesystem gave up on.
	b := &ctxBody{Reader: io.LimitReader(rc, size), rc: rc}
	b.stop = context.AfterFunc(ctx, func() { b.closeBody() })
	return b, nil
}

func (f *ipfsFetcher) Check() error {
	_, err := f.client.StatCID(f.cid)
	return err
}

// GenID names a range in the snapshotter's blob cache.
func (f *ipfsFetcher) GenID(off, size int64) string {
	return fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%s-%d-%d", f.cid, off, size)))
}

// ctxBody is a response body, at most the requested length, closed once.
type ctxBody struct {
	io.Reader
	rc   io.ReadCloser
	stop func() bool
	once sync.Once
	err  error
}

func (b *ctxBody) Close() error {
	b.stop()
	return b.closeBody()
}

func (b *ctxBody) closeBody() error {
	b.once.Do(func() { b.err = b.rc.Close() })
	return b.err
}
