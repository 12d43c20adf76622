// Package ipfs defines the small interface mirror needs from an IPFS node
// (Store), the optional capabilities a store may have (capabilities.go),
// and the fixed import settings of the IPFS-enabled image format.
//
// Implementations live in subpackages: kubo (the RPC API of a running kubo
// daemon), embedded (an in-process kubo node) and car (a CAR file writer that
// needs no node at all). All of them must produce the same CIDs for the same
// bytes: the settings below are part of the format, never a node's config.
package ipfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ipfs/go-cid"
)

// The import settings every blob is added with. They are what nerdctl and
// stargz-snapshotter get from kubo's defaults with cid-version=1; we pass
// them explicitly so that a daemon's Import.* config cannot change our CIDs.
const (
	CIDVersion   = 1
	Chunker      = "size-262144"
	ChunkSize    = 262144
	HashFunction = "sha2-256"
	RawLeaves    = true
	MaxFileLinks = 174 // boxo's helpers.DefaultLinksPerBlock
)

// ErrNotFound is returned when a CID cannot be found (or fetched within the
// caller's deadline).
var ErrNotFound = errors.New("ipfs: content not found")

// ErrUnavailable is returned when no IPFS node can be reached.
var ErrUnavailable = errors.New("ipfs: no IPFS API reachable")

// ErrIntegrity is returned when a store was sent bytes that do not match
// the CID that names them (an untrusted source such as an HTTP gateway).
var ErrIntegrity = errors.New("ipfs: content does not match its CID")

// Store is what mirror needs from an IPFS node. Every method takes a context
// and must return promptly once it is cancelled.
type Store interface {
	// Add stores the bytes read from r as a UnixFS file with the settings
	// above and returns its CID. When the store pins, the file is pinned.
	Add(ctx context.Context, r io.Reader) (cid.Cid, error)
	// Cat reads the file c names, starting at offset; length < 0 reads to the
	// end. The caller closes the reader.
	Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error)
	// Pin pins c recursively.
	Pin(ctx context.Context, c cid.Cid) error
	// PutBlock stores one raw IPLD block with the given codec (cid.DagProtobuf,
	// cid.Raw) and sha2-256, pinned when the store pins, and returns its CIDv1.
	PutBlock(ctx context.Context, codec uint64, data []byte) (cid.Cid, error)
	// Close releases what the store holds.
	Close() error
}

// ParseCID accepts "ipfs://CID", "/ipfs/CID" or a bare CID (v0 or v1).
func ParseCID(s string) (cid.Cid, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(t, "ipfs://")
	t = strings.TrimPrefix(t, "/ipfs/")
	t = strings.TrimSuffix(t, "/")
	if t == "" || strings.ContainsAny(t, "/?#") {
		return cid.Undef, fmt.Errorf("%q is not a CID (want ipfs://CID or a bare CID)", s)
	}
	c, err := cid.Decode(t)
	if err != nil {
		return cid.Undef, fmt.Errorf("%q is not a CID: %w", s, err)
	}
	return c, nil
}

// URL returns the descriptor URL for c: "ipfs://" + the base32 CIDv1.
func URL(c cid.Cid) string {
	return "ipfs://" + V1(c).String()
}

// V1 returns c as a CIDv1 (CIDv0 is always dag-pb, sha2-256).
func V1(c cid.Cid) cid.Cid {
	if c.Version() == 0 {
		return cid.NewCidV1(cid.DagProtobuf, c.Hash())
	}
	return c
}

// ContextReader returns r failing reads with ctx's error once ctx is done:
// an add that reads from it stops then.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
