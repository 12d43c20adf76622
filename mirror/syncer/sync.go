package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// Status of one image × tag × mode in a sync.
type Status string

// Statuses.
const (
	StatusNew       Status = "new"       // not in the lockfile; mirrored
	StatusChanged   Status = "changed"   // the source moved (or the entry's settings changed); mirrored again
	StatusUnchanged Status = "unchanged" // the source digest equals the lockfile's: nothing read, nothing added
	StatusImmutable Status = "immutable" // an immutable tag already locked: not even checked
	StatusRestored  Status = "restored"  // the source is unchanged but the IPFS node no longer held the image: mirrored again
	StatusRepaired  Status = "repaired"  // the source is unchanged but the entry's CID held another image (its configs are not the entry's): mirrored again
	StatusRemoved   Status = "removed"   // in the lockfile, no longer selected by the list: entry dropped
	StatusFailed    Status = "failed"    // an error; the previous entry (if any) is kept
)

// ImageReport is the outcome for one source image × tag × mode.
type ImageReport struct {
	Source       string                `json:"source"`
	Mode         string                `json:"mode"`
	Status       Status                `json:"status"`
	SourceDigest string                `json:"sourceDigest,omitempty"`
	CID          string                `json:"cid,omitempty"`
	Configs      []string              `json:"configs,omitempty"`
	Pin          string                `json:"pin,omitempty"`
	Platforms    []string              `json:"platforms"`
	Push         []lockfile.PushTarget `json:"push,omitempty"`
	BlobsAdded   int                   `json:"blobsAdded"`
	BytesAdded   int64                 `json:"bytesAdded"`
	Duration     time.Duration         `json:"durationNs"`
	Error        string                `json:"error,omitempty"`
	// Pos is where the entry is in the list (for annotations).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`

	err error
}

// Err is the image's error, if it failed.
func (r *ImageReport) Err() error { return r.err }

// Report is the outcome of a sync.
type Report struct {
	Images      []*ImageReport `json:"images"`
	BlobsAdded  int            `json:"blobsAdded"`
	BytesAdded  int64          `json:"bytesAdded"`
	Duration    time.Duration  `json:"durationNs"`
	LockFile    string         `json:"lockfile"`
	LockChanged bool           `json:"lockfileChanged"`
	DryRun      bool           `json:"dryRun"`
	Failed      int            `json:"failed"`
}

// Err joins the errors of the failed images (nil when none failed).
func (r *Report) Err() error {
	var errs []error
	for _, im := range r.Images {
		if im.err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", im.Source, im.Mode, im.err))
		}
	}
	return errors.Join(errs...)
}

// EventType tells what a Event reports.
type EventType int

// Sync events.
const (
	ImageStarted EventType = iota
	ImageFinished
	BlobEvent
)

// Event reports progress; Image is set for image events, Blob for blob
// events. Callbacks must be quick and safe for concurrent use.
type Event struct {
	Type  EventType
	Image *ImageReport
	Blob  manifests.Event
}

// ImageLabel is the Image of a sync's blob events: the lockfile source,
// with the mode unless it is plain.
func ImageLabel(source, mode string) string {
	return modes.Mode(mode).Label(source)
}

// Converter returns the image conversion of mode for an entry (nil for
// plain). It is how the eStargz and encrypted modes plug in.
type Converter func(img *config.Image, mode modes.Mode) (manifests.ImageConverter, error)

// Options configure Sync.
type Options struct {
	Registry registry.Options
	Retry    registry.RetryOptions
	// Jobs bounds images in flight and blob transfers (default 4).
	Jobs int
	// DryRun plans (HEADs only) and writes nothing.
	DryRun bool
	// Only keeps the entries whose source matches.
	Only *regexp.Regexp
	// LockPath is where the lockfile is written (atomically).
	LockPath string
	// Convert provides the non-plain modes; nil means only plain works.
	Convert Converter
	// PinHandle, when set, builds a pin handle for each image written and
	// returns its CID (recorded as the entry's pin). Unchanged entries that
	// have no pin yet get one built from the stored tree (IPFS reads only).
	PinHandle func(ctx context.Context, res *manifests.Result) (cid.Cid, error)
	// CARDir, when set, gets one CAR per entry (CARName), rooted at its pin
	// handle; an unchanged entry whose CAR exists is not exported again.
	CARDir string
	// OnEvent receives progress; may be nil.
	OnEvent func(Event)
}

