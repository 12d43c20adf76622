// Package embedded is the ipfs.Store of an in-process kubo node: mirror
// works with no daemon running. The node uses the ordinary kubo repo at
// $IPFS_PATH (default ~/.ipfs), initialising it when missing, so a later
// `ipfs daemon` on the same repo serves everything mirror added.
//
// The node is offline unless Options.Online is set. It holds the repo lock
// while open: when a daemon holds it, Open returns ErrRepoLocked and the
// caller should talk to that daemon's API instead (mirror/ipfs/open does).
//
// This package pulls in kubo's whole node (libp2p, bitswap, datastores):
// binaries that do not need it are built with -tags mirror_noembed (see
// mirror/ipfs/open).
package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	fslock "github.com/ipfs/go-fs-lock"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/core"
	"github.com/ipfs/kubo/core/coreapi"
	coreiface "github.com/ipfs/kubo/core/coreiface"
	"github.com/ipfs/kubo/core/coreiface/options"
	"github.com/ipfs/kubo/core/node/libp2p"
	"github.com/ipfs/kubo/plugin/loader"
	"github.com/ipfs/kubo/repo/fsrepo"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// ErrRepoLocked is returned by Open when another process (normally a
// running `ipfs daemon`) or another Store of this process holds the repo.
var ErrRepoLocked = errors.New("embedded: the IPFS repo is locked by another process")

// Options configure the node.
type Options struct {
	// IPFSPath is the repo ("" = $IPFS_PATH, else ~/.ipfs).
	IPFSPath string
	// Online joins the network configured in the repo (bootstrap peers,
	// routing, swarm key); otherwise the node neither dials nor listens.
	Online bool
	// Peers are kept connected while online, as kubo's Peering.Peers
	// (reconnected with backoff): they are added to the repo config's
	// Peering.Peers in memory, for this Store only (the config file is not
	// written). The node's own peer ID among them is skipped, so that one
	// list serves every node of a group.
	Peers []peer.AddrInfo
	// NoPin adds without pinning (the format pins by default).
	NoPin bool
	// ServeAPI serves the node's RPC API on a loopback port and writes
	// $IPFS_PATH/api while the Store is open, as `ipfs daemon` does: for
	// long-running commands (mirror serve), so that other mirror processes
	// use this node instead of finding the repo locked.
	ServeAPI bool
	// Holder names the command holding the repo ("mirror serve"), for the
	// lock error another process prints. Never put arguments here.
	Holder string
}

// Store is an in-process kubo node.
type Store struct {
	path    string
	node    *core.IpfsNode
	api     coreiface.CoreAPI
	pin     bool
	online  bool
	inited  bool
	apiAddr string

	closeOnce sync.Once
	closeErr  error
}

var (
	_ ipfs.Store         = (*Store)(nil)
	_ ipfs.Describer     = (*Store)(nil)
	_ ipfs.BlockGetter   = (*Store)(nil)
	_ ipfs.Holder        = (*Store)(nil)
	_ ipfs.NamePublisher = (*Store)(nil)
	_ ipfs.NameResolver  = (*Store)(nil)
	_ ipfs.APIServer     = (*Store)(nil)
	_ ipfs.Unpinner      = (*Store)(nil)
)

var (
	pluginsOnce sync.Once
	pluginsErr  error

	openMu sync.Mutex
	open   = map[string]bool{} // repos open in this process
)

// setupPlugins loads kubo's built-in plugins (datastores, IPLD codecs) once
// per process, as kubo's own commands and its embedding example do. Daemon
// plugins are never started: the embedded node sends no telemetry, and
// IPFS_TELEMETRY is set to off unless the user set it.
func setupPlugins(repoPath string) error {
	pluginsOnce.Do(func() {
		if os.Getenv("IPFS_TELEMETRY") == "" {
			os.Setenv("IPFS_TELEMETRY", "off")
		}
		plugins, err := loader.NewPluginLoader(repoPath)
		if err != nil {
			pluginsErr = fmt.Errorf("loading kubo plugins: %w", err)
			return
		}
		if err := plugins.Initialize(); err != nil {
			pluginsErr = fmt.Errorf("initialising kubo plugins: %w", err)
			return
		}
		if err := plugins.Inject(); err != nil {
			pluginsErr = fmt.Errorf("injecting kubo plugins: %w", err)
		}
	})
	return pluginsErr
}

