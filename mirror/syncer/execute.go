package syncer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

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
	// returns its CID (recorded as the entry's pin); upstream, when its CID
	// is set, is the image's upstream documents, which the handle links.
	// Unchanged entries that have no pin yet get one built from the stored
	// tree (IPFS reads only).
	PinHandle func(ctx context.Context, res *manifests.Result, upstream ocidir.Node) (cid.Cid, error)
	// CARDir, when set, gets one CAR per entry (CARName), rooted at its pin
	// handle; an unchanged entry whose CAR exists is not exported again.
	// The CAR of an image written is made from copies of its files kept
	// in CARDir while it is written, not by reading it back from the node.
	CARDir string
	// Prune (or the list's prune: true) unpins what the entries the list
	// no longer selects had pinned, except what an entry still in the
	// lockfile pins too (see prune.go); in a dry run it only reports it.
	// The store must be an ipfs.Unpinner for anything to be unpinned.
	Prune bool
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
	s := &syncer{store: store, o: o, lock: &lockView{f: lock}, rep: newReporter(ctx, o)}
	var ws ipfs.Store = store
	if o.CARDir != "" {
		ws = teeStore{store} // the CARs come from copies kept at write time
	}
	s.w = manifests.NewWriter(ws, o.Jobs, s.rep.blob)
	p := &planner{
		cfg:  cfg,
		lock: s.lock,
		only: o.Only,
		reg:  o.Registry,
		src:  registrySources{o.Registry},
		held: newStoreHoldings(ctx, store, lock),
	}

	removed := p.walk(ctx, o.Jobs, s.listFailed, func(ctx context.Context, img *config.Image, tag string) {
		s.one(ctx, p, img, tag)
	})
	// Entries of the lockfile the list no longer selects, and with prune
	// what they pinned (prune.go).
	s.drop(ctx, removed, o.Prune || cfg.Prune)

	rep := s.rep.close(start)
	if !o.DryRun && o.LockPath != "" {
		changed, err := writeLock(lock, o.LockPath)
		if err != nil {
			return rep, fmt.Errorf("writing %s: %w", o.LockPath, err)
		}
		rep.LockChanged = changed
	}
	return rep, ctx.Err()
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

// syncer carries out the plan.
type syncer struct {
	store ipfs.Store
	o     Options
	w     *manifests.Writer
	lock  *lockView
	rep   *reporter
	refs  referrerState // referrers.go
}

// listFailed reports every mode of an entry whose tags could not be
// listed.
func (s *syncer) listFailed(img *config.Image, err error) {
	for _, m := range img.Modes {
		s.rep.fail(&ImageReport{Source: img.Source, Mode: string(m), File: img.Pos.File, Line: img.Pos.Line}, err)
	}
}

