// Package open picks the ipfs.Store that every mirror command uses, in one
// resolution order: an explicit API address (--ipfs-api / IPFS_API), else
// the API file a running daemon wrote to $IPFS_PATH/api (default ~/.ipfs/api).
package open

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

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
}

// Store opens the store the options name and checks that it answers.
func Store(ctx context.Context, o Options) (ipfs.Store, error) {
	addr := o.API
	if addr == "" {
		a, err := kubo.RepoAPIAddr(o.IPFSPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w: no --ipfs-api given and no running daemon found ($IPFS_PATH/api is missing); start one with `ipfs daemon` or pass --ipfs-api /ip4/127.0.0.1/tcp/5001", ipfs.ErrUnavailable)
		case err != nil:
			return nil, fmt.Errorf("%w: %v", ipfs.ErrUnavailable, err)
		}
		addr = a
	}
	s, err := kubo.New(addr, kubo.Options{Pin: !o.NoPin, Headers: o.Headers})
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		return nil, fmt.Errorf("%w; start a node with `ipfs daemon` or pass --ipfs-api", err)
	}
	return s, nil
}
