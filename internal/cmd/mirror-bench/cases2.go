package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ipfs-mirror/mirror/convert"
)

// ---- case 2: peak RSS of mirror push -----------------------------------

func (b *bench) caseRSS(ctx context.Context) error {
	group := "peak RSS of `mirror push`, image of one random tar layer"
	var rows []*result
	var largest string
	var largestWall float64
	for i, size := range b.sz.RSSLayers {
		l, err := newSynthLayer(synthSpec{Seed: 300 + uint64(i), Size: size, FileSize: 64 * mib})
		if err != nil {
			return err
		}
		img, err := synthImage(fmt.Sprintf("rss-%d", i), l)
		if err != nil {
			return err
		}
		ref := b.ref(fmt.Sprintf("rss-%d", i)) + ":v1"
		t0 := time.Now()
		if err := pushImages(ctx, []string{ref}, []v1.Image{img}); err != nil {
			return err
		}
		n, err := imageBytes(img)
		if err != nil {
			return err
		}
		b.logf("  wrote %s (%s) in %s", ref, human(n), time.Since(t0).Round(time.Millisecond))
		r := &result{Case: 2, Group: group, Name: human(size) + " layer", Unit: "MiB"}
		var speeds, walls []float64
		for run := 0; run < b.o.runs; run++ {
			if err := b.k.reset(ctx); err != nil {
				return err
			}
			st, err := b.mirror(ctx, "push", ref)
			if err != nil {
				return err
			}
			if c := lastLine(st.Stdout); !strings.HasPrefix(c, "baf") {
				return fmt.Errorf("mirror push %s: last line %q is not a CID", ref, c)
			}
			record(r, float64(st.MaxRSS)/float64(mib), st)
			speeds = append(speeds, mibps(n, st.Wall))
			walls = append(walls, st.Wall.Seconds())
		}
		r.Note = fmt.Sprintf("push throughput %s MiB/s (runs %s)", fmtNum(median(speeds)), fmtRuns(speeds))
		b.add(r)
		if len(rows) > 0 {
			b.compare(r, rows[0].Name)
		}
		rows = append(rows, r)
		largest, largestWall = ref, median(walls)
	}
	first, last := rows[0], rows[len(rows)-1]
	for _, r := range rows[:len(rows)-1] {
		r.target("< 150 MiB", r.Median < 150)
	}
	last.target(fmt.Sprintf("< 150 MiB and flat (≤ %s-layer RSS + 32 MiB)", strings.TrimSuffix(first.Name, " layer")),
		last.Median < 150 && last.Median-first.Median <= 32)
	if b.o.profile != "" {
		err := b.profiled(ctx, "case2-kubo-during-mirror-push.pprof", largestWall, func() error {
			_, err := b.mirror(ctx, "push", largest)
			return err
		})
		if err != nil {
			return err
		}
		return b.profileInProcess(ctx, "case2-mirror-push-in-process.pprof", largest)
	}
	return nil
}

// ---- case 3: no-op resync -----------------------------------------------

