package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ipfs-mirror/mirror/internal/redact"
	"github.com/ipfs-mirror/mirror/internal/ui"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/syncer"
)

// SyncCmd is `mirror sync`.
type SyncCmd struct {
	List        string        `arg:"" name:"MIRRORS.yaml" help:"The mirror list."`
	Lock        string        `help:"The lockfile (default: mirrors.lock next to the list)."`
	Jobs        int           `short:"j" default:"4" help:"Images and blob transfers in flight (one bound for both)."`
	DryRun      bool          `help:"Print the plan (new / changed / unchanged / removed; with --prune, what would be unpinned) and write nothing."`
	Prune       bool          `help:"Unpin what the entries that left the list had pinned, except what an entry still in the lockfile pins (also: prune: true in the list); ipfs repo gc then frees it."`
	Only        string        `placeholder:"REGEX" help:"Only entries whose source matches."`
	Summary     string        `placeholder:"FILE" help:"Append a Markdown summary to FILE (e.g. $$GITHUB_STEP_SUMMARY)." env:"MIRROR_SUMMARY"`
	Report      string        `placeholder:"FILE" help:"Also write the --json report to FILE."`
	Retries     int           `default:"5" help:"Attempts per registry request (network errors, 5xx, 429)."`
	RateLimit   float64       `name:"registry-rate" placeholder:"N" help:"Requests per second to each registry (0: no bound)."`
	MaxDelay    time.Duration `default:"30s" help:"Longest backoff between retries (Retry-After included)."`
	CAR         string        `name:"car" type:"path" placeholder:"DIR" help:"Also write each image as a CAR in DIR (rooted at its pin handle), for pinning services and ipfs dag import."`
	NoPinHandle bool          `help:"Do not build pin handles (the lockfile's pin: field)."`
	LockTimeout time.Duration `default:"1m" help:"How long to wait for another sync that holds the lockfile (0: fail at once, exit 6)."`

	GitHubAnnotations bool `name:"github-annotations" env:"MIRROR_GITHUB_ANNOTATIONS" help:"Print GitHub workflow commands (::error file=…,line=…::) for list errors and failed images, on stderr."`
}

// Run syncs.
func (c *SyncCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	cfg, err := config.Load(c.List)
	if err != nil {
		c.annotate(g, err, nil)
		return configError{err}
	}
	var only *regexp.Regexp
	if c.Only != "" {
		if only, err = regexp.Compile(c.Only); err != nil {
			return usageError{fmt.Errorf("--only: %w", err)}
		}
	}
	lockPath := c.Lock
	if lockPath == "" {
		lockPath = filepath.Join(filepath.Dir(c.List), "mirrors.lock")
	}
	if !c.DryRun {
		// One run at a time reads, changes and writes the lockfile.
		held, err := lockfile.Lock(ctx, lockPath, lockfile.LockOptions{
			Timeout: c.LockTimeout,
			OnWait: func(lf, holder string) {
				who := "another mirror sync"
				if holder != "" {
					who += " (" + holder + ")"
				}
				fmt.Fprintf(g.stderr, "mirror: waiting for %s: %s holds %s; waiting up to %s (--lock-timeout)\n", lockPath, who, lf, c.LockTimeout)
			},
		})
		if err != nil {
			return err
		}
		defer held.Unlock()
	}
	lock, err := lockfile.Read(lockPath)
	if err != nil {
		c.annotate(g, err, nil)
		return configError{err}
	}
	g.addSecrets(redact.URLPassword(cfg.IPFS.API)...)
	fromList := g.IPFSAPI == "" && cfg.IPFS.API != ""
	if fromList {
		g.IPFSAPI = cfg.IPFS.API
	}
	store, err := g.OpenStoreWith(ctx, !cfg.IPFS.Pin)
	if err != nil {
		if fromList {
			at := cfg.IPFS.APIPos
			return fmt.Errorf("%w (the API is ipfs.api at %s:%d:%d; fix it there, or pass --ipfs-api)", err, at.File, at.Line, at.Column)
		}
		return err
	}
	defer store.Close()

	out := newSyncPrinter(g, c.DryRun)
	opts := syncer.Options{
		Registry: g.Registry(),
		Retry:    registry.RetryOptions{Attempts: c.Retries, MaxDelay: c.MaxDelay, Rate: c.RateLimit},
		Jobs:     c.Jobs,
		DryRun:   c.DryRun,
		Prune:    c.Prune,
		Only:     only,
		LockPath: lockPath,
		Convert:  convertFor(g),
		OnEvent:  out.event,
	}
	if !c.NoPinHandle {
		opts.PinHandle = pinhandle.Builder(store)
	}
	opts.CARDir = c.CAR
	rep, runErr := syncer.Sync(ctx, store, cfg, lock, opts)
	out.done(rep)
	c.annotate(g, runErr, rep)
	if rep != nil {
		if c.Report != "" {
			if err := g.writeJSONFile(c.Report, rep); err != nil {
				return err
			}
		}
		if g.JSON {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
		}
		if c.Summary != "" {
			if err := appendFile(c.Summary, g.mask(markdownSummary(rep, workspacePath(c.List)))); err != nil {
				return err
			}
		}
	}
	if runErr != nil {
		return runErr
	}
	if err := rep.Err(); err != nil {
		// Each failure is on its own line above: the closing error only
		// counts them, and carries them for the exit code.
		if rep.Failed == len(rep.Images) {
			// Nothing was done: the failures' own code (1, or 4 / 5).
			return shownError{fmt.Sprintf("all %d images failed", rep.Failed), err}
		}
		return partialError{shownError{fmt.Sprintf("%d of %d images failed; the others were done", rep.Failed, len(rep.Images)), err}}
	}
	return nil
}

