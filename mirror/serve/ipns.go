package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

type ipnsEntry struct {
	c       cid.Cid
	expires time.Time
}

// resolveIPNS resolves a name, reusing an answer for IPNSCacheTTL.
func (s *Server) resolveIPNS(ctx context.Context, name string) (cid.Cid, error) {
	if e, ok := s.ipns.get(name); ok && time.Now().Before(e.expires) {
		return e.c, nil
	}
	if s.opts.Names == nil {
		return cid.Undef, fmt.Errorf("%w: no IPNS resolver for this store", ipfs.ErrUnavailable)
	}
	c, _, err := s.ipnsing.do(ctx, name, func(ctx context.Context) (cid.Cid, error) {
		if s.opts.ReadTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.opts.ReadTimeout*time.Duration(1+max(s.opts.ReadRetries, 0)))
			defer cancel()
		}
		c, err := s.opts.Names.ResolveIPNS(ctx, name)
		if err != nil {
			return cid.Undef, err
		}
		s.ipns.add(name, ipnsEntry{c: c, expires: time.Now().Add(s.opts.IPNSCacheTTL)}, 0)
		return c, nil
	})
	return c, err
}
