package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/ipfs-mirror/mirror/internal/redact"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// identityEmpty is the identity multihash of no bytes: bafkqaaa as a raw
// CIDv1, the block every trustless gateway can answer.
var identityEmpty = mh.Multihash{mh.IDENTITY, 0}

// gw is one gateway and what the store learnt about it.
type gw struct {
	base  string // base URL, no trailing slash
	name  string // base, redacted, for messages
	sem   chan struct{}
	order int // position in Options.Gateways

	inflight atomic.Int32
	mu       sync.Mutex
	faults   int       // responses that lied (wrong or missing blocks)
	coolDown time.Time // a Retry-After asked us to wait until then
}

// kind classifies one gateway's failure of one request.
type kind int

const (
	kindNotFound    kind = iota // 404/410, or another status that says "not here"
	kindUnreachable             // no connection, no answer in time
	kindTransient               // 429, 5xx, a reset: worth retrying
	kindIncomplete              // the answer lacks a block, is truncated or too long
	kindIntegrity               // a block does not match its CID
)

// fault is one gateway's failure of one request.
type fault struct {
	kind       kind
	err        error
	retryAfter time.Duration // from a 429/503's Retry-After
}

func (f *fault) Error() string { return f.err.Error() }
func (f *fault) Unwrap() error { return f.err }

func faultf(k kind, format string, args ...any) *fault {
	return &fault{kind: k, err: fmt.Errorf(format, args...)}
}

// lied reports whether the failure is the gateway's own doing (wrong,
// missing or cut bytes), which the log names.
func (f *fault) lied() bool { return f.kind == kindIntegrity || f.kind == kindIncomplete }

// pick returns the best gateway not in tried: fewest lies, not cooling
// down, fewest requests in flight, then the order given. nil when every
// gateway was tried.
func (s *Store) pick(tried []*gw) *gw {
	now := time.Now()
	var best *gw
	var bestKey [4]int
	for _, g := range s.gws {
		if slices.Contains(tried, g) {
			continue
		}
		g.mu.Lock()
		cool := 0
		if now.Before(g.coolDown) {
			cool = 1
		}
		key := [4]int{g.faults, cool, int(g.inflight.Load()), g.order}
		g.mu.Unlock()
		if best == nil || less(key, bestKey) {
			best, bestKey = g, key
		}
	}
	return best
}

func less(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// handler reads one successful (200) response. Its error is a *fault, or
// the context's error.
type handler func(resp *http.Response, body io.Reader) error

// fetch runs one request on each gateway in turn until one succeeds: what
// names the content for messages, format is "raw" or "car", query the rest
// of the query string. It returns an error naming what and every
// gateway's failure, wrapping ipfs.ErrIntegrity if one sent bytes that do
// not match their CID, else ipfs.ErrUnavailable if none could be reached,
// else ipfs.ErrNotFound.
func (s *Store) fetch(ctx context.Context, what string, c cid.Cid, format, query string, h handler) error {
	var tried []*gw
	var fails []string
	var integrity, reached bool
	for {
		g := s.pick(tried)
		if g == nil {
			break
		}
		tried = append(tried, g)
		err := s.retrying(ctx, g, c, format, query, h)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gateway: %s: %w", what, ctx.Err())
		}
		var f *fault
		if !errors.As(err, &f) {
			return fmt.Errorf("gateway: %s from %s: %w", what, g.name, err)
		}
		fails = append(fails, g.name+": "+f.Error())
		if f.kind != kindUnreachable {
			reached = true
		}
		if f.lied() {
			integrity = integrity || f.kind == kindIntegrity
			g.mu.Lock()
			g.faults++
			g.mu.Unlock()
			s.log.Warn("gateway sent bad content; trying the next gateway", "gateway", g.name, "cid", c.String(), "what", what, "error", f.Error())
		} else {
			s.log.Debug("gateway failed; trying the next gateway", "gateway", g.name, "cid", c.String(), "error", f.Error())
		}
	}
	sentinel := ipfs.ErrNotFound
	switch {
	case integrity:
		sentinel = ipfs.ErrIntegrity
	case !reached:
		sentinel = ipfs.ErrUnavailable
	}
	return fmt.Errorf("gateway: %s: %w: no gateway gave it whole (tried %s)", what, sentinel, strings.Join(fails, "; "))
}