// shownError is an error whose causes were already printed: its message
// is msg alone, its exit code the causes'.
type shownError struct {
	msg string
	err error
}

func (e shownError) Error() string { return e.msg }
func (e shownError) Unwrap() error { return e.err }

// configError marks a bad mirror list or lockfile (exit 2).
type configError struct{ err error }

func (c configError) Error() string { return c.err.Error() }
func (c configError) Unwrap() error { return c.err }

// syncPrinter renders sync events: a line per image on stderr.
type syncPrinter struct {
	g      *Globals
	prog   ui.Printer
	dryRun bool
	mu     sync.Mutex
}

func newSyncPrinter(g *Globals, dryRun bool) *syncPrinter {
	return &syncPrinter{g: g, prog: newPrinter(g, true), dryRun: dryRun}
}

func (p *syncPrinter) event(e syncer.Event) {
	switch e.Type {
	case syncer.BlobEvent:
		p.prog.Event(e.Blob)
	case syncer.ImageFinished:
		p.mu.Lock()
		defer p.mu.Unlock()
		r := e.Image
		var line string
		switch {
		case r.Status == syncer.StatusFailed && r.Error == "interrupted":
			line = fmt.Sprintf("%-11s %s (%s)", r.Error, r.Source, r.Mode)
		case r.Status == syncer.StatusFailed:
			msg := r.Error
			if err := r.Err(); err != nil {
				msg += hint(err)
			}
			line = fmt.Sprintf("%-9s %s (%s): %s", r.Status, r.Source, r.Mode, msg)
		case r.Status == syncer.StatusUnchanged, r.Status == syncer.StatusImmutable:
			line = fmt.Sprintf("%-9s %s (%s) ipfs://%s", r.Status, r.Source, r.Mode, r.CID)
		case p.dryRun:
			line = fmt.Sprintf("%-9s %s (%s) %s", r.Status, r.Source, r.Mode, r.SourceDigest)
		default:
			line = fmt.Sprintf("%-9s %s (%s) %s → ipfs://%s in %s", r.Status, r.Source, r.Mode, r.SourceDigest, r.CID, r.Duration.Round(time.Millisecond))
		}
		p.prog.Message("image", line, r)
	}
}

