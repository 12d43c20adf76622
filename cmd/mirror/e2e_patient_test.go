package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestE2EReadTimeoutGivesUp (issue 17): an online node with no peers
// never answers for a CID nobody has; pull and inspect ask again once
// after --read-timeout, say so on stderr, and exit 4 naming the read
// timeout, long before any --timeout. With --json the warning is a JSON
// line on stderr and stdout stays empty.
func TestE2EReadTimeoutGivesUp(t *testing.T) {
	t.Parallel()
	offline := rig.StartKubo(t, rig.KuboOptions{})
	online := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: swarmKey()})
	never := offline.AddOnlyHash(rig.RandomBytes(997, 1000))
	env := []string{"IPFS_API=" + online.APIAddr}

	start := time.Now()
	res := mirrorRun(t, env, "--timeout", "2m", "pull", "--read-timeout", "2s", "--read-retries", "1", "ipfs://"+never, "oci:"+filepath.Join(t.TempDir(), "x"))
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("pull took %s with --read-timeout 2s --read-retries 1", took)
	}
	want := fmt.Sprintf("warning: no bytes from IPFS for 2s reading %s at offset 0; asking again (try 2 of 2)", never)
	if res.code != ExitIPFS || !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, "read timeout") || strings.Count(res.stderr, "asking again") != 1 {
		t.Errorf("pull: exit %d (want %d)\n%s", res.code, ExitIPFS, res.stderr)
	}

	// The variable, inspect, --json.
	res = mirrorRun(t, append(env, "MIRROR_READ_TIMEOUT=1s"), "--json", "--timeout", "1m", "inspect", "--read-retries", "1", never)
	if res.code != ExitIPFS || res.stdout != "" {
		t.Errorf("inspect --json: exit %d (want %d), stdout %q\n%s", res.code, ExitIPFS, res.stdout, res.stderr)
	}
	var warned bool
	for _, line := range strings.Split(res.stderr, "\n") {
		var e struct {
			Type string
			Data struct {
				CID         string
				Offset, Try int64
				Of          int
			}
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "warning" {
			warned = e.Data.CID == never && e.Data.Offset == 0 && e.Data.Try == 2 && e.Data.Of == 2
		}
	}
	if !warned {
		t.Errorf("inspect --json: no warning object for the retry:\n%s", res.stderr)
	}

	// 0 turns it off: then only --timeout bounds the wait.
	res = mirrorRun(t, env, "--timeout", "3s", "inspect", "--read-timeout", "0", never)
	if res.code != ExitIPFS || strings.Contains(res.stderr, "asking again") || !strings.Contains(res.stderr, "--timeout") {
		t.Errorf("--read-timeout 0: exit %d\n%s", res.code, res.stderr)
	}
}

// TestE2EReadTimeoutResumes (issue 17): a read that stops mid-stream (the
// node's answer stalls after 1 MiB, once, in a proxy in front of a real
// kubo) is asked again at the offset reached, and the pulled image has the
// source's bytes: after --read-timeout when --stall-timeout is not shorter,
// and after --stall-timeout, not counted as a retry, when it is.
func TestE2EReadTimeoutResumes(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 31, 3<<20, false)}})
	src := r.reg.Host + "/test/stall:v1"
	rig.Push(t, src, img)
	root := mustRun(t, r.env, "push", src).lastLine()
	const stallAt = 1 << 20
	for _, tc := range []struct {
		name string
		args []string
		want string // the one message about the stall, offset as group 2
	}{
		{"read timeout", []string{"--read-timeout", "2s"}, `warning: no bytes from IPFS for 2s reading (\S+) at offset (\d+); asking again \(try 2 of 6\)`},
		{"stall timeout", []string{"--read-timeout", "1m", "--stall-timeout", "500ms"}, `IPFS gave no bytes for \S+ reading (\S+) at offset (\d+); asking again there \(not a retry\)`},
		// mirror serve, skopeo reading from it: the same, in serve's log.
		{"serve stall timeout", []string{"--read-timeout", "1m", "--stall-timeout", "500ms"}, `msg="no bytes from IPFS within the stall wait; asking again at the offset reached" cid=(\S+) offset=(\d+)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse("http://" + strings.TrimPrefix(strings.Replace(strings.Replace(r.k.APIAddr, "/ip4/", "", 1), "/tcp/", ":", 1), "/"))
			if err != nil {
				t.Fatal(err)
			}
			var stalled atomic.Bool
			var mu sync.Mutex
			var offsets []string
			rp := httputil.NewSingleHostReverseProxy(u)
			rp.FlushInterval = -1
			rp.ModifyResponse = func(resp *http.Response) error {
				req := resp.Request
				if !strings.HasSuffix(req.URL.Path, "/api/v0/cat") {
					return nil
				}
				mu.Lock()
				offsets = append(offsets, req.URL.Query().Get("offset"))
				mu.Unlock()
				resp.Body = &stallBody{ReadCloser: resp.Body, done: req.Context().Done(), left: stallAt, stalled: &stalled}
				return nil
			}
			proxy := httptest.NewServer(rp)
			t.Cleanup(proxy.Close)

			dir := filepath.Join(t.TempDir(), "out")
			start := time.Now()
			var stderr string
			if strings.HasPrefix(tc.name, "serve") {
				sp := startServe(t, []string{"IPFS_API=" + proxy.URL}, append(tc.args, "--blob-cache", "none")...)
				rig.Skopeo(t, "copy", "-q", "--src-tls-verify=false", "docker://"+sp.host+"/ipfs/"+root, "dir:"+dir)
				stderr = sp.stderr()
			} else {
				args := append(append([]string{"pull"}, tc.args...), "ipfs://"+root, "oci:"+dir)
				stderr = mustRun(t, []string{"IPFS_API=" + proxy.URL}, args...).stderr
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %s", took)
			}
			if !stalled.Load() {
				t.Fatal("no read reached 1 MiB: nothing stalled")
			}
			m := regexp.MustCompile(tc.want).FindAllStringSubmatch(stderr, -1)
			if len(m) != 1 || m[0][2] != fmt.Sprint(stallAt) {
				t.Fatalf("want one message matching %q at offset %d:\n%s", tc.want, stallAt, stderr)
			}
			if tc.name != "read timeout" && (strings.Contains(stderr, "warning:") || strings.Contains(stderr, "within the read timeout")) {
				t.Errorf("a stall was counted as a retry:\n%s", stderr)
			}
			mu.Lock()
			resumed := strings.Contains(" "+strings.Join(offsets, " ")+" ", fmt.Sprintf(" %d ", stallAt))
			mu.Unlock()
			if !resumed {
				t.Errorf("no cat asked again at offset %d: offsets %q", stallAt, offsets)
			}
			if strings.HasPrefix(tc.name, "serve") {
				sameBlobs(t, "copied by skopeo", rig.SourceBlobs(t, img), rig.DirBlobs(t, dir))
				return
			}
			rig.LayoutValid(t, dir)
			sameBlobs(t, "pulled", rig.SourceBlobs(t, img), rig.LayoutBlobs(t, dir))
			rig.SkopeoReads(t, "oci:"+dir)
		})
	}
}

// stallBody passes left bytes, then (for the first body of all that gets
// there) blocks until the request is gone.
type stallBody struct {
	io.ReadCloser
	done    <-chan struct{}
	left    int
	stalled *atomic.Bool
	mine    bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.left <= 0 && (b.mine || b.stalled.CompareAndSwap(false, true)) {
		b.mine = true
		<-b.done
		return 0, io.ErrUnexpectedEOF
	}
	if b.left > 0 && len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= n
	return n, err
}
