package main

import (
	"golang.org/x/term"

	"github.com/ipfs-mirror/mirror/internal/ui"
)

// newPrinter picks how progress is shown on stderr: JSON lines with
// --json, a display redrawn in place on a terminal, plain lines otherwise.
// many names the image on each blob line (a sync writes many at once).
func newPrinter(g *Globals, many bool) ui.Printer {
	o := ui.Options{W: g.stderr, Verbose: g.Verbose, ShowImage: many}
	switch {
	case g.JSON:
		return ui.NewJSON(o)
	case isTerminal(g.stderr):
		if w, _, err := term.GetSize(int(terminalFile(g.stderr).Fd())); err == nil {
			o.Width = w
		}
		return ui.NewTTY(o)
	}
	return ui.NewPlain(o)
}

// human formats a byte count.
func human(n int64) string { return ui.Bytes(n) }