func (b *bench) caseNoop(ctx context.Context) error {
	n := b.sz.NoopTags
	var (
		refs []string
		imgs []v1.Image
		tags []string
	)
	for i := 0; i < n; i++ {
		l, err := newSynthLayer(synthSpec{Seed: 1000 + uint64(i), Size: 512})
		if err != nil {
			return err
		}
		img, err := synthImage(fmt.Sprintf("noop-%d", i), l)
		if err != nil {
			return err
		}
		tag := fmt.Sprintf("v1.0.%d", i)
		tags = append(tags, fmt.Sprintf("%q", tag))
		refs = append(refs, b.ref("noop")+":"+tag)
		imgs = append(imgs, img)
	}
	t0 := time.Now()
	if err := pushImages(ctx, refs, imgs); err != nil {
		return err
	}
	b.logf("  wrote %d tags of bench/noop in %s", n, time.Since(t0).Round(time.Millisecond))
	regP, err := startCountingProxy("http://" + b.reg.host)
	if err != nil {
		return err
	}
	defer regP.Stop()
	ipfsP, err := startCountingProxy(b.k.apiURL)
	if err != nil {
		return err
	}
	defer ipfsP.Stop()
	api := "http://" + ipfsP.host
	body := fmt.Sprintf("images:\n  - source: %s/bench/noop\n    tags: [%s]\n", regP.host, strings.Join(tags, ", "))
	list := filepath.Join(b.dir, "noop.yaml")
	listImm := filepath.Join(b.dir, "noop-immutable.yaml")
	if err := os.WriteFile(list, []byte("version: 1\n"+body), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(listImm, []byte("version: 1\nimmutable_tags: '^v\\d+\\.\\d+\\.\\d+$'\n"+body), 0o644); err != nil {
		return err
	}
	group := fmt.Sprintf("no-op resync of %d tags (all unchanged)", n)
	groupImm := fmt.Sprintf("no-op resync of %d tags with immutable_tags", n)

	// The first sync fills the lockfile.
	regP.c.Reset()
	ipfsP.c.Reset()
	st, _, err := b.sync(ctx, list, b.o.jobs, true, api)
	if err != nil {
		return err
	}
	first := &result{Case: 3, Group: group, Name: fmt.Sprintf("first sync (%d new), wall", n), Unit: "s", Runs: []float64{st.Wall.Seconds()},
		CPU: []float64{st.CPU.Seconds()}, KuboCPU: []float64{st.KuboCPU},
		Note: fmt.Sprintf("one run; registry: %s; IPFS API: %s", formatCounts(regP.c.Snapshot()), formatCounts(ipfsP.c.Snapshot()))}
	b.add(first)
	lockData, err := os.ReadFile(strings.TrimSuffix(list, ".yaml") + ".lock")
	if err != nil {
		return err
	}
	if err := os.WriteFile(strings.TrimSuffix(listImm, ".yaml")+".lock", lockData, 0o644); err != nil {
		return err
	}

	measure := func(g, l, status string) error {
		wall := &result{Case: 3, Group: g, Name: "mirror sync, wall", Unit: "s"}
		gets := &result{Case: 3, Group: g, Name: "manifest + blob GETs", Unit: "requests"}
		heads := &result{Case: 3, Group: g, Name: "manifest HEADs per tag", Unit: ""}
		all := &result{Case: 3, Group: g, Name: "registry requests, all", Unit: "requests"}
		adds := &result{Case: 3, Group: g, Name: "IPFS adds", Unit: "calls"}
		calls := &result{Case: 3, Group: g, Name: "IPFS API calls, all", Unit: "calls"}
		var regLast, ipfsLast map[string]int
		for run := 0; run < b.o.runs; run++ {
			regP.c.Reset()
			ipfsP.c.Reset()
			st, rep, err := b.sync(ctx, l, b.o.jobs, false, api)
			if err != nil {
				return err
			}
			for _, im := range rep.Images {
				if im.Status != status {
					return fmt.Errorf("no-op sync: an image is %q, want %q", im.Status, status)
				}
			}
			if len(rep.Images) != n {
				return fmt.Errorf("no-op sync: %d images, want %d", len(rep.Images), n)
			}
			regLast, ipfsLast = regP.c.Snapshot(), ipfsP.c.Snapshot()
			record(wall, st.Wall.Seconds(), st)
			gets.Runs = append(gets.Runs, float64(regLast["GET manifests"]+regLast["GET blobs"]))
			heads.Runs = append(heads.Runs, float64(regLast["HEAD manifests"])/float64(n))
			all.Runs = append(all.Runs, float64(regP.c.Total()))
			adds.Runs = append(adds.Runs, float64(ipfsLast["POST /api/v0/add"]))
			calls.Runs = append(calls.Runs, float64(ipfsP.c.Total()))
		}
		all.Note = "last run: " + formatCounts(regLast)
		calls.Note = "last run: " + formatCounts(ipfsLast)
		b.add(wall)
		if status == "unchanged" {
			b.add(gets).target("0", gets.Median == 0)
			b.add(heads).target("1", heads.Median == 1)
			b.add(all)
		} else {
			b.add(all).target("0", all.Median == 0)
		}
		b.add(adds).target("0", adds.Median == 0)
		b.add(calls)
		return nil
	}
	if err := measure(group, list, "unchanged"); err != nil {
		return err
	}
	return measure(groupImm, listImm, "immutable")
}

// ---- case 4: mirror serve -------------------------------------------------

// pushJSON is the part of `mirror --json push` we read.
type pushJSON struct {
	Root  string `json:"root"`
	Blobs []struct {
		Digest    string `json:"Digest"`
		Size      int64  `json:"Size"`
		MediaType string `json:"MediaType"`
		CID       struct {
			Link string `json:"/"`
		} `json:"CID"`
	} `json:"blobs"`
}

func (b *bench) caseServe(ctx context.Context) error {
	if st, err := b.exec(ctx, b.mirrorBin, "serve", "--help"); err != nil || !strings.Contains(st.Stdout+st.Stderr, "--listen") {
		b.add(&result{Case: 4, Group: "mirror serve", Name: "not measured", Note: "`mirror serve --listen` is not in this build"})
		return nil
	}
	var layers []*synthLayer
	for i := 0; i < b.sz.ServeLayers; i++ {
		l, err := newSynthLayer(synthSpec{Seed: 400 + uint64(i), Size: b.sz.ServeLayer, FileSize: 16 * mib})
		if err != nil {
			return err
		}
		layers = append(layers, l)
	}
	img, err := synthImage("serve", layers...)
	if err != nil {
		return err
	}
	ref := b.ref("serve") + ":v1"
	if err := pushImages(ctx, []string{ref}, []v1.Image{img}); err != nil {
		return err
	}
	size, err := imageBytes(img)
	if err != nil {
		return err
	}
	if err := b.k.reset(ctx); err != nil {
		return err
	}
	st, err := b.mirror(ctx, "--json", "push", ref)
	if err != nil {
		return err
	}
	var pj pushJSON
	if err := json.Unmarshal([]byte(st.Stdout), &pj); err != nil || pj.Root == "" {
		return fmt.Errorf("mirror --json push: cannot read the output (%v): %.200s", err, st.Stdout)
	}
	var blobCIDs []string
	for _, bl := range pj.Blobs {
		if strings.Contains(bl.MediaType, "layer") || strings.Contains(bl.MediaType, "config") {
			blobCIDs = append(blobCIDs, bl.CID.Link)
		}
	}
	group := fmt.Sprintf("pull of a %s image (%d × %s random layers) with skopeo to dir:", human(size), len(layers), human(b.sz.ServeLayer))
	regR := &result{Case: 4, Group: group, Name: "docker-registry", Unit: "MiB/s", bytes: size}
	coldR := &result{Case: 4, Group: group, Name: "mirror serve, cold (fresh process)", Unit: "MiB/s", bytes: size}
	warmR := &result{Case: 4, Group: group, Name: "mirror serve, cached (second pull)", Unit: "MiB/s", bytes: size}
	restartR := &result{Case: 4, Group: group, Name: "mirror serve, restarted on its disk cache", Unit: "MiB/s", bytes: size}
	memR := &result{Case: 4, Group: group, Name: "mirror serve --blob-cache none, second pull", Unit: "MiB/s", bytes: size}
	catR := &result{Case: 4, Group: group, Name: "ipfs cat of each blob to a file", Unit: "MiB/s", bytes: size}
	pull := func(src string, check int64, serverPid int) (stat, error) {
		dir := filepath.Join(b.dir, "pull-dir")
		_ = os.RemoveAll(dir)
		defer os.RemoveAll(dir)
		// Each pull starts with nothing left to write back: not the
		// previous pull's files, nor the blobs serve just cached.
		syscall.Sync()
		s0 := cpuSeconds(serverPid)
		st, err := b.exec(ctx, b.skopeoBin, "copy", "-q", "--policy", b.policy, "--src-tls-verify=false", "docker://"+src, "dir:"+dir)
		if err != nil {
			return st, err
		}
		st.CPU += time.Duration((cpuSeconds(serverPid) - s0) * float64(time.Second))
		if got := dirBytes(dir); got < check {
			return st, fmt.Errorf("skopeo copy %s: %d bytes in dir:, want at least %d", src, got, check)
		}
		return st, nil
	}
	// One unmeasured pull from the registry first: its files into the page cache.
	if _, err := pull(ref, size-int64(4096), b.reg.p.cmd.Process.Pid); err != nil {
		return err
	}
	for run := 0; run < b.o.runs; run++ {
		st, err := pull(ref, size-4096, b.reg.p.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("pull from docker-registry: %w", err)
		}
		record(regR, mibps(size, st.Wall), st)

		// A fresh disk cache for each run: cold means empty.
		cacheDir := filepath.Join(b.dir, "serve-cache")
		_ = os.RemoveAll(cacheDir)
		for _, phase := range []struct {
			cache string
			rows  []*result
		}{
			{cacheDir, []*result{coldR, warmR}},
			{cacheDir, []*result{restartR}},
			{"none", []*result{nil, memR}},
		} {
			srv, addr, err := b.startServe(ctx, phase.cache)
			if err != nil {
				return err
			}
			src := addr + "/ipfs/" + pj.Root
			for _, row := range phase.rows {
				st, err = pull(src, size-4096, srv.cmd.Process.Pid)
				if err != nil {
					break
				}
				if row != nil {
					record(row, mibps(size, st.Wall), st)
				}
			}
			srv.Stop(10 * time.Second)
			if err != nil {
				return fmt.Errorf("pull from mirror serve: %w\n%s", err, lastLines(srv.Log(), 10))
			}
		}
		_ = os.RemoveAll(cacheDir)

		outDir := filepath.Join(b.dir, "cat-out")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		k0 := b.k.cpu()
		st, err = parallel(len(blobCIDs), len(blobCIDs), func(i int) (stat, error) {
			c := cmdOf(b.ipfsBin, "cat", blobCIDs[i])
			c.out = filepath.Join(outDir, blobCIDs[i])
			return b.pipe(ctx, c)
		})
		st.KuboCPU = b.k.cpu() - k0
		_ = os.RemoveAll(outDir)
		if err != nil {
			return fmt.Errorf("ipfs cat: %w", err)
		}
		record(catR, mibps(size, st.Wall), st)
	}
	regR.Note = "skopeo copy --src-tls-verify=false docker://REGISTRY/bench/serve:v1 dir:DIR; one unmeasured pull first so its files are in the page cache; CPU = skopeo + the registry"
	coldR.Note = "a new `mirror serve --listen 127.0.0.1:PORT --blob-cache DIR` (DIR empty) for each run, then skopeo copy docker://127.0.0.1:PORT/ipfs/<CID> dir:DIR (the kubo blocks are in the page cache: cold means serve's own caches are empty); CPU = skopeo + mirror serve"
	warmR.Note = "the same copy again on the same serve process (layers from the disk cache)"
	restartR.Note = "a new serve process on the same --blob-cache DIR: the files found are hashed once, then sent from disk"
	memR.Note = "`--blob-cache none` (memory caches only: layers read from kubo again), second pull on one process"
	catR.Note = "`ipfs cat CID > file` for every layer and the config at once (what serve reads, without HTTP, digest checks or skopeo)"
	b.add(regR)
	b.add(coldR)
	b.add(warmR)
	b.add(restartR)
	b.add(memR)
	b.add(catR)
	b.compare(coldR, regR.Name)
	coldR.target("≥ 0.7× docker-registry", coldR.Ratio >= 0.7)
	b.compare(warmR, regR.Name)
	warmR.target("≥ 0.9× docker-registry", warmR.Ratio >= 0.9)
	b.compare(restartR, regR.Name)
	b.compare(memR, regR.Name)
	b.compare(catR, regR.Name)
	if b.o.profile != "" {
		return b.profileServeInProcess(ctx, "case4-serve-in-process.pprof", pj.Root)
	}
	return nil
}

// startServe starts `mirror serve` with the given --blob-cache (a
// directory, or none).
func (b *bench) startServe(ctx context.Context, blobCache string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(b.mirrorBin, "--ipfs-api", b.k.api, "serve", "--listen", addr, "--blob-cache", blobCache)
	cmd.Env = append(os.Environ(), "IPFS_TELEMETRY=off")
	p, _, err := startProc(cmd, nil)
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, "http://"+addr+"/v2/", 30*time.Second, p.done); err != nil {
		p.Stop(time.Second)
		return nil, "", fmt.Errorf("mirror serve: %w\n%s", err, p.Log())
	}
	return p, addr, nil
}

