package syncer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// The planner decides, for each image × tag × mode of the list, what the
// run does with it (a Status: new, changed, unchanged, immutable,
// restored, repaired, removed, or failed with the previous entry kept).
// It reads and writes nothing itself: what it needs to know about the
// sources and the node it asks through sources and holdings, which the run
// implements with registry HEADs and the node's pin set (probe.go) and the
// tests with fakes.

// sources is what the planner asks of the registries (and of oci: and
// docker-archive: sources).
type sources interface {
	// Tags lists the tags of a registry repository.
	Tags(ctx context.Context, repository string) ([]string, error)
	// Digest is a source's digest now: a manifest HEAD for a registry, the
	// index of a layout or archive.
	Digest(ctx context.Context, ref registry.Ref) (string, error)
	// PushDigest is the digest a re-push target has now (a HEAD).
	PushDigest(ctx context.Context, ref string) (string, error)
}

// holdings is what the planner asks of the IPFS node about a lock entry.
type holdings interface {
	// Holds says whether the node still has root pinned; a store that
	// cannot tell answers true.
	Holds(ctx context.Context, root string) (bool, error)
	// Binding reads the documents of the entry's tree (no blob) and
	// returns its config digests; verify.ErrWrongImage when the tree is
	// another source's image (see verify.EntryBinding).
	Binding(ctx context.Context, e lockfile.Entry) ([]string, error)
}

// step is the plan for one image × tag × mode.
type step struct {
	Source string // the lock source (the canonical reference with the tag)
	Mode   modes.Mode
	Action Status
	// Digest is the source digest the plan saw (empty when the image
	// failed before the source was asked, or for immutable entries, whose
	// digest is the entry's).
	Digest string
	// Prev is the lock entry before the run (nil: none); a failed step
	// keeps it.
	Prev *lockfile.Entry
	// Configs are the configs read from the stored tree of an unchanged
	// entry (recorded when the entry has none yet).
	Configs []string
	// Err is why the step failed.
	Err error
}

// tagPlan is the plan for one image × tag, a step per mode in the order
// of the entry's modes.
type tagPlan struct {
	Image *config.Image
	Tag   string
	Ref   registry.Ref // what to read, when a step writes
	Steps []step
}

// lockView is the lockfile as the run changes it: the planner reads the
// entries, the writers put theirs.
type lockView struct {
	mu sync.Mutex
	f  *lockfile.File
}

// lookup returns a copy of the entry of source in mode, nil if none.
func (l *lockView) lookup(source, mode string) *lockfile.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.f.Lookup(source, mode); ok {
		cp := *e
		return &cp
	}
	return nil
}

func (l *lockView) entries() []lockfile.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]lockfile.Entry(nil), l.f.Images...)
}

func (l *lockView) put(e lockfile.Entry) {
	l.mu.Lock()
	l.f.Put(e)
	l.mu.Unlock()
}

func (l *lockView) remove(source, mode string) {
	l.mu.Lock()
	l.f.Remove(source, mode)
	l.mu.Unlock()
}

type planner struct {
	cfg  *config.File
	lock *lockView
	only *regexp.Regexp
	reg  registry.Options // for parsing references
	src  sources
	held holdings
}

// walk plans the list: it lists the tags of each entry that only selects
// (listFailed gets an entry whose listing failed), and hands every image ×
// tag to each, up to jobs at a time, to plan (with planTag) and carry out.
// Once all are done it returns the lock entries the list no longer
// selects, unless only is set or ctx ended.
func (p *planner) walk(ctx context.Context, jobs int, listFailed func(*config.Image, error), each func(context.Context, *config.Image, string)) []lockfile.Entry {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	selected := map[string]bool{} // lock keys the list selects
	listed := map[string]bool{}   // config sources whose tag set is known
	for _, img := range p.cfg.Images {
		if p.only != nil && !p.only.MatchString(img.Source) {
			continue
		}
		tags, err := p.tags(gctx, img)
		if err != nil {
			listFailed(img, fmt.Errorf("listing tags: %w", err))
			continue
		}
		listed[imageKey(img)] = true
		for _, tag := range tags {
			for _, m := range img.Modes {
				selected[img.LockSource(tag)+"\x00"+string(m)] = true
			}
			g.Go(func() error {
				each(gctx, img, tag)
				return nil
			})
		}
	}
	_ = g.Wait()

	if p.only != nil || ctx.Err() != nil {
		return nil
	}
	var removed []lockfile.Entry
	for _, e := range p.lock.entries() {
		if selected[e.Source+"\x00"+e.Mode] || !p.removable(e, listed) {
			continue
		}
		removed = append(removed, e)
	}
	return removed
}

// removable says whether a lock entry not selected by the list may be
// dropped: its config entry is gone, or its config entry's tags were listed
// and no longer include it. Entries of entries whose listing failed stay.
func (p *planner) removable(e lockfile.Entry, listed map[string]bool) bool {
	for _, img := range p.cfg.Images {
		if !strings.HasPrefix(e.Source, lockPrefix(img)) {
			continue
		}
		if !listed[imageKey(img)] {
			return false
		}
	}
	return true
}

func imageKey(img *config.Image) string {
	return fmt.Sprintf("%s@%s:%d", img.Source, img.Pos.File, img.Pos.Line)
}

func lockPrefix(img *config.Image) string {
	if img.Kind == registry.KindRegistry {
		return img.Repository
	}
	return img.Source
}

