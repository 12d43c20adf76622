package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// ServeCmd is `mirror serve`: a read-only registry backed by IPFS,
// compatible with `nerdctl ipfs registry serve` (whose flag and variable
// names it also takes).
type ServeCmd struct {
	Listen       string        `default:"localhost:5050" aliases:"listen-registry" env:"MIRROR_SERVE_LISTEN,IPFS_REGISTRY_SERVE_LISTEN_REGISTRY" help:"Address to listen on (HOST:PORT). Keep it on loopback unless the network in front is trusted: there is no authentication."`
	Lock         []string      `name:"lock" env:"MIRROR_SERVE_LOCK" placeholder:"FILE" help:"Serve the images of this lockfile under their registry names (repeatable; comma-separated in the variable). Changes are picked up without a restart."`
	ReadTimeout  time.Duration `default:"1m" env:"MIRROR_SERVE_READ_TIMEOUT,IPFS_REGISTRY_SERVE_READ_TIMEOUT" help:"Longest wait for IPFS to answer a read, and then for each next bytes of it (0: wait as long as the client does)."`
	ReadRetries  int           `default:"0" aliases:"read-retry-num" env:"MIRROR_SERVE_READ_RETRIES,IPFS_REGISTRY_SERVE_READ_RETRY_NUM" help:"Times to retry an IPFS read that timed out (resumed where it stopped)."`
	StallTimeout time.Duration `default:"2s" env:"MIRROR_SERVE_STALL_TIMEOUT" help:"Paces the waits within --read-timeout, none counted in --read-retries: once an IPFS read is answering, a wait this long for its next bytes resumes it where it stopped (a new bitswap session); a read without first bytes is asked again after 4 times this, then twice as long each time. Grows on a link that is slow rather than stalled. 0: off."`
	StripURLs    bool          `name:"strip-urls" env:"MIRROR_SERVE_STRIP_URLS" help:"Serve every name url-free (same blobs, new manifest digests), for skopeo, podman and CNCF distribution. Without it, only ipfs-nourls/<CID> is."`
	AllowIPNS    bool          `name:"allow-ipns" env:"MIRROR_SERVE_ALLOW_IPNS" help:"Also serve ipns/<name> (IPNS keys and DNSLink domains; mutable, re-resolved every minute)."`
	VerifyRanges bool          `name:"verify-ranges" env:"MIRROR_SERVE_VERIFY_RANGES" help:"Read and verify a whole blob before serving the first Range of it (costs lazy pulling its laziness)."`
	CacheImages  int           `name:"cache-images" default:"256" env:"MIRROR_SERVE_CACHE_IMAGES" help:"Resolved image trees kept in memory."`
	CacheMiB     int           `name:"cache-mib" default:"64" env:"MIRROR_SERVE_CACHE_MIB" help:"Memory bound of the cached trees' documents, in MiB (small blobs have 32 MiB more)."`
	BlobCache    string        `name:"blob-cache" env:"MIRROR_SERVE_BLOB_CACHE" placeholder:"DIR" help:"Keep blobs verified once in this directory and serve them from there (default: $XDG_CACHE_HOME/mirror/serve-blobs; 'none' turns it off)."`
	BlobCacheGiB float64       `name:"blob-cache-gib" default:"4" env:"MIRROR_SERVE_BLOB_CACHE_GIB" help:"Disk bound of --blob-cache, in GiB (least recently used blobs go first)."`
	GatewayFlags `embed:""`
}

// Run serves until the command's context ends (SIGINT, SIGTERM, --timeout).
func (c *ServeCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	if c.CacheImages < 1 || c.CacheMiB < 1 {
		return usageError{fmt.Errorf("--cache-images and --cache-mib must be at least 1")}
	}
	if c.ReadTimeout < 0 || c.ReadRetries < 0 || c.StallTimeout < 0 {
		return usageError{fmt.Errorf("--read-timeout, --read-retries and --stall-timeout must not be negative")}
	}
	if c.BlobCacheGiB <= 0 {
		return usageError{fmt.Errorf("--blob-cache-gib must be positive (use --blob-cache none to turn the cache off)")}
	}
	var h slog.Handler
	if g.JSON {
		h = slog.NewJSONHandler(g.stderr, nil)
	} else {
		h = slog.NewTextHandler(g.stderr, nil)
	}
	log := slog.New(h)
	// An embedded node serves its RPC API while serve runs, so that other
	// mirror commands (and the ipfs CLI) share it through $IPFS_PATH/api.
	store, err := c.openStore(ctx, g, open.Options{ServeAPI: true})
	if err != nil {
		return err
	}
	defer store.Close()
	if es, ok := store.(ipfs.APIServer); ok && es.APIAddr() != "" {
		log.Info("embedded IPFS node: other commands use it through its RPC API", "ipfs_api", es.APIAddr())
	}
	opts := serve.Options{
		Locks:        c.Lock,
		ReadTimeout:  c.ReadTimeout,
		ReadRetries:  c.ReadRetries,
		StallTimeout: c.StallTimeout,
		StripURLs:    c.StripURLs,
		AllowIPNS:    c.AllowIPNS,
		VerifyRanges: c.VerifyRanges,
		CacheImages:  c.CacheImages,
		CacheBytes:   int64(c.CacheMiB) << 20,
		Logger:       log,
	}
	switch c.BlobCache {
	case "none":
	case "":
		// The default is best effort: a service without a writable home
		// (systemd's DynamicUser=) runs without it.
		dir, err := os.UserCacheDir()
		if err == nil {
			dir = filepath.Join(dir, "mirror", "serve-blobs")
			err = os.MkdirAll(dir, 0o755)
		}
		if err == nil {
			opts.BlobCacheDir = dir
		} else {
			log.Warn("no blob cache: the default directory is not usable (set --blob-cache DIR, or none)", "err", err)
		}
	default:
		opts.BlobCacheDir = c.BlobCache
	}
	if opts.BlobCacheDir != "" {
		opts.BlobCacheDirBytes = int64(c.BlobCacheGiB * (1 << 30))
	}
	srv, err := serve.New(store, opts)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", c.Listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		log.Warn("listening beyond loopback: anyone who can reach this address can read every image your IPFS node can fetch", "addr", addr.String())
	}
	log.Info("serving", "addr", addr.String(), "store", ipfs.Describe(store), "blob_cache", opts.BlobCacheDir, "locks", c.Lock, "strip_urls", c.StripURLs, "allow_ipns", c.AllowIPNS, "read_timeout", c.ReadTimeout, "stall_timeout", c.StallTimeout)
	return srv.Serve(ctx, ln)
}
