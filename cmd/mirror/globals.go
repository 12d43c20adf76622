package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/redact"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// Globals are the flags every command takes.
type Globals struct {
	IPFSAPI       string        `name:"ipfs-api" aliases:"ipfs-address" env:"IPFS_API" placeholder:"ADDR" help:"IPFS RPC API: a multiaddr (/ip4/127.0.0.1/tcp/5001) or http(s) URL. Default: the daemon (or mirror serve) whose API file is $$IPFS_PATH/api (~/.ipfs), else an embedded node on $$IPFS_PATH."`
	IPFSAPIHeader []string      `name:"ipfs-api-header" placeholder:"'NAME: VALUE'" help:"Extra header for every IPFS API request (e.g. Authorization); never logged."`
	Timeout       time.Duration `default:"0s" help:"Bound the whole command (0: no bound)."`
	Insecure      bool          `help:"Allow plain HTTP and unverified TLS for registries."`
	JSON          bool          `name:"json" help:"Print machine-readable JSON on stdout."`
	Verbose       bool          `short:"v" help:"Add each blob's CID to the progress lines on a terminal."`
	NodeFlags     `embed:""`

	stdout, stderr io.Writer
	command        string // "serve", "compose rewrite": for the repo's holder record
	// secrets are masked in every output (stdout and stderr are
	// redacting writers over them; files go through mask).
	secrets *redact.Set
}

// OpenStore opens the IPFS store in the one resolution order.
func (g *Globals) OpenStore(ctx context.Context) (ipfs.Store, error) {
	return g.OpenStoreWith(ctx, false)
}

// OpenStoreWith opens the store; noPin adds without pinning.
func (g *Globals) OpenStoreWith(ctx context.Context, noPin bool) (ipfs.Store, error) {
	return g.openStore(ctx, open.Options{NoPin: noPin})
}

// openStore opens the store of o with the global flags applied.
func (g *Globals) openStore(ctx context.Context, o open.Options) (ipfs.Store, error) {
	headers := map[string]string{}
	for _, h := range g.IPFSAPIHeader {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageError{fmt.Errorf("--ipfs-api-header %q: want 'NAME: VALUE'", redactHeader(h))}
		}
		headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	o.API, o.Headers, o.Holder = g.IPFSAPI, headers, strings.TrimSpace("mirror "+g.command)
	g.NodeFlags.apply(&o)
	s, err := open.Store(ctx, o)
	if errors.Is(err, open.ErrTwoStores) || errors.Is(err, open.ErrBadGateway) ||
		errors.Is(err, open.ErrBadPeer) || errors.Is(err, open.ErrPeersNeedEmbedded) {
		return nil, usageError{err}
	}
	return s, err
}

func redactHeader(h string) string {
	if k, _, ok := strings.Cut(h, ":"); ok {
		return k + ": ***"
	}
	return "***"
}

// Registry returns the registry options.
func (g *Globals) Registry() registry.Options {
	return registry.Options{Insecure: g.Insecure, UserAgent: "mirror/" + version}
}

// withTimeout applies --timeout.
func (g *Globals) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.Timeout > 0 {
		return context.WithTimeout(ctx, g.Timeout)
	}
	return context.WithCancel(ctx)
}

// parsePlatforms parses --platform values (os/arch[/variant]).
func parsePlatforms(ss []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range ss {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := v1.ParsePlatform(part)
			if err != nil || p.OS == "" || p.Architecture == "" {
				return nil, usageError{fmt.Errorf("--platform %q: want os/arch[/variant]", part)}
			}
			out = append(out, *p)
		}
	}
	return out, nil
}

func isTerminal(w io.Writer) bool { return terminalFile(w) != nil }

// terminalFile is the terminal behind w (through a redacting writer's
// Unwrap), or nil.
func terminalFile(w io.Writer) *os.File {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}
