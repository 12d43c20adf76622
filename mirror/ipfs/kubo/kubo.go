// Package kubo is the ipfs.Store of a running kubo daemon, over its RPC API
// (github.com/ipfs/kubo/client/rpc).
package kubo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	rpc "github.com/ipfs/kubo/client/rpc"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/ipfs-mirror/mirror/internal/redact"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Options configure a Store.
type Options struct {
	// Pin pins every added blob (the format's default: true).
	Pin bool
	// Headers are sent with every request (e.g. Authorization for a remote
	// node behind a proxy). Values are never logged.
	Headers map[string]string
	// HTTPClient overrides the HTTP client (default: one without a total
	// timeout, since adds and cats stream).
	HTTPClient *http.Client
}

// Store talks to a kubo daemon.
type Store struct {
	api  *rpc.HttpApi
	addr string
	pin  bool
}

var (
	_ ipfs.Store         = (*Store)(nil)
	_ ipfs.Describer     = (*Store)(nil)
	_ ipfs.BlockGetter   = (*Store)(nil)
	_ ipfs.BatchHolder   = (*Store)(nil)
	_ ipfs.NamePublisher = (*Store)(nil)
	_ ipfs.NameResolver  = (*Store)(nil)
	_ ipfs.Unpinner      = (*Store)(nil)
)

// New connects to the API at addr: a multiaddr (/ip4/127.0.0.1/tcp/5001) or
// an http(s) URL. It does not contact the node; use Ping for that.
func New(addr string, opts Options) (*Store, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // the API is ours: never route it through HTTP_PROXY
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// Blobs stream both ways: read kubo's chunked cat answers and
			// write add bodies in large pieces, not net/http's 4 KiB (a
			// third of serve's CPU went to 4 KiB read syscalls).
			ReadBufferSize:  256 << 10,
			WriteBufferSize: 256 << 10,
		}}
	}
	u, err := APIURL(addr)
	if err != nil {
		return nil, err
	}
	api, err := rpc.NewURLApiWithClient(u, hc)
	if err != nil {
		return nil, fmt.Errorf("ipfs api %s: %s", redact.URLs(addr), redact.URLs(err.Error()))
	}
	for k, v := range opts.Headers {
		api.Headers.Set(k, v)
	}
	return &Store{api: api, addr: u, pin: opts.Pin}, nil
}

// Addr is the API's base URL, for messages: a password in it is masked.
func (s *Store) Addr() string { return redact.URLs(s.addr) }

// Describe implements ipfs.Describer.
func (s *Store) Describe() string { return "kubo RPC API at " + s.Addr() }

// APIURL turns a multiaddr or URL into the base URL of the RPC API.
func APIURL(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("empty IPFS API address")
	}
	if strings.HasPrefix(addr, "/") {
		a, err := ma.NewMultiaddr(addr)
		if err != nil {
			return "", fmt.Errorf("ipfs api %q: not a multiaddr: %w", addr, err)
		}
		scheme := "http"
		if _, err := a.ValueForProtocol(ma.P_HTTPS); err == nil {
			scheme = "https"
		} else if _, err := a.ValueForProtocol(ma.P_TLS); err == nil {
			scheme = "https"
		}
		// Strip /http, /https, /tls for DialArgs.
		var dial ma.Multiaddr
		for _, c := range a {
			switch c.Protocol().Code {
			case ma.P_HTTP, ma.P_HTTPS, ma.P_TLS:
			default:
				dial = append(dial, c)
			}
		}
		_, host, err := manet.DialArgs(dial)
		if err != nil {
			return "", fmt.Errorf("ipfs api %q: %w", addr, err)
		}
		return scheme + "://" + host, nil
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("ipfs api %q: want a multiaddr (/ip4/127.0.0.1/tcp/5001) or an http(s) URL", redact.URLs(addr))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// RepoAPIAddr reads the API address a running daemon wrote to
// $IPFS_PATH/api (ipfsPath "" means $IPFS_PATH, else ~/.ipfs). It returns
// os.ErrNotExist when there is no such file.
func RepoAPIAddr(ipfsPath string) (string, error) {
	p, err := ipfs.RepoPath(ipfsPath)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(p, "api"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Ping checks that the API answers (POST /api/v0/version).
func (s *Store) Ping(ctx context.Context) error {
	var v struct{ Version string }
	if err := s.api.Request("version").Exec(ctx, &v); err != nil {
		return fmt.Errorf("%w at %s: %s", ipfs.ErrUnavailable, s.Addr(), redact.URLs(err.Error()))
	}
	return nil
}

// Add implements ipfs.Store with the format's fixed settings.
func (s *Store) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	resp, err := s.api.Request("add").
		Option("cid-version", ipfs.CIDVersion).
		Option("raw-leaves", ipfs.RawLeaves).
		Option("chunker", ipfs.Chunker).
		Option("hash", ipfs.HashFunction).
		Option("max-file-links", ipfs.MaxFileLinks).
		Option("trickle", false).
		Option("inline", false).
		Option("pin", s.pin).
		Option("quieter", true).
		Option("progress", false).
		FileBody(r).
		Send(ctx)
	if err != nil {
		return cid.Undef, fmt.Errorf("ipfs add: %w", wrapConnErr(err))
	}
	if resp.Error != nil {
		resp.Close()
		return cid.Undef, fmt.Errorf("ipfs add: %w", resp.Error)
	}
	defer resp.Close()
	var last struct{ Hash string }
	dec := json.NewDecoder(resp.Output)
	for {
		var ev struct{ Hash string }
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return cid.Undef, ctx.Err()
			}
			return cid.Undef, fmt.Errorf("ipfs add: reading the answer: %w", err)
		}
		if ev.Hash != "" {
			last = ev
		}
	}
	if last.Hash == "" {
		return cid.Undef, errors.New("ipfs add: the node returned no CID")
	}
	c, err := cid.Decode(last.Hash)
	if err != nil {
		return cid.Undef, fmt.Errorf("ipfs add: bad CID %q: %w", last.Hash, err)
	}
	return c, nil
}

