package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// script is a push of an image: two layers streamed, one cached, a config,
// a manifest, and a layer a registry already had.
func script() []manifests.Event {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	c, _ := cid.Decode("bafkreicq4dg6nkef5ju422ptedcwfz6kcvpvvhuqeykfrwq5krazf3muze")
	const (
		layer = "application/vnd.oci.image.layer.v1.tar+gzip"
		conf  = "application/vnd.oci.image.config.v1+json"
		man   = "application/vnd.oci.image.manifest.v1+json"
	)
	img := "docker.io/library/alpine:3.20"
	ev := func(t manifests.EventType, dg digest.Digest, mt string, size, done int64, st manifests.BlobState) manifests.Event {
		e := manifests.Event{Type: t, Image: img, Digest: dg, MediaType: mt, Size: size, Done: done, State: st}
		if t == manifests.BlobDone && st == manifests.StateAdded {
			e.CID = c
		}
		return e
	}
	big, small := d("big"), d("small")
	return []manifests.Event{
		ev(manifests.BlobStart, big, layer, 3<<20, 0, ""),
		ev(manifests.BlobStart, small, layer, 512<<10, 0, ""),
		ev(manifests.BlobProgress, big, layer, 3<<20, 1<<20, ""),
		ev(manifests.BlobDone, small, layer, 512<<10, 512<<10, manifests.StateAdded),
		ev(manifests.BlobProgress, big, layer, 3<<20, 2<<20, ""),
		ev(manifests.BlobDone, big, layer, 3<<20, 3<<20, manifests.StateAdded),
		ev(manifests.BlobDone, d("shared"), layer, 70<<10, 70<<10, manifests.StateCached),
		ev(manifests.BlobDone, d("there"), layer, 1<<20, 1<<20, manifests.StateExists),
		ev(manifests.BlobStart, d("config"), conf, 1500, 0, ""),
		ev(manifests.BlobDone, d("config"), conf, 1500, 1500, manifests.StateAdded),
		ev(manifests.BlobStart, d("manifest"), man, 900, 0, ""),
		ev(manifests.BlobDone, d("manifest"), man, 900, 900, manifests.StateAdded),
		{Type: manifests.ImageDone, Image: img, Digest: d("manifest"), CID: c},
	}
}

// clock advances 200ms per reading: every event may redraw.
func clock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { t = t.Add(200 * time.Millisecond); return t }
}

func run(p Printer) {
	for i, e := range script() {
		p.Event(e)
		if i == 6 {
			p.Message("image", "new       docker.io/library/alpine:3.20 (plain)", map[string]string{"status": "new"})
		}
	}
	p.Finish()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/ui -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s changed:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// screen replays the TTY output the way a terminal shows it in the end:
// each "ESC[nA ESC[J" removes the last n lines.
func screen(out string) []string {
	var lines []string
	cur := ""
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		switch {
		case out[i] == '\x1b':
			j := strings.IndexAny(out[i:], "AJ")
			if out[i+j] == 'A' {
				var n int
				_, _ = fmtSscan(out[i+2:i+j], &n)
				lines = lines[:len(lines)-n]
			}
			i += j + 1
			continue
		case out[i] == '\n':
			lines = append(lines, cur)
			cur = ""
		default:
			cur += string(r)
		}
		i += size
	}
	return lines
}

func TestTTYGolden(t *testing.T) {
	for _, w := range []int{120, 40} {
		var b bytes.Buffer
		run(NewTTY(Options{W: &b, Width: w, ShowImage: w > 100, Now: clock()}))
		out := b.String()
		golden(t, "tty-"+itoa(w)+".golden", out)
		final := screen(out)
		golden(t, "tty-"+itoa(w)+".screen", strings.Join(final, "\n")+"\n")
		for _, l := range final {
			// The display's own lines never wrap (a message is printed
			// for good, and may).
			if n := len([]rune(l)); n >= w && !strings.HasPrefix(l, "new ") {
				t.Errorf("width %d: a %d-column line would wrap: %q", w, n, l)
			}
		}
		if len(final) != 8 {
			t.Errorf("width %d: %d lines on screen, want 6 blob lines, the message, the summary:\n%s", w, len(final), strings.Join(final, "\n"))
		}
		last := final[len(final)-1]
		if !strings.HasPrefix(last, "elapsed: ") || !strings.Contains(last, "total: ") {
			t.Errorf("width %d: last line %q", w, last)
		}
	}
}

func TestPlainGolden(t *testing.T) {
	var b bytes.Buffer
	run(NewPlain(Options{W: &b, ShowImage: true, Now: clock()}))
	if strings.Contains(b.String(), "\x1b") || strings.Contains(b.String(), "\r") {
		t.Errorf("plain form has terminal controls: %q", b.String())
	}
	golden(t, "plain.golden", b.String())
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	run(NewJSON(Options{W: &b, Now: clock(), Interval: 300 * time.Millisecond}))
	golden(t, "json.golden", b.String())
	types := map[string]int{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		var e JSONEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		types[e.Type]++
	}
	want := map[string]int{"blob-start": 4, "blob-progress": 1, "blob-done": 6, "image-done": 1, "image": 1, "summary": 1}
	for k, n := range want {
		if types[k] != n {
			t.Errorf("%d %s events, want %d (all: %v)", types[k], k, n, types)
		}
	}
}

func TestSummary(t *testing.T) {
	tl := newTally(time.Unix(0, 0))
	tl.apply(manifests.Event{Type: manifests.BlobDone, Digest: digest.FromString("a"), Size: 1 << 20, State: manifests.StateAdded})
	got := tl.summary(time.Unix(2, 0))
	if want := "elapsed: 2.0 s  total: 1.0 MiB (512.0 KiB/s)  1 blob: 1 added"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestIdle: a run that moved no blob (a dry run, a no-op sync) prints no
// summary line in the text forms.
func TestIdle(t *testing.T) {
	for name, p := range map[string]func(Options) Printer{"tty": NewTTY, "plain": NewPlain} {
		var b bytes.Buffer
		pr := p(Options{W: &b, Now: clock()})
		pr.Message("image", "unchanged x", nil)
		pr.Finish()
		if b.String() != "unchanged x\n" {
			t.Errorf("%s: %q", name, b.String())
		}
	}
}
