package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ipfs-mirror/mirror/manifests"
)

// progress renders writer events: a line per blob with -v, a byte counter
// on a terminal, nothing otherwise.
type progress struct {
	w       io.Writer
	verbose bool
	tty     bool

	mu        sync.Mutex
	bytes     int64
	inflight  map[string]int64
	added     int
	cached    int
	lastPaint time.Time
}

func newProgress(g *Globals) *progress {
	return &progress{w: g.stderr, verbose: g.Verbose, tty: isTerminal(g.stderr), inflight: map[string]int64{}}
}

func (p *progress) event(e manifests.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := e.Digest.String()
	switch e.Type {
	case manifests.BlobStart:
		p.inflight[d] = 0
	case manifests.BlobProgress:
		p.bytes += e.Done - p.inflight[d]
		p.inflight[d] = e.Done
	case manifests.BlobDone:
		if e.Cached {
			p.cached++
		} else {
			p.added++
			p.bytes += e.Size - p.inflight[d]
			delete(p.inflight, d)
		}
		if p.verbose {
			how := "added"
			if e.Cached {
				how = "cached"
			}
			p.clear()
			fmt.Fprintf(p.w, "%s %s %s %s ipfs://%s\n", how, short(e.MediaType), e.Digest, human(e.Size), e.CID)
		}
	}
	if p.tty && time.Since(p.lastPaint) > 100*time.Millisecond {
		p.lastPaint = time.Now()
		fmt.Fprintf(p.w, "\r\033[K%s streamed, %d blobs added, %d cached", human(p.bytes), p.added, p.cached)
	}
}

func (p *progress) clear() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// done ends the progress line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func short(mt string) string {
	switch {
	case len(mt) > 0 && (contains(mt, "layer") || contains(mt, "rootfs")):
		return "layer"
	case contains(mt, "config"):
		return "config"
	case contains(mt, "index") || contains(mt, "list"):
		return "index"
	case contains(mt, "manifest"):
		return "manifest"
	}
	return "blob"
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// human formats a byte count.
func human(n int64) string {
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
