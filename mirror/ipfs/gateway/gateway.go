// Package gateway is a read-only ipfs.Store over HTTP trustless gateways
// (https://specs.ipfs.tech/http-gateways/trustless-gateway/): no IPFS node,
// only HTTP requests for raw blocks (application/vnd.ipld.raw) and CAR
// streams (application/vnd.ipld.car) that are checked, block by block,
// against the CIDs that name them. A gateway is therefore not trusted: one
// that sends a wrong or missing block, or a truncated CAR, fails that
// request, which goes to the next gateway.
//
// Cat of a file reads its root block (format=raw), then splits the range
// asked for into segments (1 MiB) fetched concurrently, across gateways
// and connections, and handed out in order; the bytes held ahead of the
// readers are bounded for the whole store. A segment is fetched by default
// as raw blocks: its inner nodes (cached), then its leaves, each block
// checked with its CID's Prefix().Sum. With FetchCAR (and for a file whose
// DAG the block planner does not follow) a segment is one CAR request
// (dag-scope=entity&entity-bytes=FROM:TO) read with go-car's block reader,
// every block checked likewise. Either way the blocks go into a
// blockstore of the segment's own, from which boxo's UnixFS file reader
// reads the bytes, so a block the gateway left out is found, not guessed.
//
// Raw blocks are the default because they cost a kubo gateway about what
// `ipfs cat` costs it, where a CAR costs it twice the CPU (it hashes every
// block it loads and encodes the stream); on a busy machine that is the
// difference between 0.8x and 0.6x the throughput of `ipfs cat`.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/semaphore"

	"github.com/ipfs-mirror/mirror/internal/redact"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// ErrReadOnly is returned by Add, Pin and PutBlock: a gateway serves
// content, it does not take any.
var ErrReadOnly = errors.New("gateway: the store is read-only (HTTP gateways serve content, they do not store it; use --ipfs-api or the embedded node to write)")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("gateway: store closed")

// Defaults of Options.
const (
	DefaultPerGateway    = 8
	DefaultSegmentSize   = 1 << 20
	DefaultWindow        = 8
	DefaultMaxBuffer     = 32 << 20
	DefaultRetries       = 2
	DefaultBackoff       = 250 * time.Millisecond
	DefaultMaxRetryAfter = 30 * time.Second
	DefaultHeaderTimeout = 30 * time.Second
	DefaultIdleTimeout   = 30 * time.Second
	DefaultNodeCache     = 8 << 20

	// MaxBlockSize bounds one block (ipfs.MaxBlockSize: bitswap's and
	// kubo's limit; the format's blocks are at most 256 KiB of data or a
	// node of 174 links).
	MaxBlockSize = ipfs.MaxBlockSize
	maxBackoff   = 5 * time.Second
)

// Fetch says how a Store fetches the blocks of a file's range.
type Fetch int

const (
	// FetchBlocks (the default) reads the file's inner nodes, then asks
	// for its leaves concurrently as raw blocks (format=raw); files whose
	// DAG it does not follow are read as FetchCAR does.
	FetchBlocks Fetch = iota
	// FetchCAR asks for each segment as one CAR (format=car,
	// dag-scope=entity, entity-bytes=FROM:TO).
	FetchCAR
)

// Options configure a Store. Zero values take the defaults above.
type Options struct {
	// Gateways are the base URLs of trustless gateways
	// (https://trustless-gateway.link, http://127.0.0.1:8080), tried in
	// this order; requests are spread over those that answer well.
	Gateways []string
	// HTTPClient overrides the HTTP client (default: one with
	// HeaderTimeout and connections for PerGateway requests per gateway).
	HTTPClient *http.Client
	// PerGateway bounds the requests in flight to one gateway.
	PerGateway int
	// Fetch says how a file's bytes are asked for.
	Fetch Fetch
	// SegmentSize is the range fetched and verified as one piece (one
	// CAR request with FetchCAR); a multiple of ipfs.ChunkSize keeps
	// segments on block boundaries.
	SegmentSize int64
	// Window bounds the segments one Cat fetches ahead of its reader.
	Window int
	// MaxBuffer bounds the bytes all Cats together hold ahead of their
	// readers (each Cat may always hold the segment it is reading).
	MaxBuffer int64
	// Retries is how many times a request that failed for a passing
	// reason (a network error, a timeout, HTTP 429 or 5xx) is tried again
	// on the same gateway before the next one is asked.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one (up to 5s); a Retry-After header replaces it.
	Backoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a gateway that
	// asks for more is skipped for this request.
	MaxRetryAfter time.Duration
	// HeaderTimeout bounds the wait for a response's headers.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for more bytes of a response body.
	IdleTimeout time.Duration
	// NodeCache bounds the bytes of verified UnixFS nodes (roots and
	// inner nodes, not data) kept for later reads of the same files.
	NodeCache int64
	// Logger receives warnings about gateways that lied or failed
	// (default: none).
	Logger *slog.Logger
	// UserAgent is sent with every request.
	UserAgent string
}

// Store reads from trustless gateways. It is safe for concurrent use.
type Store struct {
	opts   Options
	hc     *http.Client
	gws    []*gw
	budget *semaphore.Weighted
	nodes  *nodeCache
	log    *slog.Logger
	bufs   sync.Pool // segment buffers, SegmentSize bytes
	leaves sync.Pool // leaf blocks, ipfs.ChunkSize bytes

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
}

