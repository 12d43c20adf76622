package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/ipfs-mirror/mirror/manifests"
)

// plain prints a line per finished blob and the summary: for logs and
// pipes, where a redraw would be noise.
//
//	added  layer    sha256:7b1a6ab2…c3877a54 27.2 MiB ipfs://bafkrei…
type plain struct {
	locked
	o     Options
	t     tally
	ended bool
}

// NewPlain returns the plain-lines form.
func NewPlain(o Options) Printer {
	o.defaults(time.Second)
	return &plain{o: o, t: newTally(o.Now())}
}

func (p *plain) Event(e manifests.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.t.apply(e)
	if e.Type != manifests.BlobDone || p.ended {
		return
	}
	parts := []string{fmt.Sprintf("%-6s %-8s %s %s", b.state, Kind(e.MediaType), e.Digest, Bytes(e.Size))}
	if e.CID.Defined() {
		parts = append(parts, "ipfs://"+e.CID.String())
	}
	if p.o.ShowImage && e.Image != "" {
		parts = append(parts, "("+e.Image+")")
	}
	fmt.Fprintln(p.o.W, strings.Join(parts, " "))
}

func (p *plain) Message(_, text string, _ any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.o.W, text)
}

func (p *plain) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	if !p.t.idle() {
		fmt.Fprintln(p.o.W, p.t.summary(p.o.Now()))
	}
}
