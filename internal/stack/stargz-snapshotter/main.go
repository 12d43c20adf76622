// Command stargz-snapshotter serves stargz-snapshotter's remote snapshotter
// (the service package of github.com/containerd/stargz-snapshotter) over
// gRPC on a unix socket, to be registered in containerd as a proxy plugin
// of type "snapshot". It stands in for upstream's containerd-stargz-grpc,
// whose cmd/ module is not on the Go module proxy.
//
// With ipfs = true in the config file (or -ipfs), layers whose descriptors
// carry an ipfs://CID URL — every layer of an image in the IPFS-enabled
// format that nerdctl pulls with --snapshotter stargz — are mounted lazily
// over FUSE and read from a kubo RPC API with ranged /api/v0/cat calls.
//
// It lives in its own Go module so that its dependency graph (containerd,
// go-fuse, k8s client-go via the keychains) never enters mirror's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	golog "log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/log"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	memorymetadata "github.com/containerd/stargz-snapshotter/metadata/memory"
	"github.com/containerd/stargz-snapshotter/service"
	"github.com/containerd/stargz-snapshotter/service/keychain/dockerconfig"
	"github.com/pelletier/go-toml"
	"google.golang.org/grpc"
)

// config is the TOML file: the service package's Config (upstream's
// [blob], [directory_cache], [resolver], … sections and top-level keys) plus
// upstream containerd-stargz-grpc's `ipfs` key.
type config struct {
	service.Config

	// IPFS turns on the ipfs:// resolve handler, as upstream's `ipfs = true`.
	IPFS bool `toml:"ipfs"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stargz-snapshotter:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		address    = flag.String("address", "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock", "unix socket the snapshotter's gRPC server listens on")
		configPath = flag.String("config", "", "TOML configuration file (upstream's config.toml keys; none: defaults)")
		root       = flag.String("root", "/var/lib/containerd-stargz-grpc", "root directory for snapshots, FUSE mounts and caches")
		ipfsAPI    = flag.String("ipfs-api", "", "kubo RPC API for ipfs:// layers: a URL (http://127.0.0.1:5001) or a multiaddr (/ip4/127.0.0.1/tcp/5001); empty: read $IPFS_PATH/api (default ~/.ipfs/api) at each layer, as upstream does")
		ipfsOn     = flag.Bool("ipfs", false, "resolve ipfs:// layers through IPFS (same as ipfs = true in the config file)")
		logLevel   = flag.String("log-level", "info", "log level: trace, debug, info, warn, error")
	)
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	log.SetFormat(log.JSONFormat)
	if err := log.SetLevel(*logLevel); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(log.WithLogger(context.Background(), log.L), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// go-fuse logs through the standard library's logger.
	golog.SetOutput(log.G(ctx).WriterLevel(log.DebugLevel))

	var cfg config
	if *configPath != "" {
		tree, err := toml.LoadFile(*configPath)
		if err != nil {
			return fmt.Errorf("loading config %s: %w", *configPath, err)
		}
		// go-toml v1, as upstream: it applies the `default:"…"` struct tags
		// of fs/config (direct = true, …) that the service package relies on.
		if err := tree.Unmarshal(&cfg); err != nil {
			return fmt.Errorf("parsing config %s: %w", *configPath, err)
		}
	} else if err := toml.Unmarshal(nil, &cfg); err != nil {
		return fmt.Errorf("applying config defaults: %w", err)
	}
	if *ipfsOn {
		cfg.IPFS = true
	}
	if cfg.PassThrough {
		cfg.Direct = true // as upstream: the cache must hand out *os.File
	}
	var api apiAddress
	if *ipfsAPI != "" {
		u, err := parseAPI(*ipfsAPI)
		if err != nil {
			return err
		}
		api = func() (string, error) { return u, nil }
	} else {
		api = apiFromRepo
	}

	if err := service.Supported(*root); err != nil {
		return fmt.Errorf("snapshotter not supported on %s: %w", *root, err)
	}
	fsOpts := []stargzfs.Option{
		stargzfs.WithMetricsLogLevel(log.InfoLevel),
		stargzfs.WithMetadataStore(memorymetadata.NewReader),
	}
	if cfg.IPFS {
		fsOpts = append(fsOpts, stargzfs.WithResolveHandler("ipfs", &ipfsHandler{api: api}))
	}
	sn, err := service.NewStargzSnapshotterService(ctx, *root, &cfg.Config,
		service.WithCredsFuncs(dockerconfig.NewDockerconfigKeychain(ctx)),
		service.WithFilesystemOptions(fsOpts...))
	if err != nil {
		return fmt.Errorf("starting snapshotter: %w", err)
	}

	rpc := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(rpc, snapshotservice.FromSnapshotter(sn))
	if err := os.MkdirAll(filepath.Dir(*address), 0o700); err != nil {
		return err
	}
	if err := os.Remove(*address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	l, err := net.Listen("unix", *address)
	if err != nil {
		return err
	}
	log.G(ctx).WithField("address", *address).WithField("ipfs", cfg.IPFS).Info("serving the stargz snapshotter")
	served := make(chan error, 1)
	go func() { served <- rpc.Serve(l) }()
	select {
	case <-ctx.Done():
		log.G(ctx).Info("signal received, shutting down")
	case err = <-served:
	}
	rpc.Stop()
	// FUSE servers are goroutines of this process: unmount them and drop
	// their caches before exiting, as upstream does without its fuse manager.
	if cerr := sn.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing snapshotter: %w", cerr))
	}
	return err
}