// retrying runs a request on g, again after a passing failure (up to
// Options.Retries times, with backoff or the gateway's Retry-After).
func (s *Store) retrying(ctx context.Context, g *gw, c cid.Cid, format, query string, h handler) error {
	wait := s.opts.Backoff
	for try := 0; ; try++ {
		err := s.once(ctx, g, c, format, query, h)
		var f *fault
		if err == nil || ctx.Err() != nil || !errors.As(err, &f) || try >= s.opts.Retries {
			return err
		}
		if f.kind != kindTransient && f.kind != kindUnreachable {
			return err
		}
		d := wait
		if f.retryAfter > 0 {
			if f.retryAfter > s.opts.MaxRetryAfter {
				return faultf(f.kind, "%v (it asks to retry after %s, more than %s)", f.err, f.retryAfter, s.opts.MaxRetryAfter)
			}
			d = f.retryAfter
			g.mu.Lock()
			g.coolDown = time.Now().Add(d)
			g.mu.Unlock()
		}
		s.log.Debug("gateway request failed; retrying", "gateway", g.name, "cid", c.String(), "in", d, "error", err.Error())
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

// once runs one request on g (waiting for one of its PerGateway slots) and
// hands a 200 response to h.
func (s *Store) once(ctx context.Context, g *gw, c cid.Cid, format, query string, h handler) error {
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
	g.inflight.Add(1)
	defer func() { g.inflight.Add(-1); <-g.sem }()

	// The attempt's own context: cancelled when the body goes quiet for
	// IdleTimeout, or when the store closes.
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(ErrClosed) })
	defer stop()

	u := g.base + "/ipfs/" + c.String() + "?format=" + format
	if query != "" {
		u += "&" + query
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return faultf(kindUnreachable, "%s", redact.URLs(err.Error()))
	}
	switch format {
	case "raw":
		req.Header.Set("Accept", "application/vnd.ipld.raw")
	case "car":
		req.Header.Set("Accept", "application/vnd.ipld.car;version=1;order=dfs;dups=n")
	}
	req.Header.Set("User-Agent", s.opts.UserAgent)
	resp, err := s.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(context.Cause(actx), ErrClosed) {
			return ErrClosed
		}
		return faultf(kindUnreachable, "%s", redact.URLs(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusFault(resp)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/vnd.ipld."+format) {
		return faultf(kindNotFound, "answered %s, not application/vnd.ipld.%s: not a trustless gateway", ct, format)
	}
	body := &idleReader{r: resp.Body, timeout: s.opts.IdleTimeout, cancel: cancel}
	defer body.stop()
	err = h(resp, body)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch cause := context.Cause(actx); {
	case errors.Is(cause, ErrClosed):
		return ErrClosed
	case errors.Is(cause, errIdle):
		return faultf(kindTransient, "no bytes for %s", s.opts.IdleTimeout)
	}
	var f *fault
	var ce *contentError
	if errors.As(err, &f) || errors.As(err, &ce) {
		return err
	}
	// A read error other than the handler's own verdict: the connection.
	return faultf(kindTransient, "reading the answer: %s", redact.URLs(err.Error()))
}

// statusFault classifies a non-200 answer.
func statusFault(resp *http.Response) *fault {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	text := strings.TrimSpace(strings.ToValidUTF8(string(msg), "?"))
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	f := faultf(kindNotFound, "HTTP %s", resp.Status)
	if text != "" {
		f = faultf(kindNotFound, "HTTP %s: %s", resp.Status, text)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		f.kind = kindTransient
		f.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode == http.StatusGatewayTimeout || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusInternalServerError:
		f.kind = kindTransient
	}
	return f
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

var errIdle = errors.New("gateway: no bytes within the idle timeout")

// idleReader cancels its request when a Read waits longer than timeout.
type idleReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelCauseFunc
	timer   *time.Timer
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.timer == nil {
		r.timer = time.AfterFunc(r.timeout, func() { r.cancel(errIdle) })
	} else {
		r.timer.Reset(r.timeout)
	}
	n, err := r.r.Read(p)
	r.timer.Stop()
	return n, err
}

func (r *idleReader) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}