// Cat implements ipfs.Store.
func (s *Store) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	req := s.api.Request("cat", "/ipfs/"+c.String())
	if offset > 0 {
		req = req.Option("offset", strconv.FormatInt(offset, 10))
	}
	if length >= 0 {
		req = req.Option("length", strconv.FormatInt(length, 10))
	}
	resp, err := req.Send(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ipfs cat %s: %w (%w)", c, ipfs.ErrNotFound, ctx.Err())
		}
		return nil, fmt.Errorf("ipfs cat %s: %w", c, wrapConnErr(err))
	}
	if resp.Error != nil {
		resp.Close()
		return nil, fmt.Errorf("ipfs cat %s: %w", c, classify(resp.Error))
	}
	return &ctxReadCloser{ctx: ctx, rc: resp.Output, c: c}, nil
}

// Pin implements ipfs.Store.
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	resp, err := s.api.Request("pin/add", "/ipfs/"+c.String()).Option("recursive", true).Option("progress", false).Send(ctx)
	if err != nil {
		return fmt.Errorf("ipfs pin %s: %w", c, wrapConnErr(err))
	}
	defer resp.Close()
	if resp.Error != nil {
		return fmt.Errorf("ipfs pin %s: %w", c, classify(resp.Error))
	}
	_, err = io.Copy(io.Discard, resp.Output)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("ipfs pin %s: %w (%w)", c, ipfs.ErrNotFound, ctx.Err())
	}
	return err
}

// Unpin implements ipfs.Unpinner (pin/rm, recursive: it removes a
// recursive or a direct pin). kubo's "not pinned or pinned indirectly" is
// ipfs.ErrNotPinned.
func (s *Store) Unpin(ctx context.Context, c cid.Cid) error {
	err := s.api.Request("pin/rm", c.String()).Option("recursive", true).Exec(ctx, nil)
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "not pinned") {
		return fmt.Errorf("ipfs pin rm %s: %w", c, ipfs.ErrNotPinned)
	}
	return fmt.Errorf("ipfs pin rm %s: %w", c, wrapConnErr(err))
}

// PutBlock implements ipfs.Store.
func (s *Store) PutBlock(ctx context.Context, codec uint64, data []byte) (cid.Cid, error) {
	codecName := "raw"
	switch codec {
	case cid.Raw:
	case cid.DagProtobuf:
		codecName = "dag-pb"
	default:
		return cid.Undef, fmt.Errorf("ipfs block put: unsupported codec %#x", codec)
	}
	var out struct{ Key string }
	err := s.api.Request("block/put").
		Option("cid-codec", codecName).
		Option("mhtype", ipfs.HashFunction).
		Option("pin", s.pin).
		FileBody(strings.NewReader(string(data))).
		Exec(ctx, &out)
	if err != nil {
		return cid.Undef, fmt.Errorf("ipfs block put: %w", wrapConnErr(err))
	}
	return cid.Decode(out.Key)
}

// Close implements ipfs.Store.
func (s *Store) Close() error { return nil }

func classify(e *rpc.Error) error {
	msg := e.Message
	switch {
	case strings.Contains(msg, "not found"), strings.Contains(msg, "no link named"),
		strings.Contains(msg, "context deadline exceeded"), strings.Contains(msg, "context canceled"):
		return fmt.Errorf("%w: %s", ipfs.ErrNotFound, msg)
	}
	return e
}

func wrapConnErr(err error) error {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || (errors.As(err, &ne) && !ne.Timeout()) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %v", ipfs.ErrUnavailable, err)
	}
	return err
}

// ctxReadCloser turns a read that fails because the context ended into that
// context's error, so callers see "deadline exceeded" rather than a
// transport error.
type ctxReadCloser struct {
	ctx context.Context
	rc  io.ReadCloser
	c   cid.Cid
}

