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
//     missing (offline unless Options.Online).
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
	embeddedOpener func(ctx context.Context, o Options) (ipfs.Store, error)
	errLocked      error
)

// Embedded reports whether this binary has the embedded node.
func Embedded() bool { return embeddedOpener != nil }

// Store opens the store the options name and checks that it answers.
func Store(ctx context.Context, o Options) (ipfs.Store, error) {
	if len(o.Gateways) > 0 {
		if o.API != "" {
			return nil, ErrTwoStores
		}
		return gateways(ctx, o)
	}
	if o.API != "" {
		return daemon(ctx, o.API, o)
	}
	s, err := repoDaemon(ctx, o)
	if s != nil || err != nil {
		return s, err
	}
	if o.NoEmbedded || embeddedOpener == nil {
		why := "this mirror was built without the embedded IPFS node (-tags mirror_noembed)"
		if o.NoEmbedded {
			why = "the embedded IPFS node is disabled"
		}
		return nil, fmt.Errorf("%w: no --ipfs-api given, no running daemon found ($IPFS_PATH/api), and %s; start one with `ipfs daemon` or pass --ipfs-api /ip4/127.0.0.1/tcp/5001", ipfs.ErrUnavailable, why)
	}
	s, err = embeddedOpener(ctx, o)
	if err != nil && errors.Is(err, errLocked) {
		// A daemon took the repo between our look at the api file and
		// now: use it.
		if s, err2 := repoDaemon(ctx, o); s != nil || err2 != nil {
			return s, err2
		}
		return nil, fmt.Errorf("%w: %w; wait for it to finish, or run `ipfs daemon` (or `mirror serve`) for every command to share, or pass --ipfs-api", ipfs.ErrUnavailable, err)
	}
	return s, err
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
