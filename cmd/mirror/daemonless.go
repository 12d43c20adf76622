package main

import (
	"context"
	"fmt"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

// NodeFlags choose how the embedded IPFS node (used when no daemon runs)
// behaves. Embedded in Globals.
type NodeFlags struct {
	Online bool     `help:"Let the embedded IPFS node (used when no daemon runs on $$IPFS_PATH) join the network configured in its repo. Default: offline."`
	Peer   []string `name:"peer" env:"MIRROR_PEERS" sep:"," placeholder:"MULTIADDR" help:"Keep the embedded IPFS node connected to this peer (/ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...), as kubo's Peering.Peers: added to the repo's for this run, reconnected when dropped (repeatable; comma-separated in the variable). Implies --online. Not with a daemon (--ipfs-api, or one running on $$IPFS_PATH): set Peering.Peers in its config."`
}

// apply sets the embedded node's options; --peer implies --online.
func (f NodeFlags) apply(o *open.Options) {
	o.Online = f.Online || len(f.Peer) > 0
	o.Peers = f.Peer
}

// CarFlags are `mirror push --car`. Embedded in PushCmd.
type CarFlags struct {
	Car string `placeholder:"FILE" type:"path" help:"Write the image to a CAR file instead of an IPFS node (no node needed). Its root is the image's pin handle: 'ipfs dag import FILE' loads and pins the whole image."`

	car *car.Store // what openStore opened for --car
}

// openStore is the CAR store with --car, else the node.
func (c *CarFlags) openStore(ctx context.Context, g *Globals) (ipfs.Store, error) {
	if c.Car == "" {
		return g.OpenStore(ctx)
	}
	cs, err := car.New(c.Car)
	if err != nil {
		return nil, err
	}
	c.car = cs
	return cs, nil
}

// finish builds the pin handle into the CAR openStore opened (store) and
// writes the file; a no-op without --car.
func (c *CarFlags) finish(ctx context.Context, g *Globals, store ipfs.Store, res *manifests.Result) error {
	cs := c.car
	if cs == nil || ipfs.Store(cs) != store {
		return nil
	}
	h, err := pinhandle.Build(ctx, cs, pinhandle.FromResult(res, ""))
	if err != nil {
		return err
	}
	if err := cs.Finish(h); err != nil {
		return err
	}
	blocks, size := cs.Len()
	fmt.Fprintf(g.stderr, "wrote %s: %d blocks, %d bytes; root %s is the pin handle of ipfs://%s (load it with `ipfs dag import %s`)\n",
		cs.Path(), blocks, size, h, res.Root, cs.Path())
	return nil
}