// tags resolves which tags of an entry to mirror ("" for a source named by
// digest, or an oci:/docker-archive: source).
func (p *planner) tags(ctx context.Context, img *config.Image) ([]string, error) {
	if img.Kind != registry.KindRegistry {
		return []string{""}, nil
	}
	if img.Digest != "" && img.Tag == "" {
		return []string{""}, nil
	}
	if img.Tags.IsList() {
		if len(img.Tags.List) == 0 {
			return []string{img.Tag}, nil
		}
		return img.Tags.List, nil
	}
	all, err := p.src.Tags(ctx, img.Repository)
	if err != nil {
		return nil, err
	}
	return img.Tags.Select(all)
}

// refFor is the reference to read for an entry and tag.
func refFor(img *config.Image, tag string) string {
	switch img.Kind {
	case registry.KindRegistry:
		return img.LockSource(tag)
	case registry.KindOCI:
		if img.Tag != "" {
			return img.Kind.Prefix() + img.Path + ":" + img.Tag
		}
	}
	return img.Kind.Prefix() + img.Path
}

// planTag plans one entry × tag in all its modes.
func (p *planner) planTag(ctx context.Context, img *config.Image, tag string) tagPlan {
	lockSrc, platforms := img.LockSource(tag), sortedPlatforms(img)
	tp := tagPlan{Image: img, Tag: tag, Steps: make([]step, len(img.Modes))}
	prev := map[modes.Mode]*lockfile.Entry{}
	for i, m := range img.Modes {
		tp.Steps[i] = step{Source: lockSrc, Mode: m}
		if e := p.lock.lookup(lockSrc, string(m)); e != nil {
			prev[m] = e
			tp.Steps[i].Prev = e
		}
	}
	all := func(st Status, err error) tagPlan {
		for i := range tp.Steps {
			tp.Steps[i].Action, tp.Steps[i].Err = st, err
		}
		return tp
	}

	// Immutable tags already locked (in every mode): no registry call.
	if tag != "" && p.cfg.IsImmutable(tag) && len(prev) == len(img.Modes) {
		held, err := p.holdsAll(ctx, tp.Steps)
		if err != nil {
			return all(StatusFailed, err)
		}
		if held && p.boundAll(ctx, prev) {
			return all(StatusImmutable, nil)
		}
	}

	ref, err := registry.ParseRef(refFor(img, tag), p.reg)
	if err != nil {
		return all(StatusFailed, err)
	}
	tp.Ref = ref
	digest, err := p.src.Digest(ctx, ref)
	if err != nil {
		return all(StatusFailed, err)
	}

	for i, m := range img.Modes {
		st := &tp.Steps[i]
		st.Digest = digest
		e := prev[m]
		targets, err := img.PushTargets(tag, digest, string(m))
		if err != nil {
			st.Action, st.Err = StatusFailed, err
			continue
		}
		st.Action = StatusNew
		if e != nil {
			st.Action = StatusChanged
		}
		if e == nil || e.Digest != digest || !equalStrings(e.Platforms, platforms) || !samePushRefs(e.Push, targets) {
			continue
		}
		// The node must hold the root, and the tree under it must be this
		// source's image (documents read, no blob).
		held, err := p.holds(ctx, e.CID)
		if err != nil {
			st.Action, st.Err = StatusFailed, err
			continue
		}
		if !held {
			st.Action = StatusRestored
			continue
		}
		configs, err := p.held.Binding(ctx, *e)
		if errors.Is(err, verify.ErrWrongImage) {
			st.Action = StatusRepaired
			continue
		}
		if err != nil {
			st.Action = StatusRestored // it holds the root but cannot give the tree
			continue
		}
		if p.pushesCurrent(ctx, e.Push) {
			st.Action, st.Configs = StatusUnchanged, configs
		}
	}
	return tp
}

// sortedPlatforms are the entry's platforms as the lockfile records them:
// sorted, never nil.
func sortedPlatforms(img *config.Image) []string {
	platforms := append([]string(nil), img.Platforms...)
	sort.Strings(platforms)
	if platforms == nil {
		platforms = []string{}
	}
	return platforms
}

// holds says whether the node still has the image's root pinned. An
// error is no answer: the image fails, its entry kept, rather than being
// counted as held (and reported unchanged when the node may have lost it)
// or as lost (and read again from the registry, and reported restored,
// when the node may hold it).
func (p *planner) holds(ctx context.Context, root string) (bool, error) {
	has, err := p.held.Holds(ctx, root)
	if err != nil {
		return false, fmt.Errorf("checking that the IPFS node still holds the image: %w", err)
	}
	return has, nil
}

// holdsAll says whether the node holds the root of every step's previous
// entry; an error checking any of them is the answer.
func (p *planner) holdsAll(ctx context.Context, steps []step) (bool, error) {
	all := true
	for _, st := range steps {
		held, err := p.holds(ctx, st.Prev.CID)
		if err != nil {
			return false, err
		}
		all = all && held
	}
	return all, nil
}

// boundAll reports whether every entry's CID holds its source's image (see
// verify.CheckBinding); IPFS reads only (the documents of each tree).
func (p *planner) boundAll(ctx context.Context, prev map[modes.Mode]*lockfile.Entry) bool {
	for _, e := range prev {
		if _, err := p.held.Binding(ctx, *e); err != nil {
			return false
		}
	}
	return true
}

// pushesCurrent checks that every re-push target still has the digest
// recorded.
func (p *planner) pushesCurrent(ctx context.Context, push []lockfile.PushTarget) bool {
	for _, t := range push {
		d, err := p.src.PushDigest(ctx, t.Ref)
		if err != nil || d != t.Digest {
			return false
		}
	}
	return true
}

func samePushRefs(have []lockfile.PushTarget, want []string) bool {
	refs := make([]string, len(have))
	for i, p := range have {
		refs[i] = p.Ref
	}
	w := append([]string(nil), want...)
	sort.Strings(refs)
	sort.Strings(w)
	return equalStrings(refs, w)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
