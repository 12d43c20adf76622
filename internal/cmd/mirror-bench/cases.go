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

// ---- case 1: sync throughput -------------------------------------------

func (b *bench) throughputSet(ctx context.Context, text bool) (*imageSet, string, error) {
	kind, seed, size := "random", uint64(100), b.sz.TPLayer
	if text {
		kind, seed, size = "compressible", 200, b.sz.TPTextLayer
	}
	if s := b.sets[kind]; s != nil {
		return s, kind, nil
	}
	s, err := b.makeSet(ctx, "tp-"+kind, b.sz.TPImages, func(i int) ([]*synthLayer, error) {
		spec := synthSpec{Seed: seed + uint64(i), Size: size, FileSize: 16 * mib}
		if text {
			spec.Text, spec.Gzip, spec.FileSize = true, 1, 1*mib
		}
		l, err := newSynthLayer(spec)
		if err != nil {
			return nil, err
		}
		return []*synthLayer{l}, nil
	})
	if err != nil {
		return nil, "", err
	}
	if b.sets == nil {
		b.sets = map[string]*imageSet{}
	}
	b.sets[kind] = s
	return s, kind, nil
}

func (b *bench) caseThroughput(ctx context.Context) error {
	for _, text := range []bool{false, true} {
		s, kind, err := b.throughputSet(ctx, text)
		if err != nil {
			return err
		}
		if err := b.warm(ctx, s.blobs); err != nil {
			return err
		}
		size := b.sz.TPLayer
		desc := "tar"
		if text {
			size, desc = b.sz.TPTextLayer, "tar+gzip (level 1)"
		}
		group := fmt.Sprintf("sync throughput: %d images × one %s %s %s layer (%s of blobs)", len(s.refs), human(size), kind, desc, human(s.bytes))
		jobs := b.o.jobs
		mirrorR := &result{Case: 1, Group: group, Name: fmt.Sprintf("mirror sync --jobs %d", jobs), Unit: "MiB/s", bytes: s.bytes}
		addR := &result{Case: 1, Group: group, Name: fmt.Sprintf("limit: curl blob | ipfs add, %d at once", jobs), Unit: "MiB/s", bytes: s.bytes}
		skoR := &result{Case: 1, Group: group, Name: "skopeo copy → oci:DIR, then ipfs add -r DIR", Unit: "MiB/s", bytes: s.bytes}
		var skoPhase, addPhase []float64
		for run := 0; run < b.o.runs; run++ {
			// mirror sync
			if err := b.k.reset(ctx); err != nil {
				return err
			}
			st, rep, err := b.sync(ctx, s.list, jobs, true, "")
			if err != nil {
				return err
			}
			if len(rep.Images) != len(s.refs) {
				return fmt.Errorf("mirror sync: %d images in the report, want %d", len(rep.Images), len(s.refs))
			}
			record(mirrorR, mibps(s.bytes, st.Wall), st)

			// the limit: the same blob bytes through ipfs add, same options
			if err := b.k.reset(ctx); err != nil {
				return err
			}
			k0 := b.k.cpu()
			st, err = parallel(len(s.blobs), jobs, func(i int) (stat, error) {
				return b.pipe(ctx, cmdOf(b.curlBin, "-sSf", s.blobs[i]),
					cmdOf(b.ipfsBin, "add", "-Q", "--cid-version=1", "--raw-leaves", "--chunker=size-262144", "--pin"))
			})
			st.KuboCPU = b.k.cpu() - k0
			if err != nil {
				return fmt.Errorf("curl | ipfs add: %w", err)
			}
			if n := len(strings.Fields(st.Stdout)); n != len(s.blobs) {
				return fmt.Errorf("curl | ipfs add: %d CIDs for %d blobs", n, len(s.blobs))
			}
			record(addR, mibps(s.bytes, st.Wall), st)

			// what a user scripts today: skopeo to an OCI layout, then ipfs add -r
			if err := b.k.reset(ctx); err != nil {
				return err
			}
			st, phase, err := b.skopeoPipeline(ctx, s)
			if err != nil {
				return err
			}
			skoPhase, addPhase = append(skoPhase, phase[0]), append(addPhase, phase[1])
			record(skoR, mibps(s.bytes, st.Wall), st)
		}
		if b.o.profile != "" && !text {
			expect := float64(s.bytes) / float64(mib) / median(mirrorR.Runs)
			err := b.profiled(ctx, "case1-kubo-during-mirror-sync.pprof", expect, func() error {
				_, _, err := b.sync(ctx, s.list, jobs, true, "")
				return err
			})
			if err != nil {
				return err
			}
		}
		addR.Note = "each layer and config blob GET from the registry by curl, piped to `ipfs add -Q --cid-version=1 --raw-leaves --chunker=size-262144 --pin` (the ipfs CLI, through the same daemon); as many at once as mirror's --jobs"
		skoR.Note = "`skopeo copy --src-tls-verify=false docker://… oci:DIR:NAME` per image, one after the other, then `ipfs add -r -Q --cid-version=1 --raw-leaves --chunker=size-262144 --pin DIR`; produces a plain OCI layout in IPFS, not the IPFS-enabled format" +
			fmt.Sprintf("; median phases: skopeo %.1f s, ipfs add -r %.1f s", median(skoPhase), median(addPhase))
		b.add(addR)
		b.add(skoR)
		b.add(mirrorR)
		b.compare(mirrorR, addR.Name)
		mirrorR.target("≥ 0.8× limit", mirrorR.Ratio >= 0.8)
		r2 := *mirrorR
		r2.Name += " (vs skopeo pipeline)"
		r2.Target, r2.Met = "", nil
		b.results = append(b.results, &r2)
		b.compare(&r2, skoR.Name)
		r2.target("≥ 2× skopeo+ipfs add", r2.Ratio >= 2)
	}
	return nil
}

