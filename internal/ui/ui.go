// Package ui renders the library's progress events for the CLI: a text
// display that redraws in place on a terminal (a line per blob with its
// state and a bar, then elapsed and total, as containerd's and nerdctl's
// pulls print), plain lines for logs, and JSON lines for programs.
//
// The library never prints: manifests.Writer, mirror.Pull and mirror.Sync
// emit manifests.Event values, and a Printer turns them into output.
//
// A command's own output (its result, as text or --json) is rendered by a
// package of its own under internal/ui, restic-style: internal/ui/inspect,
// internal/ui/push.
package ui

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

// Printer renders events. Its methods are safe for concurrent use.
type Printer interface {
	// Event renders one progress event.
	Event(e manifests.Event)
	// Message prints a line of the command's own output (a sync's image
	// status) without breaking the display; the JSON form prints
	// {"type": kind, "text": text, "data": data}.
	Message(kind, text string, data any)
	// Finish ends the display with the summary line.
	Finish()
}

// Options configure a Printer.
type Options struct {
	// W receives the output (the CLI's stderr).
	W io.Writer
	// Width is the terminal's width in columns (TTY only; 0: 80).
	Width int
	// Verbose adds each blob's CID to the text lines.
	Verbose bool
	// ShowImage names the image on each blob line (a sync writes many).
	ShowImage bool
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Interval bounds redraws of the TTY display and progress objects of
	// the JSON form (0: 100ms for the TTY, 1s for JSON).
	Interval time.Duration
}

func (o *Options) defaults(interval time.Duration) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Width <= 0 {
		o.Width = 80
	}
	if o.Interval == 0 {
		o.Interval = interval
	}
}

// blob is one blob's state in a display.
type blob struct {
	e     manifests.Event // the latest event
	done  int64
	state manifests.BlobState
}

// tally keeps the figures every form prints at the end.
type tally struct {
	start   time.Time
	blobs   map[digest.Digest]*blob
	order   []digest.Digest // in flight, in start order
	bytes   int64           // streamed: finished added blobs and progress
	added   int
	cached  int
	exists  int
	flights map[digest.Digest]int64
}

// idle says no blob was seen: a dry run, a sync with nothing to do.
func (t *tally) idle() bool { return t.added+t.cached+t.exists == 0 && len(t.order) == 0 }

func newTally(now time.Time) tally {
	return tally{start: now, blobs: map[digest.Digest]*blob{}, flights: map[digest.Digest]int64{}}
}

// key tells blobs apart: one digest may be written for several images.
func key(e manifests.Event) digest.Digest {
	return digest.Digest(e.Image + "\x00" + e.Digest.String())
}

// apply updates the figures; it returns the blob (nil for image events).
func (t *tally) apply(e manifests.Event) *blob {
	if e.Type == manifests.ImageDone {
		return nil
	}
	k := key(e)
	b := t.blobs[k]
	if b == nil {
		b = &blob{}
		t.blobs[k] = b
	}
	b.e = e
	switch e.Type {
	case manifests.BlobStart:
		if _, ok := t.flights[k]; !ok {
			t.order = append(t.order, k)
		}
		t.bytes -= t.flights[k] // a retry starts over
		t.flights[k] = 0
		b.done = 0
	case manifests.BlobProgress:
		t.bytes += e.Done - t.flights[k]
		t.flights[k] = e.Done
		b.done = e.Done
	case manifests.BlobDone:
		st := state(e)
		b.state, b.done = st, e.Size
		if st == manifests.StateAdded {
			t.bytes += e.Size - t.flights[k]
			t.added++
		} else {
			t.bytes -= t.flights[k]
			if st == manifests.StateCached {
				t.cached++
			} else {
				t.exists++
			}
		}
		delete(t.flights, k)
		for i, o := range t.order {
			if o == k {
				t.order = append(t.order[:i:i], t.order[i+1:]...)
				break
			}
		}
		delete(t.blobs, k)
	}
	return b
}

func state(e manifests.Event) manifests.BlobState {
	switch {
	case e.State != "":
		return e.State
	case e.Cached:
		return manifests.StateCached
	}
	return manifests.StateAdded
}

// summaries are the last line, longest first: elapsed, total, rate and
// the blob counts; without the counts; elapsed and total only.
func (t *tally) summaries(now time.Time) []string {
	full := t.summary(now)
	el := now.Sub(t.start)
	rate := 0.0
	if el > 0 {
		rate = float64(t.bytes) / el.Seconds()
	}
	return []string{full,
		fmt.Sprintf("elapsed: %.1f s  total: %s (%s/s)", el.Seconds(), Bytes(t.bytes), Bytes(int64(rate))),
		fmt.Sprintf("elapsed: %.1f s total: %s", el.Seconds(), Bytes(t.bytes)),
	}
}

// summary is the last line: elapsed, total, rate, and the blob counts.
func (t *tally) summary(now time.Time) string {
	el := now.Sub(t.start)
	rate := 0.0
	if el > 0 {
		rate = float64(t.bytes) / el.Seconds()
	}
	s := fmt.Sprintf("elapsed: %.1f s  total: %s (%s/s)", el.Seconds(), Bytes(t.bytes), Bytes(int64(rate)))
	if n := t.added + t.cached + t.exists; n > 0 {
		var parts []string
		for _, c := range []struct {
			n    int
			what string
		}{{t.added, "added"}, {t.cached, "cached"}, {t.exists, "exists"}} {
			if c.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
			}
		}
		s += fmt.Sprintf("  %d %s: %s", n, plural(n, "blob", "blobs"), strings.Join(parts, ", "))
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Kind is a short name of a blob's media type, as containerd prints it:
// index, manifest, config, layer (blob for anything else).
func Kind(mt string) string {
	switch {
	case strings.Contains(mt, "layer") || strings.Contains(mt, "rootfs"):
		return "layer"
	case strings.Contains(mt, "config"):
		return "config"
	case strings.Contains(mt, "index") || strings.Contains(mt, "list"):
		return "index"
	case strings.Contains(mt, "manifest"):
		return "manifest"
	}
	return "blob"
}

// Bytes formats a byte count (binary units).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// locked is the mutex every Printer holds.
type locked struct{ mu sync.Mutex }
