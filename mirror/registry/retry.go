package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RetryOptions configure the registry transport's retries and rate limit.
type RetryOptions struct {
	// Attempts is how many times a request is tried (default 5).
	Attempts int
	// BaseDelay is the first backoff (default 500ms); each retry doubles it,
	// with full jitter, up to MaxDelay (default 30s). A Retry-After header
	// (seconds or HTTP date) is honoured, up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Rate bounds requests per second to each registry host (0: no bound).
	Rate float64
	// Burst is the rate limiter's burst (default 1 + Rate).
	Burst int
}

// RetryTransport retries idempotent-safe registry requests on network
// errors, 5xx and 429, with exponential backoff and jitter, and bounds the
// request rate per host. Requests with a body are retried only when the
// body can be replayed (GetBody).
type RetryTransport struct {
	Base http.RoundTripper
	Opts RetryOptions

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	sleep    func(ctx context.Context, d time.Duration) error
}

// NewRetryTransport wraps base (nil: http.DefaultTransport).
func NewRetryTransport(base http.RoundTripper, o RetryOptions) *RetryTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	if o.Attempts < 1 {
		o.Attempts = 5
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 500 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 30 * time.Second
	}
	return &RetryTransport{Base: base, Opts: o, limiters: map[string]*rate.Limiter{}, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *RetryTransport) limiter(host string) *rate.Limiter {
	if t.Opts.Rate <= 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.limiters[host]
	if !ok {
		b := t.Opts.Burst
		if b < 1 {
			b = 1 + int(t.Opts.Rate)
		}
		l = rate.NewLimiter(rate.Limit(t.Opts.Rate), b)
		t.limiters[host] = l
	}
	return l
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var lastErr error
	for attempt := 1; ; attempt++ {
		if l := t.limiter(req.URL.Host); l != nil {
			if err := l.Wait(ctx); err != nil {
				return nil, err
			}
		}
		r := req
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := t.Base.RoundTrip(r)
		retry, wait := t.shouldRetry(resp, err)
		if !retry || attempt >= t.Opts.Attempts || !replayable(req) {
			return resp, err
		}
		if err != nil {
			lastErr = err
		} else {
			lastErr = fmt.Errorf("%s %s: %s", req.Method, req.URL.Redacted(), resp.Status)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if wait <= 0 {
			backoff := t.Opts.BaseDelay << (attempt - 1)
			if backoff > t.Opts.MaxDelay || backoff <= 0 {
				backoff = t.Opts.MaxDelay
			}
			wait = time.Duration(rand.Int64N(int64(backoff)) + 1)
		}
		if wait > t.Opts.MaxDelay {
			wait = t.Opts.MaxDelay
		}
		if err := t.sleep(ctx, wait); err != nil {
			return nil, errors.Join(err, lastErr)
		}
	}
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// shouldRetry says whether to retry, and how long the server asked to wait.
func (t *RetryTransport) shouldRetry(resp *http.Response, err error) (bool, time.Duration) {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, 0
		}
		var ne net.Error
		var oe *net.OpError
		return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF), 0
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return true, retryAfter(resp.Header.Get("Retry-After"))
	}
	return false, 0
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return time.Until(at)
	}
	return 0
}
