package ipfs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
)

// The optional capabilities a Store may have, beyond Add, Cat, Pin and
// PutBlock. Each is a small interface a caller asserts on the Store it was
// given (`if h, ok := store.(ipfs.Holder); ok`); a store implements the
// ones it can answer, as methods, and a caller works (or says plainly why
// it cannot) without them. No caller outside the store packages reaches
// through a Store to the client beneath it.
//
//	                 kubo  embedded  car
//	Describer         ✓       ✓       ✓
//	BlockGetter       ✓       ✓       ✓
//	Holder            ✓       ✓
//	BatchHolder       ✓
//	NamePublisher     ✓       ✓
//	NameResolver      ✓       ✓
//	Unpinner          ✓       ✓
//	APIServer                 ✓
//
// A CAR file has no pins (the CAR's root is what a pinning service or
// `ipfs dag import` pins), so the car store is no Unpinner.
//
// A wrapper (Patient) has the capabilities it bounds (BlockGetter, when
// the store beneath has it) and Describer; the others are those of the
// store its Unwrap returns.

// Describer says what a store is, for messages: "kubo RPC API at URL",
// "embedded IPFS node on REPO (offline)", "CAR file PATH". Describe never
// contains a secret (a password in an API URL is masked).
type Describer interface {
	Describe() string
}

// Describe is s's Describe, or its Go type when it has none.
func Describe(s Store) string {
	if d, ok := s.(Describer); ok {
		return d.Describe()
	}
	return fmt.Sprintf("%T", s)
}

// MaxBlockSize bounds one block a store returns (kubo's own limit for a
// block it accepts is 2 MiB).
const MaxBlockSize = 2 << 20

// BlockGetter returns one block's bytes as stored, by CID; a block over
// MaxBlockSize is an error. The pin handle reads file roots with it (their
// cumulative sizes).
type BlockGetter interface {
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
}

// Holder is implemented by stores that can tell cheaply, locally and
// without the network, whether they hold c pinned (recursively, directly
// or as part of something pinned). Sync uses it so that an entry is
// "unchanged" only when the node still has the image; verify --pin, to pin
// only what is not kept.
type Holder interface {
	Holds(ctx context.Context, c cid.Cid) (bool, error)
}

// BatchHolder is a Holder that can also answer for many CIDs in one call
// (a remote node: one request instead of one per CID). HoldsAll reports
// whether every one of cs is pinned; false is no answer for any single
// one of them (ask Holds).
type BatchHolder interface {
	Holder
	HoldsAll(ctx context.Context, cs []cid.Cid) (bool, error)
}

// NamePublisher publishes c as the value of the IPNS name of key, a key of
// the node's keystore ("self" is the node's own), and returns the name
// (k51…). An offline node keeps the record and republishes it once online;
// an online one also puts it to its routers. A key the keystore does not
// have is ErrNoKey.
type NamePublisher interface {
	PublishIPNS(ctx context.Context, key string, c cid.Cid) (name string, err error)
}

// NameResolver resolves an IPNS name (a key such as k51…, or a DNSLink
// domain) to the CID it points at now. A name that does not resolve is
// ErrNotFound; one whose value is not a whole /ipfs/CID is ErrIPNS.
type NameResolver interface {
	ResolveIPNS(ctx context.Context, name string) (cid.Cid, error)
}

// Unpinner is implemented by stores that can drop a pin they made: Unpin
// removes c's own pin (recursive, or direct); a CID that has none (never
// pinned, already unpinned, or kept only as part of something else) is
// ErrNotPinned. Unpinning deletes nothing: the node's garbage collection
// (`ipfs repo gc`) removes the blocks no pin keeps any more. Sync uses it
// to release what entries that left the list had pinned (--prune).
type Unpinner interface {
	Unpin(ctx context.Context, c cid.Cid) error
}

// ErrNotPinned is returned by Unpin for a CID that has no pin of its own.
var ErrNotPinned = errors.New("ipfs: not pinned (or pinned only as part of something else)")

// APIServer is implemented by a store that serves a kubo RPC API of its
// own while open (the embedded node under `mirror serve`); APIAddr is its
// multiaddr, "" when it serves none.
type APIServer interface {
	APIAddr() string
}

// ErrNoKey is returned by PublishIPNS for a key the node's keystore does
// not hold.
var ErrNoKey = errors.New("ipfs: no such key in the node's keystore")

// ErrIPNS: an IPNS name resolved to something else than a whole /ipfs/CID.
var ErrIPNS = errors.New("ipns name does not resolve to an /ipfs/CID")

// IPNSValue turns the value an IPNS name resolved to into its CID: only a
// whole /ipfs/CID (a path below one would name a file by path, which
// mirror never does); anything else is ErrIPNS.
func IPNSValue(name, value string) (cid.Cid, error) {
	rest, ok := strings.CutPrefix(value, "/ipfs/")
	if !ok || strings.Contains(rest, "/") {
		return cid.Undef, fmt.Errorf("/ipns/%s → %q: %w", name, value, ErrIPNS)
	}
	c, err := cid.Decode(rest)
	if err != nil {
		return cid.Undef, fmt.Errorf("/ipns/%s → %q: %w", name, value, ErrIPNS)
	}
	return c, nil
}
