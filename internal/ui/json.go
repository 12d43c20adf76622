package ui

import (
	"encoding/json"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

// JSONEvent is one line of the JSON form. Type is blob-start,
// blob-progress (at most once per Interval per blob), blob-done,
// image-done, summary, or a message's kind (a sync's "image").
type JSONEvent struct {
	Type      string `json:"type"`
	Image     string `json:"image,omitempty"`
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Done      int64  `json:"done,omitempty"`
	State     string `json:"state,omitempty"`
	CID       string `json:"cid,omitempty"`
	Text      string `json:"text,omitempty"`
	Data      any    `json:"data,omitempty"`

	// summary only
	ElapsedNs int64 `json:"elapsedNs,omitempty"`
	Bytes     int64 `json:"bytes,omitempty"`
	Added     int   `json:"added,omitempty"`
	Cached    int   `json:"cached,omitempty"`
	Exists    int   `json:"exists,omitempty"`
}

// jsonPrinter writes one JSON object per line.
type jsonPrinter struct {
	locked
	o     Options
	t     tally
	enc   *json.Encoder
	last  map[digest.Digest]time.Time
	ended bool
}

// NewJSON returns the JSON-lines form.
func NewJSON(o Options) Printer {
	o.defaults(time.Second)
	return &jsonPrinter{o: o, t: newTally(o.Now()), enc: json.NewEncoder(o.W), last: map[digest.Digest]time.Time{}}
}

func (p *jsonPrinter) Event(e manifests.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.t.apply(e)
	if p.ended {
		return
	}
	j := JSONEvent{Image: e.Image, Digest: e.Digest.String(), MediaType: e.MediaType, Size: e.Size}
	if e.CID.Defined() {
		j.CID = e.CID.String()
	}
	k := key(e)
	switch e.Type {
	case manifests.BlobStart:
		j.Type = "blob-start"
		p.last[k] = p.o.Now()
	case manifests.BlobProgress:
		now := p.o.Now()
		if now.Sub(p.last[k]) < p.o.Interval {
			return
		}
		p.last[k] = now
		j.Type, j.Done = "blob-progress", e.Done
	case manifests.BlobDone:
		delete(p.last, k)
		j.Type, j.Done, j.State = "blob-done", e.Size, string(b.state)
	case manifests.ImageDone:
		j.Type, j.Size, j.MediaType = "image-done", 0, ""
	default:
		return
	}
	_ = p.enc.Encode(j)
}

func (p *jsonPrinter) Message(kind, text string, data any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(JSONEvent{Type: kind, Text: text, Data: data})
}

func (p *jsonPrinter) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	_ = p.enc.Encode(JSONEvent{Type: "summary", ElapsedNs: int64(p.o.Now().Sub(p.t.start)), Bytes: p.t.bytes, Added: p.t.added, Cached: p.t.cached, Exists: p.t.exists})
}