// Open starts a node on the repo o names, initialising the repo (as
// `ipfs init` would, without the welcome documents) if there is none.
func Open(ctx context.Context, o Options) (*Store, error) {
	repoPath, err := ipfs.RepoPath(o.IPFSPath)
	if err != nil {
		return nil, err
	}
	if repoPath, err = filepath.Abs(repoPath); err != nil {
		return nil, err
	}
	openMu.Lock()
	defer openMu.Unlock()
	if open[repoPath] {
		return nil, fmt.Errorf("%w: %s is already open in this process", ErrRepoLocked, repoPath)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if locked, err := fsrepo.LockedByOtherProcess(repoPath); err == nil && locked {
		return nil, lockedError(repoPath, nil)
	}
	if err := setupPlugins(repoPath); err != nil {
		return nil, err
	}
	inited := false
	if !fsrepo.IsInitialized(repoPath) {
		if err := initRepo(repoPath, !o.Online); err != nil {
			return nil, err
		}
		inited = true
	}
	r, err := fsrepo.Open(repoPath)
	if err != nil {
		if isLocked(err) {
			return nil, lockedError(repoPath, err)
		}
		return nil, fmt.Errorf("opening IPFS repo %s: %w", repoPath, err)
	}
	cfg, err := r.Config()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("IPFS repo %s: %w", repoPath, err)
	}
	if o.Online && len(o.Peers) > 0 {
		// core.NewNode reads the config again through r.Config(), which
		// returns this same *config.Config (TestPeers shows the peers
		// reach kubo's peering service and the file stays as it was).
		cfg.Peering.Peers = mergePeers(cfg.Peering.Peers, o.Peers, cfg.Identity.PeerID)
	}
	bcfg := &core.BuildCfg{
		Repo:      r,
		Permanent: true,
		Online:    o.Online,
		ExtraOpts: map[string]bool{"pubsub": false, "ipnsps": false},
	}
	if o.Online {
		if bcfg.Routing, err = routing(cfg, repoPath); err != nil {
			r.Close()
			return nil, err
		}
	}
	registerBitswapOptions()
	// The node's lifetime is the Store's, not ctx's.
	node, err := core.NewNode(context.WithoutCancel(ctx), bcfg)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("starting the embedded IPFS node on %s: %w", repoPath, err)
	}
	api, err := coreapi.NewCoreAPI(node)
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("embedded IPFS node: %w", err)
	}
	s := &Store{path: repoPath, node: node, api: api, pin: !o.NoPin, online: o.Online, inited: inited}
	h := holder{PID: os.Getpid(), Command: o.Holder}
	if h.Command == "" {
		h.Command = "mirror"
	}
	if o.ServeAPI {
		if s.apiAddr, err = serveAPI(node, repoPath); err != nil {
			node.Close()
			return nil, err
		}
		h.API = s.apiAddr
	}
	// Best effort: without it, a lock error names no holder.
	_ = writeHolder(repoPath, h)
	open[repoPath] = true
	return s, nil
}

// lockedError is ErrRepoLocked naming the holder when it is a mirror
// process that said so.
func lockedError(repoPath string, cause error) error {
	who := lockHolder(repoPath)
	if who == "" {
		who = "another process (an `ipfs daemon` starting or stopping, or a program using the repo)"
	}
	if cause != nil {
		return fmt.Errorf("%w: %s is held by %s: %v", ErrRepoLocked, repoPath, who, cause)
	}
	return fmt.Errorf("%w: %s is held by %s", ErrRepoLocked, repoPath, who)
}

// mergePeers is have plus add, one entry per peer (the addresses of the
// same peer merged, in order, without duplicates), leaving out self.
func mergePeers(have, add []peer.AddrInfo, self string) []peer.AddrInfo {
	out := make([]peer.AddrInfo, 0, len(have)+len(add))
	at := map[peer.ID]int{}
	for _, p := range slices.Concat(have, add) {
		if p.ID.String() == self {
			continue
		}
		i, ok := at[p.ID]
		if !ok {
			i = len(out)
			at[p.ID] = i
			out = append(out, peer.AddrInfo{ID: p.ID})
		}
		for _, a := range p.Addrs {
			if !slices.ContainsFunc(out[i].Addrs, a.Equal) {
				out[i].Addrs = append(out[i].Addrs, a)
			}
		}
	}
	return out
}

