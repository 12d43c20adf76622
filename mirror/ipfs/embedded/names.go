package embedded

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/keystore"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/core/coreiface/options"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// PublishIPNS implements ipfs.NamePublisher with the keystore of the repo
// (`ipfs key gen` / `ipfs key import` on it), as `ipfs name publish
// --allow-offline` does on a daemon: the same record lifetime (48h), TTL
// (5m) and V1-compatible signature. Offline, the record is kept in the
// repo (a later daemon on it republishes it); online, it is also put to
// the node's routers.
func (s *Store) PublishIPNS(ctx context.Context, key string, c cid.Cid) (string, error) {
	p := path.FromCid(c)
	// As the daemon does by default (--resolve): never publish what the
	// node cannot read.
	if _, err := s.api.ResolveNode(ctx, p); err != nil {
		return "", fmt.Errorf("ipfs name publish: %s: %w", c, classify(ctx, err))
	}
	name, err := s.api.Name().Publish(ctx, p,
		options.Name.Key(key),
		options.Name.AllowOffline(true),
		options.Name.ValidTime(ipns.DefaultRecordLifetime),
		options.Name.TTL(ipns.DefaultRecordTTL),
		options.Name.CompatibleWithV1(true),
	)
	if err != nil {
		// keylookup says ErrNoSuchKey for a name, its own error for a
		// peer ID the keystore lacks.
		if errors.Is(err, keystore.ErrNoSuchKey) || strings.Contains(err.Error(), "no key by the given name") {
			return "", fmt.Errorf("ipfs name publish: %w", ipfs.ErrNoKey)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("ipfs name publish: %w", err)
	}
	return name.String(), nil
}

// ResolveIPNS implements ipfs.NameResolver: recursively, from the repo's
// records when offline, through the node's routers (and DNS, for DNSLink)
// when online.
func (s *Store) ResolveIPNS(ctx context.Context, name string) (cid.Cid, error) {
	p, err := s.api.Name().Resolve(ctx, "/ipns/"+name)
	if err != nil {
		if ctx.Err() != nil {
			return cid.Undef, fmt.Errorf("resolving /ipns/%s: %w (%w)", name, ipfs.ErrNotFound, ctx.Err())
		}
		return cid.Undef, fmt.Errorf("resolving /ipns/%s: %w: %v", name, ipfs.ErrNotFound, err)
	}
	return ipfs.IPNSValue(name, p.String())
}