// Sync mirrors every entry of the list into store, updating lock (which it
// writes to opts.LockPath unless DryRun). One failing image never stops the
// others: it is reported, and its previous lock entry kept. The returned
// error is for the run as a whole (the lockfile could not be written, the
// context ended); per-image errors are in the report.
func Sync(ctx context.Context, store ipfs.Store, cfg *config.File, lock *lockfile.File, o Options) (*Report, error) {
	start := time.Now()
	if o.Jobs < 1 {
		o.Jobs = 4
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	if o.Registry.Transport == nil {
		o.Registry.Transport = registry.NewRetryTransport(o.Registry.BaseTransport(), o.Retry)
	}
	if o.Registry.Puller == nil {
		// One puller for the run: one ping and token per repository.
		if p, err := remote.NewPuller(o.Registry.Remote(ctx)...); err == nil {
			o.Registry.Puller = p
		}
	}
	if o.Registry.Blobs == nil {
		o.Registry.Blobs = registry.NewBlobFetcher(o.Registry)
	}
	s := &syncer{store: store, cfg: cfg, lock: lock, o: o, rep: &Report{LockFile: o.LockPath, DryRun: o.DryRun}, runCtx: ctx}
	s.w = manifests.NewWriter(store, o.Jobs, func(e manifests.Event) {
		if e.Type == manifests.BlobDone && !e.Cached {
			s.mu.Lock()
			s.rep.BlobsAdded++
			s.rep.BytesAdded += e.Size
			s.mu.Unlock()
		}
		o.OnEvent(Event{Type: BlobEvent, Blob: e})
	})

	s.prefetchHeld(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	selected := map[string]bool{} // lock keys the list selects
	listed := map[string]bool{}   // config sources whose tag set is known
	for _, img := range cfg.Images {
		if o.Only != nil && !o.Only.MatchString(img.Source) {
			continue
		}
		tags, err := s.tags(gctx, img)
		if err != nil {
			for _, m := range img.Modes {
				s.fail(&ImageReport{Source: img.Source, Mode: string(m), File: img.Pos.File, Line: img.Pos.Line}, fmt.Errorf("listing tags: %w", err))
			}
			continue
		}
		listed[imageKey(img)] = true
		for _, tag := range tags {
			for _, m := range img.Modes {
				selected[img.LockSource(tag)+"\x00"+string(m)] = true
			}
			g.Go(func() error {
				s.one(gctx, img, tag)
				return nil
			})
		}
	}
	_ = g.Wait()

	// Entries of the lockfile the list no longer selects.
	if o.Only == nil && ctx.Err() == nil {
		for _, e := range append([]lockfile.Entry(nil), lock.Images...) {
			key := e.Source + "\x00" + e.Mode
			if selected[key] || !s.removable(e, listed) {
				continue
			}
			r := &ImageReport{Source: e.Source, Mode: e.Mode, Status: StatusRemoved, SourceDigest: e.Digest, CID: e.CID, Platforms: e.Platforms}
			if !o.DryRun {
				lock.Remove(e.Source, e.Mode)
			}
			s.add(r)
		}
	}

	sort.Slice(s.rep.Images, func(i, j int) bool {
		a, b := s.rep.Images[i], s.rep.Images[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Mode < b.Mode
	})
	for _, r := range s.rep.Images {
		if r.Status == StatusFailed {
			s.rep.Failed++
		}
	}
	s.rep.Duration = time.Since(start)
	if !o.DryRun && o.LockPath != "" {
		changed, err := writeLock(lock, o.LockPath)
		if err != nil {
			return s.rep, fmt.Errorf("writing %s: %w", o.LockPath, err)
		}
		s.rep.LockChanged = changed
	}
	return s.rep, ctx.Err()
}

// removable says whether a lock entry not selected by the list may be
// dropped: its config entry is gone, or its config entry's tags were listed
// and no longer include it. Entries of entries whose listing failed stay.
func (s *syncer) removable(e lockfile.Entry, listed map[string]bool) bool {
	for _, img := range s.cfg.Images {
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

// writeLock writes the lockfile atomically and reports whether its bytes
// changed (a no-op run rewrites nothing).
func writeLock(lock *lockfile.File, path string) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, lock.Marshal()) {
		return false, nil
	}
	if err := lock.WriteFile(path); err != nil {
		return false, err
	}
	return true, nil
}

type syncer struct {
	store ipfs.Store
	cfg   *config.File
	o     Options
	w     *manifests.Writer

	lockMu sync.Mutex
	lock   *lockfile.File

	mu  sync.Mutex
	rep *Report

	// held are the roots known pinned (from one batched check at the
	// start); read-only once the workers run.
	held map[string]bool

	// runCtx is Sync's context, only to tell an interrupted run's
	// failures from others.
	runCtx context.Context
}

func (s *syncer) add(r *ImageReport) {
	s.mu.Lock()
	s.rep.Images = append(s.rep.Images, r)
	s.mu.Unlock()
}

func (s *syncer) fail(r *ImageReport, err error) {
	r.Status, r.err, r.Error = StatusFailed, err, err.Error()
	if errors.Is(s.runCtx.Err(), context.Canceled) {
		// Whatever the error says ("context canceled", "content not
		// found: …"), the run was interrupted.
		r.Error = "interrupted"
	}
	s.add(r)
	s.o.OnEvent(Event{Type: ImageFinished, Image: r})
}

// tags resolves which tags of an entry to mirror ("" for a source named by
// digest, or an oci:/docker-archive: source).
func (s *syncer) tags(ctx context.Context, img *config.Image) ([]string, error) {
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
	repo, err := name.NewRepository(img.Repository, s.o.Registry.NameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrBadReference, err)
	}
	all, err := remote.List(repo, s.o.Registry.Remote(ctx)...)
	if err != nil {
		return nil, err
	}
	return img.Tags.Select(all)
}

// refFor is the reference to read for an entry and tag.
func (s *syncer) refFor(img *config.Image, tag string) string {
	switch img.Kind {
	case registry.KindRegistry:
		return img.LockSource(tag)
	case registry.KindOCI:
		if img.Tag != "" {
			return "oci:" + img.Path + ":" + img.Tag
		}
		return "oci:" + img.Path
	}
	return "docker-archive:" + img.Path
}

// one mirrors one entry × tag in all its modes, sharing the source fetch.
func (s *syncer) one(ctx context.Context, img *config.Image, tag string) {
	lockSrc := img.LockSource(tag)
	platforms := append([]string(nil), img.Platforms...)
	sort.Strings(platforms)
	if platforms == nil {
		platforms = []string{}
	}
	reports := map[modes.Mode]*ImageReport{}
	for _, m := range img.Modes {
		r := &ImageReport{Source: lockSrc, Mode: string(m), Platforms: platforms, File: img.Pos.File, Line: img.Pos.Line}
		reports[m] = r
		s.o.OnEvent(Event{Type: ImageStarted, Image: r})
	}
	started := time.Now()
	finish := func(m modes.Mode, st Status, err error) {
		r := reports[m]
		r.Duration = time.Since(started)
		if err != nil {
			s.fail(r, err)
			return
		}
		r.Status = st
		s.add(r)
		s.o.OnEvent(Event{Type: ImageFinished, Image: r})
	}
	failAll := func(err error) {
		for _, m := range img.Modes {
			finish(m, "", err)
		}
	}

	// Immutable tags already locked (in every mode): no registry call.
	prev := map[modes.Mode]*lockfile.Entry{}
	s.lockMu.Lock()
	for _, m := range img.Modes {
		if e, ok := s.lock.Lookup(lockSrc, string(m)); ok {
			cp := *e
			prev[m] = &cp
		}
	}
	s.lockMu.Unlock()
	if tag != "" && s.cfg.IsImmutable(tag) && len(prev) == len(img.Modes) && s.holdsAll(ctx, prev) && s.boundAll(ctx, prev) {
		for _, m := range img.Modes {
			fillFromLock(reports[m], prev[m])
			finish(m, StatusImmutable, nil)
		}
		return
	}

	ref, err := registry.ParseRef(s.refFor(img, tag), s.o.Registry)
	if err != nil {
		failAll(err)
		return
	}
	digest, err := s.head(ctx, ref)
	if err != nil {
		failAll(err)
		return
	}

	// Which modes need work?
	var todo []modes.Mode
	restore, repair := map[modes.Mode]bool{}, map[modes.Mode]bool{}
	for _, m := range img.Modes {
		r := reports[m]
		r.SourceDigest = digest.String()
		e := prev[m]
		targets, err := img.PushTargets(tag, digest.String(), string(m))
		if err != nil {
			finish(m, "", err)
			continue
		}
		if e != nil && e.Digest == digest.String() && equalStrings(e.Platforms, platforms) && samePushRefs(e.Push, targets) {
			// The node must hold the root, and the tree under it must be
			// this source's image (documents read, no blob).
			var configs []string
			if !s.holds(ctx, e.CID) {
				restore[m] = true
			} else if c, err := verify.EntryBinding(ctx, s.store, *e); errors.Is(err, verify.ErrWrongImage) {
				repair[m] = true
			} else if err != nil {
				restore[m] = true // it holds the root but cannot give the tree
			} else {
				configs = c
			}
			if restore[m] || repair[m] {
				todo = append(todo, m)
				continue
			}
			if ok, err := s.pushesCurrent(ctx, e.Push); err == nil && ok {
				fillFromLock(r, e)
				if len(r.Configs) == 0 {
					r.Configs = configs // an entry from before configs were recorded
				}
				if !s.o.DryRun {
					if err := s.upgrade(ctx, r, e); err != nil {
						finish(m, "", err)
						continue
					}
				}
				finish(m, StatusUnchanged, nil)
				continue
			}
		}
		todo = append(todo, m)
	}
	if len(todo) == 0 {
		return
	}
	if s.o.DryRun {
		for _, m := range todo {
			finish(m, statusOf(prev[m], restore[m], repair[m]), nil)
		}
		return
	}

	src, err := registry.OpenSource(ctx, ref, s.o.Registry)
	if err != nil {
		for _, m := range todo {
			finish(m, "", err)
		}
		return
	}
	if src.Digest != digest {
		// The tag moved between HEAD and GET: record what we read.
		for _, m := range todo {
			reports[m].SourceDigest = src.Digest.String()
		}
	}
	ps, err := parsePlatformList(img.Platforms)
	if err != nil {
		for _, m := range todo {
			finish(m, "", err)
		}
		return
	}
	for _, m := range todo {
		r := reports[m]
		err := s.write(ctx, img, tag, m, src, ps, r)
		finish(m, statusOf(prev[m], restore[m], repair[m]), err)
	}
}

// write pushes one mode of an opened source, re-pushes it, records it.
func (s *syncer) write(ctx context.Context, img *config.Image, tag string, m modes.Mode, src *registry.Source, ps []v1.Platform, r *ImageReport) error {
	var conv manifests.ImageConverter
	if m != modes.Plain {
		if s.o.Convert == nil {
			return fmt.Errorf("mode %s is not available in this build", m)
		}
		c, err := s.o.Convert(img, m)
		if err != nil {
			return err
		}
		conv = c
	}
	res, err := oci.PushSource(ctx, s.w, src, oci.PushOptions{Registry: s.o.Registry, Platforms: ps, Convert: conv, Image: ImageLabel(r.Source, r.Mode)})
	if err != nil {
		return err
	}
	r.CID = res.Root.String()
	tree, err := manifests.Resolve(ctx, s.store, res.Root)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", res.Root, err)
	}
	if r.Configs, err = verify.TreeConfigs(tree); err != nil {
		return err
	}
	if s.o.PinHandle != nil {
		pin, err := s.o.PinHandle(ctx, res.Result)
		if err != nil {
			return fmt.Errorf("building the pin handle: %w", err)
		}
		r.Pin = pin.String()
	}
	targets, err := img.PushTargets(tag, r.SourceDigest, string(m))
	if err != nil {
		return err
	}
	for _, t := range targets {
		pr, err := oci.Pull(ctx, s.store, res.Root, t, oci.PullOptions{Registry: s.o.Registry, Jobs: s.o.Jobs})
		if err != nil {
			return fmt.Errorf("re-pushing to %s: %w", t, err)
		}
		r.Push = append(r.Push, lockfile.PushTarget{Ref: t, Digest: pr.Digest.String()})
	}
	if err := s.exportCAR(ctx, r); err != nil {
		return err
	}
	s.record(r)
	return nil
}

func (s *syncer) record(r *ImageReport) {
	entry := lockfile.Entry{Source: r.Source, Mode: r.Mode, Digest: r.SourceDigest, Platforms: r.Platforms, CID: r.CID, Configs: r.Configs, Pin: r.Pin, Push: r.Push}
	s.lockMu.Lock()
	s.lock.Put(entry)
	s.lockMu.Unlock()
}

// upgrade gives an unchanged entry what this run's options add: a pin
// handle it lacks, a CAR not yet exported. Only IPFS is read.
func (s *syncer) upgrade(ctx context.Context, r *ImageReport, e *lockfile.Entry) error {
	changed := len(e.Configs) == 0 && len(r.Configs) > 0
	if s.o.PinHandle != nil && r.Pin == "" {
		root, err := ipfs.ParseCID(r.CID)
		if err != nil {
			return err
		}
		h, err := PinHandleOf(ctx, s.store, root, "")
		if err != nil {
			return fmt.Errorf("building the pin handle: %w", err)
		}
		r.Pin, changed = h.String(), true
	}
	if s.o.CARDir != "" {
		if _, err := os.Stat(filepath.Join(s.o.CARDir, CARName(r.Source, r.Mode))); err != nil {
			if err := s.exportCAR(ctx, r); err != nil {
				return err
			}
		}
	}
	if changed {
		s.record(r)
	}
	return nil
}

func (s *syncer) exportCAR(ctx context.Context, r *ImageReport) error {
	if s.o.CARDir == "" {
		return nil
	}
	root, err := ipfs.ParseCID(r.CID)
	if err != nil {
		return err
	}
	if _, err := ExportCAR(ctx, s.store, root, filepath.Join(s.o.CARDir, CARName(r.Source, r.Mode)), ""); err != nil {
		return fmt.Errorf("exporting the CAR: %w", err)
	}
	return nil
}

// head resolves the source digest cheaply: a manifest HEAD for a registry,
// the local index for a layout or archive.
func (s *syncer) head(ctx context.Context, ref registry.Ref) (v1.Hash, error) {
	if ref.Kind != registry.KindRegistry {
		src, err := registry.OpenSource(ctx, ref, s.o.Registry)
		if err != nil {
			return v1.Hash{}, err
		}
		return src.Digest, nil
	}
	d, err := remote.Head(ref.Ref, s.o.Registry.Remote(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return v1.Hash{}, fmt.Errorf("reading %s: manifest unknown (404): %w", ref.Ref, err)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading %s: %w", ref.Ref, err)
	}
	return d.Digest, nil
}

// pushesCurrent checks with HEADs that every re-push target still has the
// digest recorded.
func (s *syncer) pushesCurrent(ctx context.Context, push []lockfile.PushTarget) (bool, error) {
	for _, p := range push {
		r, err := name.ParseReference(p.Ref, s.o.Registry.NameOptions()...)
		if err != nil {
			return false, err
		}
		d, err := remote.Head(r, s.o.Registry.Remote(ctx)...)
		if err != nil || d.Digest.String() != p.Digest {
			return false, err
		}
	}
	return true, nil
}

func statusOf(prev *lockfile.Entry, restored, repaired bool) Status {
	switch {
	case repaired:
		return StatusRepaired
	case restored:
		return StatusRestored
	case prev != nil:
		return StatusChanged
	}
	return StatusNew
}

// heldBatch is how many roots one batched pin check names.
const heldBatch = 100

// prefetchHeld asks a node that can answer in batches whether it still
// holds the lockfile's roots, heldBatch at a time, so that a no-op run
// costs a few IPFS calls rather than one per entry. A batch that is not
// all pinned is left to the per-entry check.
func (s *syncer) prefetchHeld(ctx context.Context) {
	bh, ok := s.store.(ipfs.BatchHolder)
	if !ok || s.lock == nil {
		return
	}
	var roots []string
	var cs []cid.Cid
	for _, e := range s.lock.Images {
		if c, err := ipfs.ParseCID(e.CID); err == nil {
			roots, cs = append(roots, e.CID), append(cs, c)
		}
	}
	s.held = map[string]bool{}
	for i := 0; i < len(cs); i += heldBatch {
		j := min(i+heldBatch, len(cs))
		if all, err := bh.HoldsAll(ctx, cs[i:j]); err == nil && all {
			for _, r := range roots[i:j] {
				s.held[r] = true
			}
		}
	}
}

// holds says whether the node still has the image's root pinned (stores
// that cannot tell are trusted).
func (s *syncer) holds(ctx context.Context, root string) bool {
	if s.held[root] {
		return true
	}
	h, ok := s.store.(ipfs.Holder)
	if !ok {
		return true
	}
	c, err := ipfs.ParseCID(root)
	if err != nil {
		return false
	}
	has, err := h.Holds(ctx, c)
	return err != nil || has
}

func (s *syncer) holdsAll(ctx context.Context, prev map[modes.Mode]*lockfile.Entry) bool {
	for _, e := range prev {
		if !s.holds(ctx, e.CID) {
			return false
		}
	}
	return true
}

func fillFromLock(r *ImageReport, e *lockfile.Entry) {
	r.SourceDigest, r.CID, r.Configs, r.Pin, r.Push = e.Digest, e.CID, e.Configs, e.Pin, e.Push
}

// boundAll reports whether every entry's CID holds its source's image (see
// verify.CheckBinding); IPFS reads only (the documents of each tree).
func (s *syncer) boundAll(ctx context.Context, prev map[modes.Mode]*lockfile.Entry) bool {
	for _, e := range prev {
		if _, err := verify.EntryBinding(ctx, s.store, *e); err != nil {
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

func parsePlatformList(ss []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range ss {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("%w: platform %q: %v", registry.ErrBadReference, s, err)
		}
		out = append(out, *p)
	}
	return out, nil
}