// routing picks the content routing an online node uses, as `ipfs daemon`
// does from Routing.Type.
func routing(cfg *config.Config, repoPath string) (libp2p.RoutingOption, error) {
	typ := cfg.Routing.Type.WithDefault(config.DefaultRoutingType)
	if typ == "" {
		typ = "auto"
	}
	_, err := os.Stat(filepath.Join(repoPath, "swarm.key"))
	if typ == "auto" && (err == nil || os.Getenv("LIBP2P_FORCE_PNET") == "1") {
		typ = "dht" // public HTTP routers are no use to a private network
	}
	switch typ {
	case "auto":
		return libp2p.ConstructDefaultRouting(cfg, libp2p.DHTOption), nil
	case "autoclient":
		return libp2p.ConstructDefaultRouting(cfg, libp2p.DHTClientOption), nil
	case "dht":
		return libp2p.DHTOption, nil
	case "dhtclient":
		return libp2p.DHTClientOption, nil
	case "dhtserver":
		return libp2p.DHTServerOption, nil
	case "none":
		return libp2p.NilRouterOption, nil
	case "delegated":
		return libp2p.ConstructDelegatedOnlyRouting(cfg), nil
	}
	return nil, fmt.Errorf("embedded IPFS node: Routing.Type %q is not supported here; run `ipfs daemon` and mirror uses its API", typ)
}

// initRepo creates a repo as `ipfs init --empty-repo` does: a fresh
// ed25519 identity and kubo's default config; loopback makes its swarm
// addresses loopback-only (kubo's ports and transports, on 127.0.0.1 and
// ::1), so that a repo mirror created offline does not listen on every
// interface once an `ipfs daemon` starts on it.
func initRepo(repoPath string, loopback bool) error {
	if err := os.MkdirAll(repoPath, 0o700); err != nil {
		return fmt.Errorf("creating IPFS repo %s: %w", repoPath, err)
	}
	id, err := config.CreateIdentity(io.Discard, []options.KeyGenerateOption{options.Key.Type(options.Ed25519Key)})
	if err != nil {
		return fmt.Errorf("creating an IPFS identity: %w", err)
	}
	cfg, err := config.InitWithIdentity(id)
	if err != nil {
		return fmt.Errorf("IPFS config: %w", err)
	}
	if loopback {
		cfg.Addresses.Swarm = loopbackAddrs(cfg.Addresses.Swarm)
	}
	if err := fsrepo.Init(repoPath, cfg); err != nil {
		if fsrepo.IsInitialized(repoPath) {
			return nil // another process won the race
		}
		return fmt.Errorf("initialising IPFS repo %s: %w", repoPath, err)
	}
	return nil
}

// loopbackAddrs puts listen addresses on loopback: /ip4/0.0.0.0 becomes
// /ip4/127.0.0.1, /ip6/:: becomes /ip6/::1.
func loopbackAddrs(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		switch {
		case strings.HasPrefix(a, "/ip4/0.0.0.0/"):
			a = "/ip4/127.0.0.1/" + strings.TrimPrefix(a, "/ip4/0.0.0.0/")
		case strings.HasPrefix(a, "/ip6/::/"):
			a = "/ip6/::1/" + strings.TrimPrefix(a, "/ip6/::/")
		}
		out = append(out, a)
	}
	return out
}

func isLocked(err error) bool {
	return errors.As(err, new(fslock.LockedError))
}

// Path is the repo the node runs on.
func (s *Store) Path() string { return s.path }

// Initialized reports whether Open created the repo.
func (s *Store) Initialized() bool { return s.inited }

// APIAddr implements ipfs.APIServer: the multiaddr of the RPC API the node
// serves (Options.ServeAPI), else "".
func (s *Store) APIAddr() string { return s.apiAddr }

// Online reports whether the node is connected to the network.
func (s *Store) Online() bool { return s.online }

// Describe implements ipfs.Describer.
func (s *Store) Describe() string {
	mode := "offline"
	if s.online {
		mode = "online"
	}
	return fmt.Sprintf("embedded IPFS node on %s (%s)", s.path, mode)
}