// one plans one entry × tag and carries the plan out in all its modes,
// sharing the source fetch.
func (s *syncer) one(ctx context.Context, p *planner, img *config.Image, tag string) {
	lockSrc, platforms := img.LockSource(tag), sortedPlatforms(img)
	reports := make([]*ImageReport, len(img.Modes))
	for i, m := range img.Modes {
		reports[i] = &ImageReport{Source: lockSrc, Mode: string(m), Platforms: platforms, File: img.Pos.File, Line: img.Pos.Line}
		s.rep.started(reports[i])
	}
	started := time.Now()
	tp := p.planTag(ctx, img, tag)
	trs := newTagReferrers(tp.Ref)
	var verified *error // verify: once per tag (referrers.go)
	verify := func(digest string) error {
		if verified == nil {
			err := s.verifySigned(ctx, img, trs, digest)
			verified = &err
		}
		return *verified
	}
	finish := func(i int, st Status, err error) {
		r := reports[i]
		r.Duration = time.Since(started)
		s.rep.finish(r, st, err)
	}

	var todo []int // the steps that write
	for i, st := range tp.Steps {
		r := reports[i]
		r.SourceDigest = st.Digest
		switch {
		case st.Action == StatusFailed:
			finish(i, "", st.Err)
		case st.Action == StatusImmutable:
			fillFromLock(r, st.Prev)
			finish(i, StatusImmutable, nil)
		case st.Action == StatusUnchanged:
			fillFromLock(r, st.Prev)
			if len(r.Configs) == 0 {
				r.Configs = st.Configs // an entry from before configs were recorded
			}
			var err error
			if !s.o.DryRun {
				if err = verify(st.Digest); err != nil {
					finish(i, "", err)
					continue
				}
				if st.Mode == modes.Plain {
					_, err = s.refreshReferrers(ctx, img, trs, r)
				}
				if err == nil {
					err = s.upgrade(ctx, r, st.Prev)
				}
			}
			finish(i, StatusUnchanged, err)
		default:
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return
	}
	if s.o.DryRun {
		for _, i := range todo {
			finish(i, tp.Steps[i].Action, nil)
		}
		return
	}

	src, err := registry.OpenSource(ctx, tp.Ref, s.o.Registry)
	if err != nil {
		for _, i := range todo {
			finish(i, "", err)
		}
		return
	}
	if d := src.Digest.String(); d != tp.Steps[todo[0]].Digest {
		// The tag moved between HEAD and GET: record what we read.
		for _, i := range todo {
			reports[i].SourceDigest = d
		}
	}
	ps, err := parsePlatformList(img.Platforms)
	if err == nil && img.Verify != nil {
		// What is written is what was verified: the digest read.
		verified = nil
		err = verify(src.Digest.String())
	}
	if err != nil {
		for _, i := range todo {
			finish(i, "", err)
		}
		return
	}
	for _, i := range todo {
		err := s.write(ctx, img, tag, tp.Steps[i].Mode, src, ps, trs, reports[i])
		finish(i, tp.Steps[i].Action, err)
	}
}

// write pushes one mode of an opened source, runs the post-steps (pin
// handle, re-push, CAR) and records it.
func (s *syncer) write(ctx context.Context, img *config.Image, tag string, m modes.Mode, src *registry.Source, ps []v1.Platform, trs *tagReferrers, r *ImageReport) error {
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
	if s.o.CARDir != "" {
		var done func()
		ctx, done = withTee(ctx, s.o.CARDir)
		defer done()
	}
	// A plain copy of a registry image keeps the source's own documents
	// too, as the writer reads them (upstream.Record: no second GET).
	var rec *upstream.Recorder
	if m == modes.Plain && src.Ref.Kind == registry.KindRegistry {
		src, rec = recorded(src)
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
	var up ocidir.Node
	if rec != nil {
		var kept *keptReferrers
		if up, kept, err = s.buildUpstream(ctx, img, trs, rec, res.Result); err != nil {
			return err
		}
		r.Upstream, r.Referrers = up.CID.String(), kept.list()
	}
	if err := s.post(ctx, img, tag, m, res, up, r); err != nil {
		return err
	}
	s.record(r)
	return nil
}

func (s *syncer) record(r *ImageReport) {
	s.lock.put(lockfile.Entry{Source: r.Source, Mode: r.Mode, Digest: r.SourceDigest, Platforms: r.Platforms, CID: r.CID, Configs: r.Configs, Pin: r.Pin, Upstream: r.Upstream, Referrers: r.Referrers, Push: r.Push})
}

// recorded is src with its index or image wrapped by upstream.Record.
func recorded(src *registry.Source) (*registry.Source, *upstream.Recorder) {
	node, rec := upstream.Record(src.Node(), digest.Digest(src.Digest.String()))
	cp := *src
	switch n := node.(type) {
	case v1.ImageIndex:
		cp.Index = n
	case v1.Image:
		cp.Image = n
	}
	return &cp, rec
}

// buildUpstream stores the documents rec kept as the image's upstream
// layout, linking the configs and layers res wrote, with the referrers img
// keeps (referrers.go).
func (s *syncer) buildUpstream(ctx context.Context, img *config.Image, trs *tagReferrers, rec *upstream.Recorder, res *manifests.Result) (ocidir.Node, *keptReferrers, error) {
	blobs := make([]ocidir.Blob, 0, len(res.Blobs))
	for _, b := range res.Blobs {
		blobs = append(blobs, ocidir.Blob{Digest: b.Digest, Size: b.Size, CID: b.CID})
	}
	in, err := rec.Input(blobs)
	if err != nil {
		return ocidir.Node{}, nil, fmt.Errorf("keeping the upstream documents: %w", err)
	}
	kept, err := s.keepReferrers(ctx, img, trs, subjectsOf(in))
	if err != nil {
		return ocidir.Node{}, nil, err
	}
	kept.addTo(&in)
	n, err := upstream.Build(ctx, s.store, in)
	if err != nil {
		return ocidir.Node{}, nil, fmt.Errorf("keeping the upstream documents: %w", err)
	}
	return n, kept, nil
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
