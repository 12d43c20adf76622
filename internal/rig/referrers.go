package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ReferrersRegistry is internal/cmd/refregistry running as a process:
// go-containerregistry's registry with the OCI 1.1 referrers API, on
// 127.0.0.1. Its limits (artifactType taken from the config media type, no
// artifactType filtering, no OCI-Subject header) are in that command's doc.
type ReferrersRegistry struct {
	// Host is 127.0.0.1:PORT.
	Host string

	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// Log is the registry's request log so far (one line per request: method,
// URL, and status and error code when it failed).
func (r *ReferrersRegistry) Log() string { return r.log.String() }

// StartReferrersRegistry builds internal/cmd/refregistry (or takes
// $MIRROR_REFREGISTRY_BIN) and starts it for the life of the test.
func StartReferrersRegistry(t testing.TB) *ReferrersRegistry {
	t.Helper()
	bin := os.Getenv("MIRROR_REFREGISTRY_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "refregistry")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ipfs-mirror/mirror/internal/cmd/refregistry")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building refregistry: %v\n%s", err, out)
		}
	}
	r := &ReferrersRegistry{done: make(chan struct{}), log: &lockedBuffer{}}
	r.cmd = exec.Command(bin, "-addr", "127.0.0.1:0", "-blobs", filepath.Join(t.TempDir(), "blobs"))
	out := &lockedBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = out, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting refregistry: %v", err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() { StopGroup(r.cmd, r.done, 5*time.Second) })
	// The first stdout line is the address.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			r.Host = strings.TrimSpace(line)
			break
		}
		select {
		case <-r.done:
			t.Fatalf("refregistry exited before listening\n%s", r.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("refregistry printed no address in 30s\n%s", r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + r.Host + "/v2/")
	if err != nil {
		t.Fatalf("refregistry at %s: %v\n%s", r.Host, err, r.log.String())
	}
	resp.Body.Close()
	return r
}

// Referrers lists the referrers of digest in HOST/REPO through the OCI 1.1
// referrers API, GET /v2/<repo>/referrers/<digest>[?artifactType=…], as
// curl would: it fails the test unless the answer is 200 with an OCI image
// index. It returns the index and the response headers (OCI-Filters-Applied
// says whether the registry filtered).
func Referrers(t testing.TB, host, repo string, digest v1.Hash, artifactType string) (v1.IndexManifest, http.Header) {
	t.Helper()
	u := fmt.Sprintf("http://%s/v2/%s/referrers/%s", host, repo, digest)
	if artifactType != "" {
		u += "?artifactType=" + url.QueryEscape(artifactType)
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("GET %s: reading: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != string(types.OCIImageIndex) {
		t.Fatalf("GET %s: Content-Type %q, want %s", u, ct, types.OCIImageIndex)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("GET %s: not an index: %v\n%s", u, err, body)
	}
	return idx, resp.Header
}
