// Package open picks the ipfs.Store every mirror command uses, in one
// resolution order:
//
//  0. HTTP trustless gateways (--gateway / MIRROR_GATEWAY, for the
//     commands that only read): a read-only store, and no node is looked
//     for or started. Gateways together with an explicit API address is
//     an error (ErrTwoStores): one of them reads;
//  1. an explicit API address (--ipfs-api / IPFS_API): that daemon, or an
//     error if it does not answer;
//  2. the API file a running daemon wrote to $IPFS_PATH/api (default
//     ~/.ipfs/api), if that daemon answers;
//  3. an embedded kubo node on the repo at $IPFS_PATH, initialised if
//     missing (offline unless Options.Online or Options.Peers).
//
// Options.Peers are the embedded node's: with a daemon (1 or 2) or
// gateways (0) they are an error (ErrPeersNeedEmbedded), as that daemon's
// peers are in its own config.
//
// An api file whose daemon is gone (it does not answer and the repo is not
// locked: a crash) is stale and falls through to 3. One that does not
// answer while the repo is locked is an error: a daemon holds the repo but
// is not serving.
//
// The embedded node is compiled in by default. Building with
// -tags mirror_noembed leaves it (and most of kubo) out; 3 then fails with
// ipfs.ErrUnavailable saying how to start a daemon.
package open

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	fslock "github.com/ipfs/go-fs-lock"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/gateway"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// ErrBadGateway is returned for gateway URLs that cannot be used (not
// http(s), or none given).
var ErrBadGateway = errors.New("bad --gateway")

// ErrTwoStores is returned when both gateways and an IPFS API are given:
// reads come from one store.
var ErrTwoStores = errors.New("both --gateway (MIRROR_GATEWAY) and --ipfs-api (IPFS_API) are set; give one: gateways read without a node, --ipfs-api reads from that node")

// ErrBadPeer is returned for Options.Peers addresses that cannot be used
// (not a multiaddr, or without /p2p/<peer ID>).
var ErrBadPeer = errors.New("bad --peer")

// ErrPeersNeedEmbedded is returned when Options.Peers are given but the
// store is not the embedded node: a daemon keeps the peers of its own
// config, and gateways need no peers.
var ErrPeersNeedEmbedded = errors.New("--peer (MIRROR_PEERS) sets the peers of mirror's embedded IPFS node")

// Options say where the node is.
type Options struct {
	// API is an explicit RPC address (multiaddr or URL); empty means "find one".
	API string
	// Headers are sent with every RPC request.
	Headers map[string]string
	// IPFSPath is the repo ("" = $IPFS_PATH, else ~/.ipfs).
	IPFSPath string
	// NoPin adds without pinning.
	NoPin bool
	// Online lets the embedded node join the network configured in the
	// repo. It does not affect a daemon.
	Online bool
	// Peers are multiaddrs ending in /p2p/<peer ID> that the embedded
	// node keeps connected, as kubo's Peering.Peers (added to the repo's
	// for this process; the file is not written). They imply Online.
	Peers []string
	// NoEmbedded refuses the embedded node: a daemon must be running.
	NoEmbedded bool
	// ServeAPI makes an embedded node serve its RPC API on loopback and
	// write $IPFS_PATH/api while open, so other processes share it (for
	// long-running commands). It does not affect a daemon.
	ServeAPI bool
	// Holder names the command for other processes' lock errors
	// ("mirror serve").
	Holder string
	// Gateways are HTTP trustless gateways to read from instead of a node
	// (read-only: Add, Pin and PutBlock fail with gateway.ErrReadOnly).
	Gateways []string
	// Logger receives the gateways' warnings (a gateway that lied or
	// failed); nil: none.
	Logger *slog.Logger
	// UserAgent is sent to gateways.
	UserAgent string
}

// embeddedOpener opens the embedded node; nil when built with
// mirror_noembed. errLocked is its "repo locked" sentinel.
var (
	embeddedOpener func(ctx context.Context, o Options, peers []peer.AddrInfo) (ipfs.Store, error)
	errLocked      error
)

// Embedded reports whether this binary has the embedded node.
func Embedded() bool { return embeddedOpener != nil }