func (r *ctxReadCloser) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if cerr := r.ctx.Err(); cerr != nil {
			return n, fmt.Errorf("ipfs cat %s: %w", r.c, cerr)
		}
		return n, fmt.Errorf("ipfs cat %s: %w", r.c, err)
	}
	return n, err
}

func (r *ctxReadCloser) Close() error { return r.rc.Close() }

// pinTypes asks `pin ls` (local pin set, never the network) for the pin
// type of each CID; pinned is false when kubo says one of them is not
// pinned (it then fails the whole call). The CIDs are bare: kubo takes
// them, and so does the IPFS Cluster proxy API, whose pin/ls refuses paths
// (and answers for its first argument only: HoldsAll then says false and
// the caller asks one by one).
func (s *Store) pinTypes(ctx context.Context, cs ...cid.Cid) (types map[string]string, pinned bool, err error) {
	args := make([]string, len(cs))
	for i, c := range cs {
		args[i] = c.String()
	}
	var out struct {
		Keys map[string]struct{ Type string }
	}
	err = s.api.Request("pin/ls", args...).Option("type", "all").Option("stream", false).Exec(ctx, &out)
	if err != nil {
		if strings.Contains(err.Error(), "not pinned") {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("ipfs pin ls: %w", wrapConnErr(err))
	}
	types = make(map[string]string, len(out.Keys))
	for k, v := range out.Keys {
		types[k] = v.Type
	}
	return types, true, nil
}

// Holds implements ipfs.Holder: is c pinned on the node?
func (s *Store) Holds(ctx context.Context, c cid.Cid) (bool, error) {
	types, pinned, err := s.pinTypes(ctx, c)
	if err != nil {
		return false, fmt.Errorf("%s: %w", c, err)
	}
	return pinned && len(types) > 0, nil
}

// HoldsAll implements ipfs.BatchHolder: one `pin ls` naming every CID.
// A CID held only indirectly (as part of something else) makes the answer
// false: the caller asks about it alone.
func (s *Store) HoldsAll(ctx context.Context, cs []cid.Cid) (bool, error) {
	if len(cs) == 0 {
		return true, nil
	}
	var uniq []cid.Cid
	seen := map[cid.Cid]bool{}
	for _, c := range cs {
		if !seen[c] {
			seen[c] = true
			uniq = append(uniq, c)
		}
	}
	types, pinned, err := s.pinTypes(ctx, uniq...)
	if err != nil || !pinned {
		return false, err
	}
	for _, t := range types {
		if t == "indirect" {
			return false, nil
		}
	}
	return len(types) >= len(uniq), nil
}

// GetBlock implements ipfs.BlockGetter (block/get).
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	r, err := s.api.Block().Get(ctx, path.FromCid(c))
	if err != nil {
		return nil, fmt.Errorf("ipfs block get %s: %w", c, wrapConnErr(err))
	}
	b, err := io.ReadAll(io.LimitReader(r, ipfs.MaxBlockSize+1))
	if err != nil {
		return nil, fmt.Errorf("ipfs block get %s: %w", c, err)
	}
	if len(b) > ipfs.MaxBlockSize {
		return nil, fmt.Errorf("ipfs block get %s: block over %d bytes", c, ipfs.MaxBlockSize)
	}
	return b, nil
}

// PublishIPNS implements ipfs.NamePublisher (name/publish, with the
// daemon's defaults for the record's lifetime and TTL). allow-offline: an
// offline daemon keeps the record and republishes it once online.
func (s *Store) PublishIPNS(ctx context.Context, key string, c cid.Cid) (string, error) {
	var out struct{ Name, Value string }
	err := s.api.Request("name/publish", "/ipfs/"+c.String()).
		Option("key", key).
		Option("allow-offline", true).
		Exec(ctx, &out)
	if err != nil {
		if strings.Contains(err.Error(), "no key") {
			return "", fmt.Errorf("ipfs name publish: %w", ipfs.ErrNoKey)
		}
		return "", fmt.Errorf("ipfs name publish: %w", wrapConnErr(err))
	}
	if out.Name == "" {
		return "", errors.New("ipfs name publish: the node returned no name")
	}
	return out.Name, nil
}

// ResolveIPNS implements ipfs.NameResolver (name/resolve, recursive).
func (s *Store) ResolveIPNS(ctx context.Context, name string) (cid.Cid, error) {
	var out struct{ Path string }
	err := s.api.Request("name/resolve", "/ipns/"+name).Option("recursive", true).Exec(ctx, &out)
	if err != nil {
		if ctx.Err() != nil {
			return cid.Undef, fmt.Errorf("resolving /ipns/%s: %w (%w)", name, ipfs.ErrNotFound, ctx.Err())
		}
		return cid.Undef, fmt.Errorf("resolving /ipns/%s: %w: %v", name, ipfs.ErrNotFound, err)
	}
	return ipfs.IPNSValue(name, out.Path)
}