func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// ---- case 5: eStargz conversion ------------------------------------------

func (b *bench) caseEstargz(ctx context.Context) error {
	l, err := newSynthLayer(synthSpec{Seed: 500, Size: b.sz.EstargzLayer, FileSize: 1 * mib, Text: true, Gzip: 6})
	if err != nil {
		return err
	}
	img, err := synthImage("estargz", l)
	if err != nil {
		return err
	}
	ref := b.ref("estargz") + ":v1"
	if err := pushImages(ctx, []string{ref}, []v1.Image{img}); err != nil {
		return err
	}
	blobURL := fmt.Sprintf("http://%s/v2/bench/estargz/blobs/%s", b.reg.host, l.digest)
	if err := b.warm(ctx, []string{blobURL}); err != nil {
		return err
	}
	raw := l.tarSize
	group := fmt.Sprintf("eStargz conversion of one compressible layer: %s tar, %s gzip -6 (MiB/s of tar bytes)", human(raw), human(l.size))
	gzR := &result{Case: 5, Group: group, Name: "curl blob | gzip -d | gzip -6 > /dev/null", Unit: "MiB/s", bytes: raw}
	lib9 := &result{Case: 5, Group: group, Name: "convert.ToEstargz, level 9 (mirror's default), in-process", Unit: "MiB/s", bytes: raw}
	lib6 := &result{Case: 5, Group: group, Name: "convert.ToEstargz, level 6, in-process", Unit: "MiB/s", bytes: raw}
	hasMode := false
	if st, err := b.exec(ctx, b.mirrorBin, "push", "--help"); err == nil && strings.Contains(st.Stdout, "--mode") && strings.Contains(st.Stdout, "estargz") {
		hasMode = true
	}
	pushE := &result{Case: 5, Group: group, Name: "mirror push --mode estargz (conversion + ipfs add)", Unit: "MiB/s", bytes: raw}
	pushP := &result{Case: 5, Group: group, Name: "mirror push (plain, no conversion)", Unit: "MiB/s", bytes: raw}
	for run := 0; run < b.o.runs; run++ {
		st, err := b.pipe(ctx, cmdOf(b.curlBin, "-sSf", blobURL), cmdOf(b.gzBin, "-d"), command{name: b.gzBin, args: []string{"-6"}, out: os.DevNull})
		if err != nil {
			return err
		}
		record(gzR, mibps(raw, st.Wall), st)
		for _, lv := range []struct {
			r     *result
			level int
		}{{lib9, 0}, {lib6, 6}} {
			st, err := b.estargzInProcess(ctx, ref, lv.level)
			if err != nil {
				return err
			}
			record(lv.r, mibps(raw, st.Wall), st)
		}
		if hasMode {
			for _, m := range []struct {
				r    *result
				args []string
			}{{pushE, []string{"push", "--mode", "estargz", ref}}, {pushP, []string{"push", ref}}} {
				if err := b.k.reset(ctx); err != nil {
					return err
				}
				st, err := b.mirror(ctx, m.args...)
				if err != nil {
					return err
				}
				record(m.r, mibps(raw, st.Wall), st)
			}
		}
	}
	if b.o.profile != "" {
		if err := b.profileEstargz(ctx, "case5-estargz-in-process.pprof", ref); err != nil {
			return err
		}
	}
	gzR.Note = "single-threaded gzip; the same blob bytes from the registry"
	lib9.Note = "remote.Image from the registry → convert.ToEstargz → every layer's Compressed() drained; CPU = this process (estargz compresses 4 parts in parallel)"
	b.add(gzR)
	b.add(lib9)
	b.add(lib6)
	b.compare(lib9, gzR.Name)
	b.compare(lib6, gzR.Name)
	if hasMode {
		pushP.Note = "the same image without conversion: the IPFS add part of the row below"
		pushE.Note = "converts the layer (level 9) and adds the result to IPFS"
		b.add(pushP)
		b.add(pushE)
		b.compare(pushE, gzR.Name)
	} else {
		b.add(&result{Case: 5, Group: group, Name: "mirror push --mode estargz", Note: "not measured: `mirror push --mode` is not in this build; the library rows above are the conversion itself"})
	}
	return nil
}

