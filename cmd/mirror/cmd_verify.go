package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// VerifyCmd is `mirror verify`.
type VerifyCmd struct {
	Lock         string        `arg:"" name:"LOCKFILE" help:"The lockfile to check (mirrors.lock)."`
	Pin          bool          `help:"Pin every CID of each verified image the node does not keep pinned (root, manifests, configs, layers, pin handle)."`
	Jobs         int           `short:"j" default:"4" help:"Entries and blob reads in flight."`
	EntryTimeout time.Duration `default:"10m" help:"Bound the work on one entry: a block nobody provides fails its entry then (0: no bound)."`
	Only         string        `placeholder:"REGEX" help:"Only entries whose source matches."`
	Summary      string        `placeholder:"FILE" help:"Append a Markdown summary to FILE (e.g. $$GITHUB_STEP_SUMMARY)."`
	Report       string        `placeholder:"FILE" help:"Also write the --json report to FILE."`

	GitHubAnnotations bool `name:"github-annotations" env:"MIRROR_GITHUB_ANNOTATIONS" help:"Print GitHub workflow commands (::error file=…,line=…::) for failed entries, on stderr."`

	// With --gateway, verify answers: can every image be fetched whole
	// from these gateways right now?
	GatewayFlags `embed:""`
}

// Run verifies.
func (c *VerifyCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	data, err := os.ReadFile(c.Lock)
	if errors.Is(err, fs.ErrNotExist) {
		return usageError{fmt.Errorf("%s: no such lockfile", c.Lock)}
	}
	if err != nil {
		return err
	}
	lock, err := lockfile.Parse(c.Lock, data)
	if err != nil {
		if c.GitHubAnnotations {
			writeAnnotations(g.stderr, fileErrors(err, c.Lock))
		}
		return configError{err}
	}
	if c.Only != "" {
		only, err := regexp.Compile(c.Only)
		if err != nil {
			return usageError{fmt.Errorf("--only: %w", err)}
		}
		kept := lock.Images[:0]
		for _, e := range lock.Images {
			if only.MatchString(e.Source) {
				kept = append(kept, e)
			}
		}
		lock.Images = kept
	}
	if c.Pin && len(c.Gateway) > 0 {
		return usageError{fmt.Errorf("--pin needs an IPFS node to pin on; gateways are read-only (drop --pin, or --gateway)")}
	}
	store, err := c.openStore(ctx, g, open.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	rep, runErr := verify.Verify(ctx, store, lock, verify.Options{
		Jobs:         c.Jobs,
		EntryTimeout: c.EntryTimeout,
		Pin:          c.Pin,
		Pinned:       pinChecker(store),
		OnEntry: func(e *verify.Entry) {
			if g.Verbose {
				fmt.Fprintln(g.stderr, verifyLine(e))
			}
		},
	})
	rep.LockFile = c.Lock
	if runErr != nil {
		return runErr
	}
	if c.Report != "" {
		if err := g.writeJSONFile(c.Report, rep); err != nil {
			return err
		}
	}
	if c.Summary != "" {
		if err := appendFile(c.Summary, g.mask(verifyMarkdown(rep))); err != nil {
			return err
		}
	}
	if g.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, e := range rep.Entries {
			fmt.Fprintln(g.stdout, verifyLine(e))
		}
		fmt.Fprintln(g.stdout, verifyTotals(rep))
	}
	if c.GitHubAnnotations && rep.Failed > 0 {
		lines := lockLines(data)
		var as []annotation
		for _, e := range rep.Entries {
			if e.Status == verify.StatusFailed {
				as = append(as, annotation{File: c.Lock, Line: lines[e.Source+"\x00"+e.Mode], Title: fmt.Sprintf("mirror verify: %s (%s) %s", e.Source, e.Mode, e.Problem), Msg: e.Error})
			}
		}
		writeAnnotations(g.stderr, as)
	}
	switch {
	case rep.Failed == 0:
		return nil
	case rep.OnlyMismatches():
		// Integrity, and nothing else: exit 5.
		return fmt.Errorf("%d of %d entries do not match their digests or hold another image:\n%w", rep.Failed, len(rep.Entries), rep.Err())
	}
	return partialError{fmt.Errorf("%d of %d entries failed:\n%w", rep.Failed, len(rep.Entries), rep.Err())}
}

// verifyLine is one entry's line: status, source, mode, CID, what was read.
func verifyLine(e *verify.Entry) string {
	if e.Status == verify.StatusOK {
		s := fmt.Sprintf("ok      %s (%s) ipfs://%s: %d manifests, %d blobs, %s verified", e.Source, e.Mode, e.CID, e.Manifests, e.Blobs, human(e.Bytes))
		if e.Pinned > 0 {
			s += fmt.Sprintf(", %d pins added", e.Pinned)
		}
		return s
	}
	return fmt.Sprintf("FAILED  %s (%s) ipfs://%s: %s: %s", e.Source, e.Mode, e.CID, e.Problem, e.Error)
}

func verifyTotals(rep *verify.Report) string {
	s := fmt.Sprintf("verify: %d ok, %d failed", rep.OK, rep.Failed)
	if rep.Mismatches > 0 {
		s += fmt.Sprintf(" (%d integrity failures: digest mismatch or wrong image)", rep.Mismatches)
	}
	s += fmt.Sprintf("; %d blobs (%s) read and verified", rep.Blobs, human(rep.Bytes))
	if rep.Pinned > 0 {
		s += fmt.Sprintf("; %d pins added", rep.Pinned)
	}
	return s + fmt.Sprintf(" in %s", rep.Duration.Round(time.Millisecond))
}

// verifyMarkdown is the table for $GITHUB_STEP_SUMMARY.
func verifyMarkdown(rep *verify.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### mirror verify `%s`\n\n%s\n\n", rep.LockFile, verifyTotals(rep))
	b.WriteString("| status | source | mode | CID | blobs | problem |\n|---|---|---|---|---|---|\n")
	for _, e := range rep.Entries {
		status, problem := "✅ ok", ""
		if e.Status != verify.StatusOK {
			status = "❌ failed"
			problem = e.Problem + ": " + strings.ReplaceAll(e.Error, "|", "\\|")
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | `%s` | %d | %s |\n", status, e.Source, e.Mode, e.CID, e.Blobs, problem)
	}
	b.WriteString("\n")
	return b.String()
}

// pinChecker asks the node whether it keeps a CID pinned (directly,
// recursively or indirectly: its ipfs.Holder); nil for stores that cannot
// tell.
func pinChecker(store ipfs.Store) func(context.Context, cid.Cid) (bool, error) {
	if h, ok := store.(ipfs.Holder); ok {
		return h.Holds
	}
	return nil
}
