package ui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs-mirror/mirror/manifests"
)

// maxLive bounds the in-flight lines of the TTY display.
const maxLive = 10

// tty redraws, below the lines already printed, one line per blob in
// flight and the elapsed/total line; a finished blob's line is printed for
// good above them.
type tty struct {
	locked
	o     Options
	t     tally
	drawn int // lines of the live area on screen
	last  time.Time
	ended bool
}

// NewTTY returns the terminal display.
func NewTTY(o Options) Printer {
	o.defaults(100 * time.Millisecond)
	return &tty{o: o, t: newTally(o.Now())}
}

func (p *tty) Event(e manifests.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	b := p.t.apply(e)
	now := p.o.Now()
	switch {
	case e.Type == manifests.BlobDone:
		p.clear()
		fmt.Fprintln(p.o.W, p.blobLine(b, now))
		p.draw(now)
	case e.Type == manifests.ImageDone:
	case now.Sub(p.last) >= p.o.Interval || e.Type == manifests.BlobStart && p.drawn == 0:
		p.clear()
		p.draw(now)
	}
}

func (p *tty) Message(_, text string, _ any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.o.W, text) // printed for good: the terminal may wrap it
	if !p.ended {
		p.draw(p.o.Now())
	}
}

func (p *tty) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	p.clear()
	if !p.t.idle() {
		fmt.Fprintln(p.o.W, first(p.t.summaries(p.o.Now()), p.o.Width))
	}
}

// clear erases the live area: up as many lines as were drawn, then to the
// end of the screen.
func (p *tty) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.o.W, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *tty) draw(now time.Time) {
	p.last = now
	if p.t.idle() {
		return
	}
	var b strings.Builder
	n := 0
	for i, k := range p.t.order {
		if i == maxLive-1 && len(p.t.order) > maxLive {
			fmt.Fprintf(&b, "%s\n", fit(fmt.Sprintf("… and %d more", len(p.t.order)-i), p.o.Width))
			n++
			break
		}
		b.WriteString(p.blobLine(p.t.blobs[k], now))
		b.WriteByte('\n')
		n++
	}
	b.WriteString(first(p.t.summaries(now), p.o.Width))
	b.WriteByte('\n')
	n++
	fmt.Fprint(p.o.W, b.String())
	p.drawn = n
}

// blobLine is containerd's layout, fitted to the width:
//
//	layer-sha256:7b1a…:  added    |++++++++++++++++++++++++++++++++++++++++|  27.2 MiB
//
// The digest shortens to 12 hex digits, the bar narrows then goes, and
// the line is cut at the width: a wrapped line would break the redraw.
func (p *tty) blobLine(b *blob, _ time.Time) string {
	e := b.e
	st := string(b.state)
	frac := 1.0
	sizes := Bytes(e.Size)
	if b.state == "" {
		st = "streaming"
		if e.Size > 0 {
			frac = float64(b.done) / float64(e.Size)
		}
		sizes = Bytes(b.done) + "/" + Bytes(e.Size)
	}
	var tail []string
	if p.o.Verbose && e.CID.Defined() {
		tail = append(tail, "ipfs://"+e.CID.String())
	}
	if p.o.ShowImage && e.Image != "" {
		tail = append(tail, e.Image)
	}
	kind := Kind(e.MediaType)
	dg := e.Digest.String()
	var cands []string
	for _, c := range []struct{ hex, bar int }{{len(e.Digest.Encoded()), 40}, {12, 40}, {12, 30}, {12, 20}, {12, 10}} {
		cands = append(cands, join(fmt.Sprintf("%-*s %-9s |%s|  %s", nameWidth(dg, c.hex), kind+"-"+shortDigest(dg, c.hex)+":", st, Bar(frac, c.bar), sizes), tail))
	}
	for _, c := range []struct{ hex, bar int }{{len(e.Digest.Encoded()), 40}, {12, 40}, {12, 30}, {12, 20}, {12, 10}} {
		cands = append(cands, fmt.Sprintf("%-*s %-9s |%s|  %s", nameWidth(dg, c.hex), kind+"-"+shortDigest(dg, c.hex)+":", st, Bar(frac, c.bar), sizes))
	}
	// Narrow: no algorithm, a percentage instead of the bar and sizes.
	hex := e.Digest.Encoded()
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if b.state == "" {
		cands = append(cands, fmt.Sprintf("%s-%s: %3d%% %s", kind, hex, int(frac*100), Bytes(e.Size)), fmt.Sprintf("%s-%s: %3d%%", kind, hex, int(frac*100)))
	} else {
		cands = append(cands, fmt.Sprintf("%s-%s: %s %s", kind, hex, st, sizes), fmt.Sprintf("%s-%s: %s", kind, hex, st))
	}
	return first(cands, p.o.Width)
}

// first is the first candidate that fits in width-1 columns, else the
// last one cut.
func first(cands []string, width int) string {
	for _, c := range cands {
		if utf8.RuneCountInString(c) <= width-1 {
			return c
		}
	}
	return fit(cands[len(cands)-1], width)
}

// nameWidth aligns the state column: the longest kind (manifest), the
// digest, the colon and a space.
func nameWidth(d string, hex int) int {
	return len("manifest-") + len(shortDigest(d, hex)) + 2
}

func join(s string, tail []string) string {
	if len(tail) == 0 {
		return s
	}
	return s + "  " + strings.Join(tail, "  ")
}

func shortDigest(d string, hex int) string {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || len(enc) <= hex {
		return d
	}
	return alg + ":" + enc[:hex]
}

// Bar is a progress bar of width cells, '+' for the done part.
func Bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	return strings.Repeat("+", n) + strings.Repeat(" ", width-n)
}

// fit cuts s to width-1 columns (runes), ending in … when cut.
func fit(s string, width int) string {
	w := width - 1
	if w < 1 || utf8.RuneCountInString(s) <= w {
		return s
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}