func (p *syncPrinter) done(rep *syncer.Report) {
	p.prog.Finish()
	if rep == nil {
		return
	}
	unpinned := "unpinned"
	if rep.DryRun {
		unpinned = "would unpin"
	}
	for _, r := range rep.Images {
		if r.Status != syncer.StatusRemoved {
			continue
		}
		if rep.Prune == nil || rep.Prune.Skipped != "" {
			fmt.Fprintf(p.g.stderr, "%-9s %s (%s)\n", r.Status, r.Source, r.Mode)
			continue
		}
		fmt.Fprintf(p.g.stderr, "%-9s %s (%s): %s %d CIDs, %d kept (pinned by entries still in the lockfile)\n", r.Status, r.Source, r.Mode, unpinned, len(r.Unpinned), r.PinsKept)
		for _, c := range r.Unpinned {
			fmt.Fprintf(p.g.stderr, "  %s %s\n", unpinned, c)
		}
		if r.Warning != "" {
			fmt.Fprintf(p.g.stderr, "  warning: %s\n", r.Warning)
		}
	}
	if pr := rep.Prune; pr != nil {
		switch {
		case pr.Skipped != "":
			fmt.Fprintf(p.g.stderr, "prune: nothing unpinned: %s\n", pr.Skipped)
		case rep.DryRun:
			fmt.Fprintf(p.g.stderr, "prune: would unpin %d CIDs, %d kept; dry run: nothing unpinned\n", len(pr.Unpinned), pr.Kept)
		default:
			fmt.Fprintf(p.g.stderr, "prune: unpinned %d CIDs, %d kept; `ipfs repo gc` on the node frees what no pin keeps\n", len(pr.Unpinned), pr.Kept)
		}
	}
	counts := map[syncer.Status]int{}
	for _, r := range rep.Images {
		counts[r.Status]++
	}
	var parts []string
	for _, s := range []syncer.Status{syncer.StatusNew, syncer.StatusChanged, syncer.StatusUnchanged, syncer.StatusImmutable, syncer.StatusRestored, syncer.StatusRepaired, syncer.StatusRemoved, syncer.StatusFailed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	what := "lockfile unchanged"
	switch {
	case rep.DryRun:
		what = "dry run: nothing written"
	case rep.LockChanged:
		what = "wrote " + rep.LockFile
	}
	fmt.Fprintf(p.g.stderr, "sync: %s; %d blobs (%s) added in %s; %s\n", strings.Join(parts, ", "), rep.BlobsAdded, human(rep.BytesAdded), rep.Duration.Round(time.Millisecond), what)
}

// markdownSummary is the table for $GITHUB_STEP_SUMMARY.
func markdownSummary(rep *syncer.Report, list string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### mirror sync `%s`\n\n", list)
	fmt.Fprintf(&b, "%d images, %d failed; %d blobs (%s) added in %s", len(rep.Images), rep.Failed, rep.BlobsAdded, human(rep.BytesAdded), rep.Duration.Round(time.Millisecond))
	if rep.DryRun {
		b.WriteString(" (dry run)")
	}
	b.WriteString("\n\n| status | source | mode | digest | CID |\n|---|---|---|---|---|\n")
	for _, r := range rep.Images {
		cid, dg := "", ""
		if r.CID != "" {
			cid = "`" + r.CID + "`"
		}
		if r.SourceDigest != "" {
			dg = "`" + shortDigest(r.SourceDigest) + "`"
		}
		status := string(r.Status)
		if r.Status == syncer.StatusFailed {
			status = "❌ failed: " + strings.ReplaceAll(r.Error, "|", "\\|")
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", status, r.Source, r.Mode, dg, cid)
	}
	b.WriteString("\n")
	if pr := rep.Prune; pr != nil {
		markdownPrune(&b, rep)
	}
	return b.String()
}

// markdownPrune is the summary's prune section: the counts, and the CIDs
// unpinned for each removed entry.
func markdownPrune(b *strings.Builder, rep *syncer.Report) {
	pr := rep.Prune
	if pr.Skipped != "" {
		fmt.Fprintf(b, "Prune: nothing unpinned: %s.\n\n", pr.Skipped)
		return
	}
	verb := "unpinned"
	if rep.DryRun {
		verb = "would be unpinned"
	}
	fmt.Fprintf(b, "Prune: %d CIDs %s, %d kept (pinned by entries still in the lockfile).\n\n", len(pr.Unpinned), verb, pr.Kept)
	for _, r := range rep.Images {
		if r.Status != syncer.StatusRemoved || len(r.Unpinned) == 0 {
			continue
		}
		fmt.Fprintf(b, "<details><summary><code>%s</code> (%s): %d CIDs</summary>\n\n", html.EscapeString(r.Source), r.Mode, len(r.Unpinned))
		for _, c := range r.Unpinned {
			fmt.Fprintf(b, "- `%s`\n", c)
		}
		b.WriteString("\n</details>\n\n")
	}
}

func shortDigest(d string) string {
	if i := strings.Index(d, ":"); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeJSONFile writes v as indented JSON to path, secrets masked.
func (g *Globals) writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(g.mask(string(b))+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