// Store opens the store the options name and checks that it answers.
func Store(ctx context.Context, o Options) (ipfs.Store, error) {
	peers, err := ParsePeers(o.Peers)
	if err != nil {
		return nil, err
	}
	if len(o.Gateways) > 0 {
		if o.API != "" {
			return nil, ErrTwoStores
		}
		if len(peers) > 0 {
			return nil, fmt.Errorf("%w, but --gateway (MIRROR_GATEWAY) reads from HTTP gateways without a node; drop one of them", ErrPeersNeedEmbedded)
		}
		return gateways(ctx, o)
	}
	if o.API != "" {
		if len(peers) > 0 {
			return nil, fmt.Errorf("%w, but an IPFS API is given (--ipfs-api, IPFS_API or the list's ipfs.api): set Peering.Peers in that daemon's config instead (`ipfs config --json Peering.Peers '[{\"ID\": \"<peer ID>\", \"Addrs\": [\"<multiaddr>\"]}]'`, then restart it), and drop --peer", ErrPeersNeedEmbedded)
		}
		return daemon(ctx, o.API, o)
	}
	s, err := repoDaemon(ctx, o)
	if s != nil {
		return peersWithDaemon(s, peers)
	}
	if err != nil {
		return nil, err
	}
	if len(peers) > 0 {
		o.Online = true
	}
	if o.NoEmbedded || embeddedOpener == nil {
		why := "this mirror was built without the embedded IPFS node (-tags mirror_noembed)"
		if o.NoEmbedded {
			why = "the embedded IPFS node is disabled"
		}
		return nil, fmt.Errorf("%w: no --ipfs-api given, no running daemon found ($IPFS_PATH/api), and %s; start one with `ipfs daemon` or pass --ipfs-api /ip4/127.0.0.1/tcp/5001", ipfs.ErrUnavailable, why)
	}
	s, err = embeddedOpener(ctx, o, peers)
	if err != nil && errors.Is(err, errLocked) {
		// A daemon took the repo between our look at the api file and
		// now: use it.
		if s, err2 := repoDaemon(ctx, o); s != nil || err2 != nil {
			if s != nil {
				return peersWithDaemon(s, peers)
			}
			return s, err2
		}
		return nil, fmt.Errorf("%w: %w; wait for it to finish, or run `ipfs daemon` (or `mirror serve`) for every command to share, or pass --ipfs-api", ipfs.ErrUnavailable, err)
	}
	return s, err
}

// peersWithDaemon returns s, the daemon serving the repo, unless peers
// were given for the embedded node: then it closes s and says where that
// daemon's peers are set.
func peersWithDaemon(s ipfs.Store, peers []peer.AddrInfo) (ipfs.Store, error) {
	if len(peers) == 0 {
		return s, nil
	}
	what := ipfs.Describe(s)
	s.Close()
	return nil, fmt.Errorf("%w, but a daemon serves the repo (%s, named by $IPFS_PATH/api) and mirror uses it: set Peering.Peers in that daemon's config instead (`ipfs config --json Peering.Peers '[{\"ID\": \"<peer ID>\", \"Addrs\": [\"<multiaddr>\"]}]'`, then restart it; if it is `mirror serve`, give it the --peer), or stop it", ErrPeersNeedEmbedded, what)
}

// ParsePeers parses peer multiaddrs (each ending in /p2p/<peer ID>) into
// one AddrInfo per peer, merging the addresses of the same peer as kubo's
// Peering.Peers config does. Empty strings are skipped; a bad address is
// ErrBadPeer naming it.
func ParsePeers(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, a := range addrs {
		if a == "" {
			continue
		}
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w %q: not a multiaddr: %w", ErrBadPeer, a, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			return nil, fmt.Errorf("%w %q: want a multiaddr ending in /p2p/<peer ID> (as `ipfs id` prints): %w", ErrBadPeer, a, err)
		}
		mas = append(mas, m)
	}
	if len(mas) == 0 {
		return nil, nil
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPeer, err)
	}
	return infos, nil
}

// repoDaemon returns the daemon named by $IPFS_PATH/api if it answers,
// (nil, nil) when there is none (no file, or a stale one), or an error when
// a daemon holds the repo without answering.
func repoDaemon(ctx context.Context, o Options) (ipfs.Store, error) {
	addr, err := kubo.RepoAPIAddr(o.IPFSPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ipfs.ErrUnavailable, err)
	}
	s, err := daemon(ctx, addr, o)
	if err == nil {
		return s, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	repo, rerr := ipfs.RepoPath(o.IPFSPath)
	if rerr != nil {
		return nil, rerr
	}
	// kubo's fsrepo.LockedByOtherProcess, without importing fsrepo (and
	// with it most of kubo) into binaries built without the embedded node.
	if locked, lerr := fslock.Locked(repo, "repo.lock"); lerr == nil && !locked {
		return nil, nil // stale api file: the daemon is gone
	}
	return nil, fmt.Errorf("%w (the daemon holds %s but its API does not answer)", err, repo)
}

// gateways opens the gateway store and checks that one gateway answers.
func gateways(ctx context.Context, o Options) (ipfs.Store, error) {
	s, err := gateway.New(gateway.Options{Gateways: o.Gateways, Logger: o.Logger, UserAgent: o.UserAgent})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGateway, err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w; check the --gateway URLs", err)
	}
	return s, nil
}

func daemon(ctx context.Context, addr string, o Options) (ipfs.Store, error) {
	s, err := kubo.New(addr, kubo.Options{Pin: !o.NoPin, Headers: o.Headers})
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		return nil, fmt.Errorf("%w; start a node with `ipfs daemon` or pass --ipfs-api", err)
	}
	return s, nil
}

// Describe says which store s is, for logs: "kubo RPC API at URL",
// "embedded IPFS node on REPO (offline)", "CAR file PATH" (ipfs.Describer).
func Describe(s ipfs.Store) string { return ipfs.Describe(s) }
