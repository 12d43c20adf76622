package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// Status is the outcome of one lockfile entry in Verify.
type Status string

// Verify statuses.
const (
	StatusOK     Status = "ok"
	StatusFailed Status = "failed"
)

// Why an entry failed verification (Entry.Problem).
const (
	ProblemNotFound       = "not-found"       // some block could not be found in time
	ProblemNotImage       = "not-an-image"    // the CID does not name an IPFS-enabled image
	ProblemDigestMismatch = "digest-mismatch" // bytes on IPFS do not hash to their descriptor
	ProblemWrongImage     = "wrong-image"     // the CID holds another image: its configs are not the entry's
	ProblemPlatforms      = "platforms"       // the tree holds platforms the entry does not list
	ProblemPinHandle      = "pin-handle"      // the entry's pin handle does not link its root
	ProblemUnavailable    = "unavailable"     // the IPFS node stopped answering
	ProblemOther          = "error"
)

// Entry is the outcome for one lockfile entry.
type Entry struct {
	Source string `json:"source"`
	Mode   string `json:"mode"`
	CID    string `json:"cid"`
	Pin    string `json:"pin,omitempty"`
	Status Status `json:"status"`
	// Problem classifies the failure (one of the Problem constants).
	Problem string `json:"problem,omitempty"`
	Error   string `json:"error,omitempty"`
	// Manifests and Blobs count the documents and the config/layer blobs
	// read and verified; Bytes is their total size.
	Manifests int   `json:"manifests"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	// Pinned counts the pins added (with Options.Pin): CIDs of the
	// tree that the node did not keep pinned.
	Pinned   int           `json:"pinsAdded"`
	Duration time.Duration `json:"durationNs"`

	err error
}

// Err is the entry's error (nil when it verified).
func (e *Entry) Err() error { return e.err }

// Report is the outcome of Verify.
type Report struct {
	LockFile string   `json:"lockfile"`
	Entries  []*Entry `json:"entries"`
	OK       int      `json:"ok"`
	Failed   int      `json:"failed"`
	// Mismatches counts the entries that failed on integrity: a digest
	// mismatch, or a CID that holds another image (wrong-image).
	Mismatches int           `json:"digestMismatches"`
	Blobs      int           `json:"blobs"`
	Bytes      int64         `json:"bytes"`
	Pinned     int           `json:"pinsAdded"`
	Duration   time.Duration `json:"durationNs"`
}

// Err joins the errors of the failed entries (nil when none failed).
func (r *Report) Err() error {
	var errs []error
	for _, e := range r.Entries {
		if e.err != nil {
			errs = append(errs, fmt.Errorf("%s (%s) ipfs://%s: %w", e.Source, e.Mode, e.CID, e.err))
		}
	}
	return errors.Join(errs...)
}

// OnlyMismatches reports whether every failed entry failed with a digest
// mismatch (and at least one failed).
func (r *Report) OnlyMismatches() bool {
	return r.Failed > 0 && r.Failed == r.Mismatches
}

// Options configure Verify.
type Options struct {
	// Jobs bounds the entries and blob reads in flight (default 4).
	Jobs int
	// EntryTimeout bounds the work on one entry (0: no bound besides ctx).
	// On an online node a missing block is looked for until then.
	EntryTimeout time.Duration
	// Pin pins, once an entry verified, every CID of its tree (root,
	// documents, configs, layers, and the pin handle when the entry has
	// one) that the node does not keep pinned already.
	Pin bool
	// Pinned reports whether the node keeps c pinned (recursively,
	// directly or indirectly). When nil, every CID is pinned again (kubo's
	// pin add of a pinned CID is cheap, but is then counted as added).
	Pinned func(ctx context.Context, c cid.Cid) (bool, error)
	// OnEntry is called as each entry finishes; may be nil. Calls are
	// serialized.
	OnEntry func(*Entry)
}

// Verify checks every entry of lock against store: the root CID resolves to
// an IPFS-enabled image (manifests.Resolve, which verifies every index and
// manifest) of the entry's source (its config digests are the entry's
// Configs, when it records them), and every config and layer blob streams
// back with its descriptor's size and sha256 digest. With Pin it then re-pins what the
// node does not keep. A failing entry never stops the others; the returned
// error is for the run as a whole (the context ended).
func Verify(ctx context.Context, store ipfs.Store, lock *lockfile.File, o Options) (*Report, error) {
	start := time.Now()
	if o.Jobs < 1 {
		o.Jobs = 4
	}
	v := &verifier{store: store, o: o, blobs: semaphore.NewWeighted(int64(o.Jobs))}
	rep := &Report{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for _, e := range lock.Images {
		g.Go(func() error {
			r := v.entry(gctx, e)
			mu.Lock()
			defer mu.Unlock()
			rep.Entries = append(rep.Entries, r)
			if o.OnEntry != nil {
				o.OnEntry(r)
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(rep.Entries, func(i, j int) bool {
		a, b := rep.Entries[i], rep.Entries[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Mode < b.Mode
	})
	for _, r := range rep.Entries {
		rep.Blobs += r.Blobs
		rep.Bytes += r.Bytes
		rep.Pinned += r.Pinned
		switch r.Status {
		case StatusOK:
			rep.OK++
		default:
			rep.Failed++
			if r.Problem == ProblemDigestMismatch || r.Problem == ProblemWrongImage {
				rep.Mismatches++
			}
		}
	}
	rep.Duration = time.Since(start)
	return rep, ctx.Err()
}

type verifier struct {
	store ipfs.Store
	o     Options
	blobs *semaphore.Weighted // bounds blob reads across entries
}

func (v *verifier) entry(ctx context.Context, e lockfile.Entry) *Entry {
	start := time.Now()
	r := &Entry{Source: e.Source, Mode: e.Mode, CID: e.CID, Pin: e.Pin}
	ectx, cancel := ctx, context.CancelFunc(func() {})
	if v.o.EntryTimeout > 0 {
		ectx, cancel = context.WithTimeout(ctx, v.o.EntryTimeout)
	}
	defer cancel()
	err := v.check(ectx, e, r)
	r.Duration = time.Since(start)
	if err != nil {
		if ectx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: not done within %s (%w)", ipfs.ErrNotFound, v.o.EntryTimeout, err)
		}
		r.Status, r.err, r.Error, r.Problem = StatusFailed, err, err.Error(), problemOf(err)
		return r
	}
	r.Status = StatusOK
	return r
}

// errPlatforms and errPinHandle mark the two checks of Verify's own.
var (
	errPlatforms = errors.New("platforms differ from the lockfile's")
	errPinHandle = errors.New("pin handle does not link the root")
)

func problemOf(err error) string {
	switch {
	case errors.Is(err, ErrWrongImage):
		return ProblemWrongImage
	case errors.Is(err, manifests.ErrDigestMismatch):
		return ProblemDigestMismatch
	case errors.Is(err, manifests.ErrNotIPFSImage), errors.Is(err, manifests.ErrNoURL):
		return ProblemNotImage
	case errors.Is(err, ipfs.ErrNotFound), errors.Is(err, context.DeadlineExceeded):
		return ProblemNotFound
	case errors.Is(err, ipfs.ErrUnavailable):
		return ProblemUnavailable
	case errors.Is(err, errPlatforms):
		return ProblemPlatforms
	case errors.Is(err, errPinHandle), errors.Is(err, pinhandle.ErrNotHandle):
		return ProblemPinHandle
	}
	return ProblemOther
}

func (v *verifier) check(ctx context.Context, e lockfile.Entry, r *Entry) error {
	root, err := ipfs.ParseCID(e.CID)
	if err != nil {
		return fmt.Errorf("%w: %w", manifests.ErrNotIPFSImage, err)
	}
	tree, err := manifests.Resolve(ctx, v.store, root)
	if err != nil {
		return err
	}
	r.Manifests = len(tree.Docs)
	if err := checkPlatforms(tree, e.Platforms); err != nil {
		return err
	}
	if err := CheckBinding(tree, e); err != nil {
		return err
	}

	// Every config and layer, streamed through the verifying reader.
	var blobs []ocispec.Descriptor
	for d, desc := range tree.Descs {
		if _, doc := tree.Docs[d]; !doc {
			blobs = append(blobs, desc)
		}
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Digest < blobs[j].Digest })
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range blobs {
		if err := v.blobs.Acquire(gctx, 1); err != nil {
			break
		}
		g.Go(func() error {
			defer v.blobs.Release(1)
			rc, err := tree.Open(gctx, d)
			if err != nil {
				return err
			}
			defer rc.Close()
			if _, err := io.Copy(io.Discard, rc); err != nil {
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Blobs = len(blobs)
	for _, d := range blobs {
		r.Bytes += d.Size
	}

	var handle cid.Cid
	if e.Pin != "" {
		if handle, err = ipfs.ParseCID(e.Pin); err != nil {
			return fmt.Errorf("%w: %w", errPinHandle, err)
		}
		got, err := pinhandle.RootOf(ctx, v.store, handle)
		if err != nil {
			return fmt.Errorf("pin handle %s: %w", handle, err)
		}
		if ipfs.V1(got) != ipfs.V1(root) {
			return fmt.Errorf("pin handle %s: %w: it links %s", handle, errPinHandle, got)
		}
	}
	if v.o.Pin {
		return v.pin(ctx, tree, handle, r)
	}
	return nil
}

// checkPlatforms fails when the tree's index lists a platform the entry
// does not keep (an entry with no platforms keeps them all).
func checkPlatforms(tree *manifests.Tree, want []string) error {
	if len(want) == 0 {
		return nil
	}
	keep := map[string]bool{}
	for _, p := range want {
		keep[p] = true
	}
	for _, m := range tree.Manifests() {
		if m.Platform == nil {
			continue
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			p += "/" + m.Platform.Variant
		}
		if !keep[p] && !isAttestation(m) {
			return fmt.Errorf("%w: the image holds %s, the lockfile lists %v", errPlatforms, p, want)
		}
	}
	return nil
}

// isAttestation tells buildkit's attestation manifests (platform
// unknown/unknown) from images.
func isAttestation(m ocispec.Descriptor) bool {
	return m.Platform != nil && m.Platform.OS == "unknown" && m.Platform.Architecture == "unknown"
}

// pin pins the CIDs of the tree the node does not keep.
func (v *verifier) pin(ctx context.Context, tree *manifests.Tree, handle cid.Cid, r *Entry) error {
	n, err := pinhandle.PinTree(ctx, v.store, tree, pinhandle.PinTreeOptions{Handle: handle, Held: v.o.Pinned})
	r.Pinned += n
	return err
}
