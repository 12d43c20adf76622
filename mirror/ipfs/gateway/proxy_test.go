package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
)

// proxy stands in front of a real gateway and misbehaves on demand.
type proxy struct {
	*httptest.Server
	target string

	delay time.Duration // before each answer
	stall bool          // send half of each answer, then nothing
	// lie is "flipraw" (a byte of each raw answer changed), "truncraw"
	// (half of it), "404raw" (every other block not found), or one of
	// lieCAR's.
	lie string

	mu        sync.Mutex
	failCode  string
	failAfter string
	failed    map[string]bool
	inflight  int
	maxFlight int
	requests  int
	cars      int
	lies      atomic.Int32
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{target: target, failed: map[string]bool{}}
	p.Server = httptest.NewServer(p)
	t.Cleanup(p.Close)
	return p
}

// failFirst answers the first request for each URL with status (and
// Retry-After, when after is not empty; "date+2s" is an HTTP date two
// seconds after the answer).
func (p *proxy) failFirst(status, after string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failCode, p.failAfter = status, after
}

func (p *proxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

func (p *proxy) carRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cars
}

func (p *proxy) maxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxFlight
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests++
	if r.URL.Query().Get("format") == "car" {
		p.cars++
	}
	p.inflight++
	p.maxFlight = max(p.maxFlight, p.inflight)
	fail := p.failCode != "" && !p.failed[r.URL.RequestURI()]
	if fail {
		p.failed[r.URL.RequestURI()] = true
	}
	code, after := p.failCode, p.failAfter
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight--
		p.mu.Unlock()
	}()
	if p.delay > 0 {
		time.Sleep(p.delay)
	}
	if fail {
		if after == "date+2s" {
			after = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
		}
		if after != "" {
			w.Header().Set("Retry-After", after)
		}
		w.WriteHeader(map[string]int{"429": 429, "503": 503}[code])
		io.WriteString(w, "slow down\n")
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), nil)
	req.Header.Set("Accept", r.Header.Get("Accept"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	car := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.ipld.car")
	if resp.StatusCode == http.StatusOK && p.lie != "" {
		if car {
			body = p.lieCAR(body)
		} else if len(body) > 0 {
			switch p.lie {
			case "flipraw":
				body = bytes.Clone(body)
				body[len(body)/2] ^= 0x55
				p.lies.Add(1)
			case "truncraw":
				body = body[:len(body)/2]
				p.lies.Add(1)
			case "404raw":
				if p.lies.Add(1)%2 == 0 {
					http.Error(w, "no such block", http.StatusNotFound)
					return
				}
			}
		}
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	if p.stall {
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.Write(body)
}

// lieCAR rewrites a CAR answer: "flip" changes a byte of every raw block
// (its CID kept), "drop" leaves out every other raw block, "truncate" cuts
// the stream in the middle of a block, "junk" adds blocks nobody asked
// for past any bound.
func (p *proxy) lieCAR(body []byte) []byte {
	if p.lie == "truncate" {
		p.lies.Add(1)
		return body[:len(body)*2/3]
	}
	br, err := carv2.NewBlockReader(bytes.NewReader(body))
	if err != nil {
		return body
	}
	var out bytes.Buffer
	wc, err := storage.NewWritable(&out, br.Roots, carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(true))
	if err != nil {
		panic(err)
	}
	leaves := 0
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		data := b.RawData()
		if b.Cid().Type() == cid.Raw {
			leaves++
			switch p.lie {
			case "flip":
				data = bytes.Clone(data)
				data[len(data)/2] ^= 0x55
				p.lies.Add(1)
			case "drop":
				if leaves%2 == 0 {
					p.lies.Add(1)
					continue
				}
			}
		}
		if err := wc.Put(context.Background(), b.Cid().KeyString(), data); err != nil {
			panic(err)
		}
	}
	if p.lie == "junk" {
		p.lies.Add(1)
		junk := bytes.Repeat([]byte("junk"), 256<<8)
		for i := range 64 {
			junk[0] = byte(i)
			h, _ := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum(junk)
			wc.Put(context.Background(), h.KeyString(), junk)
		}
	}
	return out.Bytes()
}
