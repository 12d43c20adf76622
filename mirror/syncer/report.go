package syncer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
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

// writes says whether a step of this status mirrors the source.
func (s Status) writes() bool {
	switch s {
	case StatusNew, StatusChanged, StatusRestored, StatusRepaired:
		return true
	}
	return false
}

// ImageReport is the outcome for one source image × tag × mode.
type ImageReport struct {
	Source       string                `json:"source"`
	Mode         string                `json:"mode"`
	Status       Status                `json:"status"`
	SourceDigest string                `json:"sourceDigest,omitempty"`
	CID          string                `json:"cid,omitempty"`
	Configs      []string              `json:"configs,omitempty"`
	Pin          string                `json:"pin,omitempty"`
	Upstream     string                `json:"upstream,omitempty"`
	Referrers    []lockfile.Referrer   `json:"referrers,omitempty"`
	Platforms    []string              `json:"platforms"`
	Push         []lockfile.PushTarget `json:"push,omitempty"`
	BlobsAdded   int                   `json:"blobsAdded"`
	BytesAdded   int64                 `json:"bytesAdded"`
	Duration     time.Duration         `json:"durationNs"`
	Error        string                `json:"error,omitempty"`
	// Unpinned are the CIDs a prune unpinned for a removed entry (in a
	// dry run: would unpin), sorted; PinsKept counts those it left pinned
	// because an entry still in the lockfile pins them too; Warning says
	// when not every pin of the entry could be found.
	Unpinned []string `json:"unpinned,omitempty"`
	PinsKept int      `json:"pinsKept,omitempty"`
	Warning  string   `json:"warning,omitempty"`
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
	// Prune is what --prune (or prune: true) released; nil without it.
	Prune *PruneReport `json:"prune,omitempty"`
}

// PruneReport is what a prune released, over all removed entries.
type PruneReport struct {
	// Unpinned are the distinct CIDs unpinned (in a dry run: that would
	// be), sorted.
	Unpinned []string `json:"unpinned"`
	// Kept counts the distinct CIDs of removed entries left pinned
	// because an entry still in the lockfile pins them too.
	Kept int `json:"kept"`
	// NotPinned counts the CIDs to unpin that had no pin of their own
	// any more (unpinned by hand, say).
	NotPinned int `json:"notPinned,omitempty"`
	// Skipped says why nothing could be unpinned (a store without pins).
	Skipped string `json:"skipped,omitempty"`
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

// reporter keeps a run's report as the workers finish images, and sends
// the image and blob events.
type reporter struct {
	onEvent func(Event)
	// runCtx is Sync's context, only to tell an interrupted run's
	// failures from others.
	runCtx context.Context

	mu  sync.Mutex
	rep *Report
}

func newReporter(ctx context.Context, o Options) *reporter {
	return &reporter{onEvent: o.OnEvent, runCtx: ctx, rep: &Report{LockFile: o.LockPath, DryRun: o.DryRun}}
}

// blob counts a blob event and passes it on.
func (p *reporter) blob(e manifests.Event) {
	if e.Type == manifests.BlobDone && !e.Cached {
		p.mu.Lock()
		p.rep.BlobsAdded++
		p.rep.BytesAdded += e.Size
		p.mu.Unlock()
	}
	p.onEvent(Event{Type: BlobEvent, Blob: e})
}

func (p *reporter) started(r *ImageReport) { p.onEvent(Event{Type: ImageStarted, Image: r}) }

// add records r without an event (a removed entry).
func (p *reporter) add(r *ImageReport) {
	p.mu.Lock()
	p.rep.Images = append(p.rep.Images, r)
	p.mu.Unlock()
}

// setPrune makes pr the report's prune (filled in by the caller).
func (p *reporter) setPrune(pr *PruneReport) {
	p.mu.Lock()
	p.rep.Prune = pr
	p.mu.Unlock()
}

// finish records r with status st, or as failed when err is set.
func (p *reporter) finish(r *ImageReport, st Status, err error) {
	if err != nil {
		p.fail(r, err)
		return
	}
	r.Status = st
	p.add(r)
	p.onEvent(Event{Type: ImageFinished, Image: r})
}

func (p *reporter) fail(r *ImageReport, err error) {
	r.Status, r.err, r.Error = StatusFailed, err, err.Error()
	if errors.Is(p.runCtx.Err(), context.Canceled) {
		// Whatever the error says ("context canceled", "content not
		// found: …"), the run was interrupted.
		r.Error = "interrupted"
	}
	p.add(r)
	p.onEvent(Event{Type: ImageFinished, Image: r})
}

// close sorts the images, counts the failures and stamps the duration.
func (p *reporter) close(start time.Time) *Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	sort.Slice(p.rep.Images, func(i, j int) bool {
		a, b := p.rep.Images[i], p.rep.Images[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Mode < b.Mode
	})
	for _, r := range p.rep.Images {
		if r.Status == StatusFailed {
			p.rep.Failed++
		}
	}
	p.rep.Duration = time.Since(start)
	return p.rep
}

func fillFromLock(r *ImageReport, e *lockfile.Entry) {
	r.SourceDigest, r.CID, r.Configs, r.Pin, r.Upstream, r.Push = e.Digest, e.CID, e.Configs, e.Pin, e.Upstream, e.Push
	r.Referrers = e.Referrers
}
