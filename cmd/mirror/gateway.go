package main

import (
	"context"
	"log/slog"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

// GatewayFlags are --gateway, for the commands that only read (pull,
// inspect, serve, verify). Embedded in them.
type GatewayFlags struct {
	Gateway []string `name:"gateway" env:"MIRROR_GATEWAY" sep:"," placeholder:"URL" help:"Read from this HTTP trustless gateway (https://trustless-gateway.link, http://127.0.0.1:8080) instead of an IPFS node: no node is looked for or started (repeatable; comma-separated in the variable). Every block is checked against its CID; a gateway that sends a wrong one is named in the log and the next is asked. Not with --ipfs-api."`
}

// openStore opens the gateways with --gateway, else the node as every
// command does (o's other fields apply to the node).
func (f GatewayFlags) openStore(ctx context.Context, g *Globals, o open.Options) (ipfs.Store, error) {
	if len(f.Gateway) > 0 {
		o.Gateways = f.Gateway
		o.UserAgent = "mirror/" + version
		o.Logger = g.logger(slog.LevelWarn)
	}
	return g.openStore(ctx, o)
}

// logger logs to stderr from level on, as JSON with --json.
func (g *Globals) logger(level slog.Level) *slog.Logger {
	ho := &slog.HandlerOptions{Level: level}
	if g.JSON {
		return slog.New(slog.NewJSONHandler(g.stderr, ho))
	}
	return slog.New(slog.NewTextHandler(g.stderr, ho))
}