func (b *bench) estargzInProcess(ctx context.Context, ref string, level int) (stat, error) {
	var st stat
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return st, err
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	k0 := b.k.cpu()
	t0 := time.Now()
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return st, err
	}
	tmp, err := os.MkdirTemp(b.dir, "estargz-*")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(tmp)
	out, err := convert.ToEstargz(ctx, img, convert.EstargzOptions{CompressionLevel: level, TempDir: tmp})
	if err != nil {
		return st, err
	}
	defer convert.Close(out)
	layers, err := out.Layers()
	if err != nil {
		return st, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return st, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return st, err
		}
	}
	if _, err := out.RawManifest(); err != nil {
		return st, err
	}
	st.Wall = time.Since(t0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	st.CPU = time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	st.KuboCPU = b.k.cpu() - k0
	return st, nil
}

// ---- case 6: scaling --------------------------------------------------------

func (b *bench) caseScaling(ctx context.Context) error {
	s, _, err := b.throughputSet(ctx, false)
	if err != nil {
		return err
	}
	if err := b.warm(ctx, s.blobs); err != nil {
		return err
	}
	group := fmt.Sprintf("sync of %d images × %s random layer, by --jobs (%d CPUs)", len(s.refs), human(b.sz.TPLayer), b.machine.NProc)
	var base *result
	for _, j := range b.sz.ScaleJobs {
		r := &result{Case: 6, Group: group, Name: fmt.Sprintf("--jobs %d", j), Unit: "s"}
		var speeds []float64
		for run := 0; run < b.o.runs; run++ {
			if err := b.k.reset(ctx); err != nil {
				return err
			}
			st, _, err := b.sync(ctx, s.list, j, true, "")
			if err != nil {
				return err
			}
			record(r, st.Wall.Seconds(), st)
			speeds = append(speeds, mibps(s.bytes, st.Wall))
		}
		r.Note = fmt.Sprintf("%s MiB/s", fmtNum(median(speeds)))
		b.add(r)
		if base == nil {
			base = r
		} else {
			b.compare(r, base.Name)
		}
	}

	// Many images sharing one base layer.
	counts := b.sz.ShareCounts
	most := counts[len(counts)-1]
	baseL, err := newSynthLayer(synthSpec{Seed: 600, Size: b.sz.ShareBase, FileSize: 16 * mib})
	if err != nil {
		return err
	}
	sh, err := b.makeSet(ctx, "share", most, func(i int) ([]*synthLayer, error) {
		own, err := newSynthLayer(synthSpec{Seed: 700 + uint64(i), Size: b.sz.ShareOwn})
		if err != nil {
			return nil, err
		}
		return []*synthLayer{baseL, own}, nil
	})
	if err != nil {
		return err
	}
	if err := b.warm(ctx, sh.blobs); err != nil {
		return err
	}
	group = fmt.Sprintf("sync of N images sharing a %s base layer (+ %s own layer each), --jobs %d", human(b.sz.ShareBase), human(b.sz.ShareOwn), b.o.jobs)
	base = nil
	for _, c := range counts {
		list := filepath.Join(b.dir, fmt.Sprintf("share-%d.yaml", c))
		if err := writeList(list, sh.refs[:c], ""); err != nil {
			return err
		}
		r := &result{Case: 6, Group: group, Name: fmt.Sprintf("%d images", c), Unit: "s"}
		var rep *syncReport
		for run := 0; run < b.o.runs; run++ {
			if err := b.k.reset(ctx); err != nil {
				return err
			}
			st, rp, err := b.sync(ctx, list, b.o.jobs, true, "")
			if err != nil {
				return err
			}
			rep = rp
			record(r, st.Wall.Seconds(), st)
		}
		r.Note = fmt.Sprintf("%s ms per image; %d blobs (%s) added per run: the base once", fmtNum(median(r.Runs)*1000/float64(c)), rep.BlobsAdded, human(rep.BytesAdded))
		b.add(r)
		if base == nil {
			base = r
		} else {
			b.compare(r, base.Name)
		}
	}
	return nil
}
