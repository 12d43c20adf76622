// What several cases use: image sets on the registry, mirror lists, a
// synced run of mirror sync and its report.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageSet is a group of images written to the registry, with a mirror
// list naming them.
type imageSet struct {
	refs  []string
	imgs  []v1.Image
	bytes int64    // every blob of every image (shared blobs once)
	blobs []string // blob URLs on the registry: layers and configs, each once
	list  string   // mirrors.yaml
}

func (b *bench) ref(repo string) string { return b.reg.host + "/bench/" + repo }

func human(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d B", n)
}

func mibps(bytes int64, d time.Duration) float64 {
	return float64(bytes) / float64(mib) / d.Seconds()
}

// makeSet builds images (layers per image from mk), pushes them under
// bench/<prefix>-<i>:v1 and writes a mirror list of them.
func (b *bench) makeSet(ctx context.Context, prefix string, n int, mk func(i int) ([]*synthLayer, error)) (*imageSet, error) {
	s := &imageSet{}
	seen := map[string]bool{}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		layers, err := mk(i)
		if err != nil {
			return nil, err
		}
		img, err := synthImage(fmt.Sprintf("%s-%d", prefix, i), layers...)
		if err != nil {
			return nil, err
		}
		repo := fmt.Sprintf("%s-%d", prefix, i)
		s.refs = append(s.refs, b.ref(repo)+":v1")
		s.imgs = append(s.imgs, img)
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		raw, _ := img.RawManifest()
		s.bytes += int64(len(raw))
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if seen[d.Digest.String()] {
				continue
			}
			seen[d.Digest.String()] = true
			s.bytes += d.Size
			s.blobs = append(s.blobs, fmt.Sprintf("http://%s/v2/bench/%s/blobs/%s", b.reg.host, repo, d.Digest))
		}
	}
	if err := pushImages(ctx, s.refs, s.imgs); err != nil {
		return nil, err
	}
	s.list = filepath.Join(b.dir, prefix+".yaml")
	if err := writeList(s.list, s.refs, ""); err != nil {
		return nil, err
	}
	b.logf("  wrote %d images (%s) as %s-*, in %s", n, human(s.bytes), prefix, time.Since(t0).Round(time.Millisecond))
	return s, nil
}

func writeList(path string, sources []string, extra string) error {
	var sb strings.Builder
	sb.WriteString("version: 1\n" + extra + "images:\n")
	for _, s := range sources {
		fmt.Fprintf(&sb, "  - source: %s\n", s)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// warm reads every blob once so that the registry's files are in the page
// cache for every contender alike.
func (b *bench) warm(ctx context.Context, urls []string) error {
	for _, u := range urls {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	return nil
}

// syncReport is the part of `mirror sync --report` we read.
type syncReport struct {
	Images []struct {
		Status string `json:"status"`
		CID    string `json:"cid"`
	} `json:"images"`
	BlobsAdded int   `json:"blobsAdded"`
	BytesAdded int64 `json:"bytesAdded"`
	Failed     int   `json:"failed"`
}

// sync runs `mirror sync` of list with a fresh lockfile (fresh: true) or
// the one left by the previous run, and checks its report.
func (b *bench) sync(ctx context.Context, list string, jobs int, fresh bool, api string) (stat, *syncReport, error) {
	if api == "" {
		api = b.k.api
	}
	lock := strings.TrimSuffix(list, ".yaml") + ".lock"
	rep := strings.TrimSuffix(list, ".yaml") + ".report.json"
	if fresh {
		_ = os.Remove(lock)
	}
	st, err := b.pipe(ctx, cmdOf(b.mirrorBin, "--insecure", "--ipfs-api", api, "sync", "--jobs", fmt.Sprint(jobs), "--lock", lock, "--report", rep, list))
	if err != nil {
		return st, nil, fmt.Errorf("mirror sync %s: %w", filepath.Base(list), err)
	}
	var r syncReport
	data, err := os.ReadFile(rep)
	if err != nil {
		return st, nil, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return st, nil, fmt.Errorf("reading the sync report: %w", err)
	}
	if r.Failed > 0 {
		return st, &r, fmt.Errorf("mirror sync %s: %d images failed: %s", filepath.Base(list), r.Failed, lastLines(st.Stderr, 5))
	}
	return st, &r, nil
}

// record adds one run's value and CPU times to r.
func record(r *result, v float64, st stat) {
	r.Runs = append(r.Runs, v)
	r.CPU = append(r.CPU, st.CPU.Seconds())
	r.KuboCPU = append(r.KuboCPU, st.KuboCPU)
}

// pushedImage is a synthetic image of n random layers of size bytes each,
// pushed to the bench registry as NAME:v1, then `mirror push`ed into a
// freshly reset kubo node: its reference, size, mirror's output and the
// CIDs of its layers and config.
type pushedImage struct {
	ref      string
	size     int64
	layers   []*synthLayer
	push     pushJSON
	blobCIDs []string
}

func (b *bench) pushedImage(ctx context.Context, name string, seed uint64, n int, size int64) (*pushedImage, error) {
	p := &pushedImage{ref: b.ref(name) + ":v1"}
	for i := range n {
		l, err := newSynthLayer(synthSpec{Seed: seed + uint64(i), Size: size, FileSize: 16 * mib})
		if err != nil {
			return nil, err
		}
		p.layers = append(p.layers, l)
	}
	img, err := synthImage(name, p.layers...)
	if err != nil {
		return nil, err
	}
	if err := pushImages(ctx, []string{p.ref}, []v1.Image{img}); err != nil {
		return nil, err
	}
	if p.size, err = imageBytes(img); err != nil {
		return nil, err
	}
	if err := b.k.reset(ctx); err != nil {
		return nil, err
	}
	st, err := b.mirror(ctx, "--json", "push", p.ref)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(st.Stdout), &p.push); err != nil || p.push.Root == "" {
		return nil, fmt.Errorf("mirror --json push: cannot read the output (%v): %.200s", err, st.Stdout)
	}
	for _, bl := range p.push.Blobs {
		if strings.Contains(bl.MediaType, "layer") || strings.Contains(bl.MediaType, "config") {
			p.blobCIDs = append(p.blobCIDs, bl.CID.Link)
		}
	}
	return p, nil
}
