//go:build !mirror_noembed

package open

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/embedded"
)

func init() {
	errLocked = embedded.ErrRepoLocked
	embeddedOpener = func(ctx context.Context, o Options, peers []peer.AddrInfo) (ipfs.Store, error) {
		return embedded.Open(ctx, embedded.Options{IPFSPath: o.IPFSPath, Online: o.Online, Peers: peers, NoPin: o.NoPin, ServeAPI: o.ServeAPI, Holder: o.Holder})
	}
}