// record adds one run's value and CPU times to r.
func record(r *result, v float64, st stat) {
	r.Runs = append(r.Runs, v)
	r.CPU = append(r.CPU, st.CPU.Seconds())
	r.KuboCPU = append(r.KuboCPU, st.KuboCPU)
}

// skopeoPipeline returns the stat of the whole and the wall seconds of its
// two phases (skopeo copies, ipfs add -r).
func (b *bench) skopeoPipeline(ctx context.Context, s *imageSet) (stat, [2]float64, error) {
	var phase [2]float64
	dir := filepath.Join(b.dir, "skopeo-oci")
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	var total stat
	k0 := b.k.cpu()
	t0 := time.Now()
	for i, ref := range s.refs {
		st, err := b.exec(ctx, b.skopeoBin, "copy", "-q", "--policy", b.policy, "--src-tls-verify=false",
			"docker://"+ref, fmt.Sprintf("oci:%s:img%d", dir, i))
		if err != nil {
			return st, phase, fmt.Errorf("skopeo copy: %w", err)
		}
		total.CPU += st.CPU
	}
	phase[0] = time.Since(t0).Seconds()
	st, err := b.exec(ctx, b.ipfsBin, "add", "-r", "-Q", "--cid-version=1", "--raw-leaves", "--chunker=size-262144", "--pin", dir)
	if err != nil {
		return st, phase, err
	}
	total.CPU += st.CPU
	total.Wall = time.Since(t0)
	phase[1] = total.Wall.Seconds() - phase[0]
	total.KuboCPU = b.k.cpu() - k0
	return total, phase, nil
}

// profiled runs fn once more (not counted) while kubo records a CPU profile
// (its API serves /debug/pprof) of about expect seconds, written to file in
// the --profile directory.
func (b *bench) profiled(ctx context.Context, file string, expect float64, fn func() error) error {
	if err := b.k.reset(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(b.o.profile, 0o755); err != nil {
		return err
	}
	secs := int(expect*1.1) + 1
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b.k.apiURL, secs), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(b.o.profile, file))
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	err := fn()
	if perr := <-done; perr != nil {
		b.logf("profile %s: %v", file, perr)
	} else {
		b.logf("profile: wrote %s (%ds of kubo CPU profile)", filepath.Join(b.o.profile, file), secs)
	}
	return err
}
