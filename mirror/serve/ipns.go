package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// NameResolver resolves an IPNS name (a key such as k51…, or a DNSLink
// domain) to the CID it points at now.
type NameResolver interface {
	ResolveIPNS(ctx context.Context, name string) (cid.Cid, error)
}

// ErrIPNS: an IPNS name did not resolve to a CID.
var ErrIPNS = errors.New("ipns name does not resolve to an /ipfs/CID")

// KuboNames resolves IPNS names through a kubo daemon (name/resolve).
func KuboNames(s *kubo.Store) NameResolver { return kuboNames{s} }

type kuboNames struct{ s *kubo.Store }

func (k kuboNames) ResolveIPNS(ctx context.Context, name string) (cid.Cid, error) {
	var out struct{ Path string }
	err := k.s.API().Request("name/resolve", "/ipns/"+name).Option("recursive", true).Exec(ctx, &out)
	if err != nil {
		if ctx.Err() != nil {
			return cid.Undef, fmt.Errorf("resolving /ipns/%s: %w (%w)", name, ipfs.ErrNotFound, ctx.Err())
		}
		return cid.Undef, fmt.Errorf("resolving /ipns/%s: %w: %v", name, ipfs.ErrNotFound, err)
	}
	// Only a whole CID: a path below one would name a file by path,
	// which this server never does.
	rest, ok := strings.CutPrefix(out.Path, "/ipfs/")
	if !ok || strings.Contains(rest, "/") {
		return cid.Undef, fmt.Errorf("/ipns/%s → %q: %w", name, out.Path, ErrIPNS)
	}
	c, err := cid.Decode(rest)
	if err != nil {
		return cid.Undef, fmt.Errorf("/ipns/%s → %q: %w", name, out.Path, ErrIPNS)
	}
	return c, nil
}

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
