package syncer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// Pruning (--prune, prune: true). A sync pins what it writes one piece at
// a time: every file it adds (each blob, the root descriptor) gets its own
// recursive pin, and so does every node of the pin handle (its
// directories and its two small files; a pinning store pins each block
// PutBlock writes). An entry that leaves the list leaves the lockfile but
// keeps those pins; with prune the run also removes them — only those no
// entry still in the lockfile pins too (a shared base layer, the same
// image under two tags, the handle's oci-layout file) — so that the
// node's `ipfs repo gc` can free the rest.
//
// The planner (planPrune) is pure: what each entry pins it asks through
// pinReader, which the run answers from the node (storePins) and the
// tests with fakes. It reads nothing unless an entry was removed.
//
// The pins go before the lockfile is written, and an entry whose pins
// could not all be released stays in the lockfile (reported failed), so
// that the next prune tries again: once dropped from the lockfile, an
// entry's pins would never be found again.

// pinReader is what the prune asks of the node about a lock entry.
type pinReader interface {
	// Pins lists the CIDs the sync that wrote e pinned: its root, and
	// either its pin handle and every node the handle links (its
	// directories, its files, the blobs) or, for an entry without a
	// handle, every blob of its tree. An error says the list is
	// incomplete; what it holds (at least the root and the handle the
	// entry names) is still right.
	Pins(ctx context.Context, e lockfile.Entry) ([]string, error)
}

// entryPrune is the plan for one removed entry.
type entryPrune struct {
	// Unpin are the CIDs it pinned that no remaining entry pins, sorted.
	Unpin []string
	// Kept counts the CIDs it pinned that a remaining entry pins too.
	Kept int
	// Partial is why its pins could not all be found (Unpin then holds
	// those that were).
	Partial error
}

// prunePlan is what a prune releases.
type prunePlan struct {
	// Entries are the plans of the removed entries, in their order.
	Entries []entryPrune
	// Unpin are the distinct CIDs to unpin, sorted; Kept counts the
	// distinct CIDs of removed entries that stay pinned.
	Unpin []string
	Kept  int
}