// Add implements ipfs.Store with the format's fixed settings.
func (s *Store) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	p, err := s.api.Unixfs().Add(ctx, files.NewReaderFile(ipfs.ContextReader(ctx, r)),
		options.Unixfs.CidVersion(ipfs.CIDVersion),
		options.Unixfs.RawLeaves(ipfs.RawLeaves),
		options.Unixfs.Chunker(ipfs.Chunker),
		options.Unixfs.Hash(multihash.SHA2_256),
		options.Unixfs.MaxFileLinks(ipfs.MaxFileLinks),
		options.Unixfs.Layout(options.BalancedLayout),
		options.Unixfs.Inline(false),
		options.Unixfs.Pin(s.pin, ""),
	)
	if err != nil {
		if ctx.Err() != nil {
			return cid.Undef, ctx.Err()
		}
		return cid.Undef, fmt.Errorf("ipfs add: %w", err)
	}
	return p.RootCid(), nil
}

// Cat implements ipfs.Store.
func (s *Store) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	nd, err := s.api.Unixfs().Get(ctx, path.FromCid(c))
	if err != nil {
		return nil, fmt.Errorf("ipfs cat %s: %w", c, classify(ctx, err))
	}
	f, ok := nd.(files.File)
	if !ok {
		nd.Close()
		return nil, fmt.Errorf("ipfs cat %s: not a file", c)
	}
	if offset > 0 {
		var err error
		if sk, ok := f.(io.Seeker); ok {
			_, err = sk.Seek(offset, io.SeekStart)
		} else {
			_, err = io.CopyN(io.Discard, f, offset)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("ipfs cat %s: seeking to %d: %w", c, offset, classify(ctx, err))
		}
	}
	var r io.Reader = f
	if length >= 0 {
		r = io.LimitReader(f, length)
	}
	return &readCloser{Reader: &errReader{ctx: ctx, r: r, c: c}, Closer: f}, nil
}

// Pin implements ipfs.Store.
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	if err := s.api.Pin().Add(ctx, path.FromCid(c), options.Pin.Recursive(true)); err != nil {
		return fmt.Errorf("ipfs pin %s: %w", c, classify(ctx, err))
	}
	return nil
}

// PutBlock implements ipfs.Store.
func (s *Store) PutBlock(ctx context.Context, codec uint64, data []byte) (cid.Cid, error) {
	name := "raw"
	switch codec {
	case cid.Raw:
	case cid.DagProtobuf:
		name = "dag-pb"
	default:
		return cid.Undef, fmt.Errorf("ipfs block put: unsupported codec %#x", codec)
	}
	st, err := s.api.Block().Put(ctx, bytes.NewReader(data),
		options.Block.CidCodec(name), options.Block.Hash(multihash.SHA2_256, -1), options.Block.Pin(s.pin))
	if err != nil {
		return cid.Undef, fmt.Errorf("ipfs block put: %w", err)
	}
	return st.Path().RootCid(), nil
}

// GetBlock implements ipfs.BlockGetter.
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	r, err := s.api.Block().Get(ctx, path.FromCid(c))
	if err != nil {
		return nil, fmt.Errorf("ipfs block get %s: %w", c, classify(ctx, err))
	}
	b, err := io.ReadAll(io.LimitReader(r, ipfs.MaxBlockSize+1))
	if err != nil {
		return nil, fmt.Errorf("ipfs block get %s: %w", c, classify(ctx, err))
	}
	if len(b) > ipfs.MaxBlockSize {
		return nil, fmt.Errorf("ipfs block get %s: block over %d bytes", c, ipfs.MaxBlockSize)
	}
	return b, nil
}

// Close stops the node and releases the repo lock.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		os.Remove(filepath.Join(s.path, holderFile))
		s.closeErr = s.node.Close()
		openMu.Lock()
		delete(open, s.path)
		openMu.Unlock()
	})
	return s.closeErr
}

// classify maps "not found" (offline, or the caller's deadline) to
// ipfs.ErrNotFound, and the caller's cancellation to context.Canceled.
func classify(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up (Ctrl-C): not a missing block.
		return fmt.Errorf("%w (%v)", context.Canceled, err)
	}
	if ipld.IsNotFound(err) || errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return fmt.Errorf("%w: %v", ipfs.ErrNotFound, err)
	}
	return err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errReader classifies read errors (a block missing mid-file).
type errReader struct {
	ctx context.Context
	r   io.Reader
	c   cid.Cid
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("ipfs cat %s: %w", e.c, classify(e.ctx, err))
	}
	return n, err
}