var (
	_ ipfs.Store       = (*Store)(nil)
	_ ipfs.Describer   = (*Store)(nil)
	_ ipfs.BlockGetter = (*Store)(nil)
)

// New checks the gateway URLs and returns a Store. It does not contact
// the gateways; use Ping for that.
func New(opts Options) (*Store, error) {
	if len(opts.Gateways) == 0 {
		return nil, errors.New("gateway: no gateway URL given")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.PerGateway, DefaultPerGateway)
	def(&opts.Window, DefaultWindow)
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.MaxBuffer <= 0 {
		opts.MaxBuffer = DefaultMaxBuffer
	}
	opts.MaxBuffer = max(opts.MaxBuffer, opts.SegmentSize)
	if opts.NodeCache <= 0 {
		opts.NodeCache = DefaultNodeCache
	}
	defDur(&opts.Backoff, DefaultBackoff)
	defDur(&opts.MaxRetryAfter, DefaultMaxRetryAfter)
	defDur(&opts.HeaderTimeout, DefaultHeaderTimeout)
	defDur(&opts.IdleTimeout, DefaultIdleTimeout)
	if opts.UserAgent == "" {
		opts.UserAgent = "mirror (ipfs-mirror; trustless gateway client)"
	}
	s := &Store{opts: opts, budget: semaphore.NewWeighted(opts.MaxBuffer), nodes: newNodeCache(opts.NodeCache), log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, raw := range opts.Gateways {
		base, err := parseURL(raw)
		if err != nil {
			return nil, err
		}
		if seen[base] {
			continue
		}
		seen[base] = true
		s.gws = append(s.gws, &gw{base: base, name: redact.URLs(base), sem: make(chan struct{}, opts.PerGateway), order: len(s.gws)})
	}
	s.hc = opts.HTTPClient
	if s.hc == nil {
		s.hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   2 * opts.PerGateway,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: opts.HeaderTimeout,
			// The default 4 KiB read buffer: a block read into its own
			// buffer bypasses it (a larger one would copy every byte).
		}}
	}
	s.bufs.New = func() any { b := make([]byte, s.opts.SegmentSize); return &b }
	s.leaves.New = func() any { b := make([]byte, ipfs.ChunkSize); return &b }
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// parseURL accepts an http(s) URL with an optional path prefix and returns
// it without a trailing slash.
func parseURL(raw string) (string, error) {
	t := strings.TrimSpace(raw)
	u, err := url.Parse(t)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("gateway %q: want an http(s) URL such as https://trustless-gateway.link or http://127.0.0.1:8080", redact.URLs(raw))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Gateways are the gateways' base URLs, for messages: a password in one
// is masked.
func (s *Store) Gateways() []string {
	out := make([]string, len(s.gws))
	for i, g := range s.gws {
		out[i] = g.name
	}
	return out
}

// Describe implements ipfs.Describer: "trustless gateway URL" or
// "trustless gateways URL, URL" (passwords masked).
func (s *Store) Describe() string {
	if len(s.gws) == 1 {
		return "trustless gateway " + s.gws[0].name
	}
	return "trustless gateways " + strings.Join(s.Gateways(), ", ")
}

// GetBlock implements ipfs.BlockGetter: the block c names, from the first
// gateway that sends bytes matching c.
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	b, err := s.block(ctx, c, "")
	if err != nil {
		return nil, err
	}
	return b.RawData(), nil
}

// Ping asks every gateway for the empty identity block (bafkqaaa), which
// a trustless gateway answers without looking anything up. It returns nil
// when at least one answers over HTTP at all (a gateway that does not do
// identity CIDs may still serve the rest), else an error wrapping
// ipfs.ErrUnavailable naming each gateway's failure.
func (s *Store) Ping(ctx context.Context) error {
	empty := cid.NewCidV1(cid.Raw, identityEmpty)
	var fails []string
	for _, g := range s.gws {
		err := s.once(ctx, g, empty, "raw", "", func(resp *http.Response, body io.Reader) error {
			_, err := io.Copy(io.Discard, io.LimitReader(body, 1<<10))
			return err
		})
		var f *fault
		if err == nil || (errors.As(err, &f) && f.kind != kindUnreachable) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fails = append(fails, g.name+": "+err.Error())
	}
	return fmt.Errorf("%w: no gateway answers (%s)", ipfs.ErrUnavailable, strings.Join(fails, "; "))
}

// Add implements ipfs.Store: it always fails with ErrReadOnly.
func (s *Store) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	return cid.Undef, ErrReadOnly
}

// Pin implements ipfs.Store: it always fails with ErrReadOnly.
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	return ErrReadOnly
}

// PutBlock implements ipfs.Store: it always fails with ErrReadOnly.
func (s *Store) PutBlock(ctx context.Context, codec uint64, data []byte) (cid.Cid, error) {
	return cid.Undef, ErrReadOnly
}

// Close cancels the reads in flight and releases idle connections.
func (s *Store) Close() error {
	s.cancel()
	s.hc.CloseIdleConnections()
	return nil
}