// planPrune plans what the removed entries release: every CID one of them
// pinned that none of the remaining entries pins. Each distinct root and
// handle is read once, up to jobs at a time. A remaining entry whose pins
// cannot all be read is an error: what it needs is then unknown, and
// nothing is planned.
func planPrune(ctx context.Context, removed, remaining []lockfile.Entry, pr pinReader, jobs int) (*prunePlan, error) {
	plan := &prunePlan{Entries: make([]entryPrune, len(removed)), Unpin: []string{}}
	if len(removed) == 0 {
		return plan, nil
	}
	type pins struct {
		cids []string
		err  error
	}
	key := func(e lockfile.Entry) string { return e.CID + " " + e.Pin }
	read := map[string]*pins{}
	var order []lockfile.Entry
	for _, e := range append(append([]lockfile.Entry(nil), removed...), remaining...) {
		if read[key(e)] == nil {
			read[key(e)] = &pins{}
			order = append(order, e)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for _, e := range order {
		p := read[key(e)]
		g.Go(func() error {
			p.cids, p.err = pr.Pins(gctx, e)
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	needed := map[string]bool{}
	for _, e := range remaining {
		p := read[key(e)]
		if p.err != nil {
			return nil, fmt.Errorf("cannot tell what %s (%s), still in the lockfile, pins: %w", e.Source, e.Mode, p.err)
		}
		for _, c := range p.cids {
			needed[c] = true
		}
	}
	unpin, kept := map[string]bool{}, map[string]bool{}
	for i, e := range removed {
		p := read[key(e)]
		ep := &plan.Entries[i]
		ep.Partial = p.err
		for _, c := range dedupSorted(p.cids) {
			if needed[c] {
				ep.Kept++
				kept[c] = true
				continue
			}
			ep.Unpin = append(ep.Unpin, c)
			unpin[c] = true
		}
	}
	for c := range unpin {
		plan.Unpin = append(plan.Unpin, c)
	}
	sort.Strings(plan.Unpin)
	plan.Kept = len(kept)
	return plan, nil
}

func dedupSorted(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

// drop takes the entries the list no longer selects out of the lockfile
// (not in a dry run) and reports them removed; with prune, it first
// releases what they pinned, and an entry whose pins could not be
// released is reported failed and stays.
func (s *syncer) drop(ctx context.Context, removed []lockfile.Entry, prune bool) {
	reports := make([]*ImageReport, len(removed))
	for i, e := range removed {
		reports[i] = &ImageReport{Source: e.Source, Mode: e.Mode, Status: StatusRemoved, SourceDigest: e.Digest, CID: e.CID, Platforms: e.Platforms}
	}
	errs := make([]error, len(removed))
	if prune {
		errs = s.prune(ctx, removed, reports)
	}
	for i, e := range removed {
		if errs[i] != nil {
			s.rep.fail(reports[i], errs[i])
			continue
		}
		if !s.o.DryRun {
			s.lock.remove(e.Source, e.Mode)
		}
		s.rep.add(reports[i])
	}
}

// prune plans what the removed entries release and, unless this is a dry
// run, unpins it; it fills the reports and returns, per removed entry, the
// error that keeps it in the lockfile.
func (s *syncer) prune(ctx context.Context, removed []lockfile.Entry, reports []*ImageReport) []error {
	errs := make([]error, len(removed))
	pr := &PruneReport{Unpinned: []string{}}
	s.rep.setPrune(pr)
	if len(removed) == 0 || ctx.Err() != nil {
		return errs
	}
	un, ok := s.store.(ipfs.Unpinner)
	if !ok {
		pr.Skipped = ipfs.Describe(s.store) + " holds no pins"
		return errs
	}
	gone := map[string]bool{}
	for _, e := range removed {
		gone[e.Source+"\x00"+e.Mode] = true
	}
	var remaining []lockfile.Entry
	for _, e := range s.lock.entries() {
		if !gone[e.Source+"\x00"+e.Mode] {
			remaining = append(remaining, e)
		}
	}
	plan, err := planPrune(ctx, removed, remaining, storePins{s.store}, s.o.Jobs)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("pruning: %w; the entry stays in the lockfile until a prune can release its pins", err)
		}
		return errs
	}
	pr.Kept = plan.Kept

	results := map[string]error{}
	if !s.o.DryRun {
		for _, c := range plan.Unpin {
			id, err := ipfs.ParseCID(c)
			if err == nil {
				err = un.Unpin(ctx, id)
			}
			results[c] = err
		}
	}
	for _, c := range plan.Unpin {
		switch err := results[c]; {
		case err == nil:
			pr.Unpinned = append(pr.Unpinned, c)
		case errors.Is(err, ipfs.ErrNotPinned):
			pr.NotPinned++
		}
	}
	for i, ep := range plan.Entries {
		r := reports[i]
		r.PinsKept = ep.Kept
		if ep.Partial != nil {
			r.Warning = fmt.Sprintf("not every pin of the entry could be found (%v): only those found were released", ep.Partial)
		}
		var failed []error
		for _, c := range ep.Unpin {
			switch err := results[c]; {
			case err == nil:
				r.Unpinned = append(r.Unpinned, c)
			case !errors.Is(err, ipfs.ErrNotPinned):
				failed = append(failed, err)
			}
		}
		if len(failed) > 0 {
			errs[i] = fmt.Errorf("pruning: unpinning %d of %d CIDs failed (first: %w); the entry stays in the lockfile until a prune can release its pins", len(failed), len(ep.Unpin), failed[0])
		}
	}
	return errs
}

// pinReadTimeout bounds reading what one entry pins (an online node asks
// the network for a block it does not have).
const pinReadTimeout = time.Minute

// Bounds of one pin handle walk: the nodes visited and the directory
// depth (a handle is three directories deep, a few more when sharded).
const (
	maxHandleNodes = 1 << 16
	maxHandleDepth = 8
)

// storePins implements pinReader with the node: the pin handle's
// directories are read block by block, an entry without a handle has its
// tree's documents read.
type storePins struct{ store ipfs.Store }

func (s storePins) Pins(ctx context.Context, e lockfile.Entry) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, pinReadTimeout)
	defer cancel()
	set := map[string]bool{}
	add := func(c cid.Cid) { set[ipfs.V1(c).String()] = true }
	list := func() []string {
		out := make([]string, 0, len(set))
		for c := range set {
			out = append(out, c)
		}
		sort.Strings(out)
		return out
	}
	root, err := ipfs.ParseCID(e.CID)
	if err != nil {
		return nil, fmt.Errorf("the entry's cid: %w", err)
	}
	add(root)
	var handleErr error
	if e.Pin != "" {
		h, err := ipfs.ParseCID(e.Pin)
		if err != nil {
			return list(), fmt.Errorf("the entry's pin: %w", err)
		}
		if handleErr = walkHandle(ctx, s.store, h, add); handleErr == nil {
			return list(), nil
		}
	}
	// No handle, or one that cannot be read: the tree's blobs.
	tree, err := manifests.Resolve(ctx, s.store, root)
	if err == nil {
		for _, d := range tree.Descs {
			c, cerr := manifests.CID(d)
			if cerr != nil {
				err = cerr
				break
			}
			add(c)
		}
	}
	if err != nil {
		err = fmt.Errorf("reading the image %s: %w", root, err)
	}
	return list(), errors.Join(handleErr, err)
}

// walkHandle calls add with the handle h and every node its directories
// link — subdirectories (and HAMT shards), which it reads, and files,
// which it does not enter: each file has its own pin, which keeps its
// blocks.
func walkHandle(ctx context.Context, store ipfs.Store, h cid.Cid, add func(cid.Cid)) error {
	bg, ok := store.(ipfs.BlockGetter)
	if !ok {
		return fmt.Errorf("pin handle %s: %s cannot return blocks", h, ipfs.Describe(store))
	}
	seen := map[cid.Cid]bool{}
	var visit func(c cid.Cid, depth int) error
	visit = func(c cid.Cid, depth int) error {
		if seen[c] {
			return nil
		}
		if seen[c] = true; len(seen) > maxHandleNodes {
			return fmt.Errorf("pin handle %s: more than %d nodes", h, maxHandleNodes)
		}
		add(c)
		if c.Type() != cid.DagProtobuf {
			return nil // a raw block: a file of one block
		}
		if depth > maxHandleDepth {
			return fmt.Errorf("pin handle %s: directories nested deeper than %d", h, maxHandleDepth)
		}
		b, err := bg.GetBlock(ctx, c)
		if err != nil {
			return fmt.Errorf("pin handle %s: %w", h, err)
		}
		nd, err := merkledag.DecodeProtobuf(b)
		if err != nil {
			return fmt.Errorf("pin handle %s: node %s: %w", h, c, err)
		}
		fs, err := unixfs.FSNodeFromBytes(nd.Data())
		if err != nil {
			return fmt.Errorf("pin handle %s: node %s: %w", h, c, err)
		}
		if !fs.IsDir() {
			return nil
		}
		for _, l := range nd.Links() {
			if err := visit(l.Cid, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(h, 0)
}
