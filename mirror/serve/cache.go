package serve

import (
	"container/list"
	"context"
	"sync"
)

// lru is a least-recently-used cache bounded by entry count and by the sum
// of the sizes its entries declare. Safe for concurrent use.
type lru[K comparable, V any] struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int64
	bytes      int64
	ll         *list.List
	m          map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	k    K
	v    V
	size int64
}

func newLRU[K comparable, V any](maxEntries int, maxBytes int64) *lru[K, V] {
	return &lru[K, V]{maxEntries: maxEntries, maxBytes: maxBytes, ll: list.New(), m: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

// add stores v under k (replacing any entry) unless it alone is over the
// byte bound, then evicts from the tail until both bounds hold.
func (c *lru[K, V]) add(k K, v V, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxEntries <= 0 || (c.maxBytes > 0 && size > c.maxBytes) {
		return
	}
	if e, ok := c.m[k]; ok {
		old := e.Value.(*lruEntry[K, V])
		c.bytes += size - old.size
		old.v, old.size = v, size
		c.ll.MoveToFront(e)
	} else {
		c.m[k] = c.ll.PushFront(&lruEntry[K, V]{k: k, v: v, size: size})
		c.bytes += size
	}
	for c.ll.Len() > c.maxEntries || (c.maxBytes > 0 && c.bytes > c.maxBytes) {
		e := c.ll.Back()
		ent := e.Value.(*lruEntry[K, V])
		c.ll.Remove(e)
		delete(c.m, ent.k)
		c.bytes -= ent.size
	}
}

func (c *lru[K, V]) len() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.bytes
}

// flight runs one call per key at a time and hands its result to every
// caller waiting for that key (a singleflight). The call runs on a context
// of its own that keeps the first caller's values but not its deadline or
// cancellation: it is cancelled only when every waiter has given up, so one
// client hanging up does not fail the others, and a call nobody waits for
// stops. A panic in the call is recovered and returned as an error.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done    chan struct{}
	v       V
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do returns fn's result for k; shared reports that another caller's call
// was joined.
func (f *flight[K, V]) do(ctx context.Context, k K, fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[K]*flightCall[V]{}
	}
	c, shared := f.calls[k]
	if shared {
		c.waiters++
	} else {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &flightCall[V]{done: make(chan struct{}), waiters: 1, cancel: cancel}
		f.calls[k] = c
		go func() {
			// A panic in fn must not end the process: every waiter gets
			// it as an error (a *panicError), which answers 500.
			c.v, c.err = protect(cctx, fn)
			f.mu.Lock()
			if f.calls[k] == c {
				delete(f.calls, k)
			}
			f.mu.Unlock()
			cancel()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.v, shared, c.err
	case <-ctx.Done():
		f.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			// Nobody waits any more: stop the call, and let the next
			// caller start afresh rather than join a cancelled one.
			c.cancel()
			if f.calls[k] == c {
				delete(f.calls, k)
			}
		}
		f.mu.Unlock()
		var zero V
		return zero, shared, ctx.Err()
	}
}
