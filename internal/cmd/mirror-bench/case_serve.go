package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	kuborpc "github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

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

// caseServe is case serve (formerly case 4): skopeo pulls an image from
// mirror serve (cold, cached, restarted on its disk cache, without the disk
// cache) next to the same pull from docker-registry and to ipfs cat of its
// blobs.
func (b *bench) caseServe(ctx context.Context) error {
	if st, err := b.exec(ctx, b.mirrorBin, "serve", "--help"); err != nil || !strings.Contains(st.Stdout+st.Stderr, "--listen") {
		b.add(&result{Group: "mirror serve", Name: "not measured", Note: "`mirror serve --listen` is not in this build"})
		return nil
	}
	pi, err := b.pushedImage(ctx, "serve", 400, b.sz.ServeLayers, b.sz.ServeLayer)
	if err != nil {
		return err
	}
	ref, size, layers, pj, blobCIDs := pi.ref, pi.size, pi.layers, pi.push, pi.blobCIDs
	group := fmt.Sprintf("pull of a %s image (%d × %s random layers) with skopeo to dir:", human(size), len(layers), human(b.sz.ServeLayer))
	regR := &result{Group: group, Name: "docker-registry", Unit: "MiB/s", bytes: size}
	coldR := &result{Group: group, Name: "mirror serve, cold (fresh process)", Unit: "MiB/s", bytes: size}
	warmR := &result{Group: group, Name: "mirror serve, cached (second pull)", Unit: "MiB/s", bytes: size}
	restartR := &result{Group: group, Name: "mirror serve, restarted on its disk cache", Unit: "MiB/s", bytes: size}
	memR := &result{Group: group, Name: "mirror serve --blob-cache none, second pull", Unit: "MiB/s", bytes: size}
	catR := &result{Group: group, Name: "ipfs cat of each blob to a file", Unit: "MiB/s", bytes: size}
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
		return b.profileServeInProcess(ctx, "serve-in-process.pprof", pj.Root)
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

// profileServeInProcess serves the IPFS store with the serve package (what
// `mirror serve` runs) inside this process under a CPU profile, while skopeo
// pulls root from it to a dir: twice (cold, then cached).
func (b *bench) profileServeInProcess(ctx context.Context, file, root string) error {
	store, err := kuborpc.New(b.k.api, kuborpc.Options{Pin: true})
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := serve.New(store, serve.Options{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()
	path, stopProfile, err := b.startProfile(file)
	if err != nil {
		return err
	}
	defer stopProfile()
	t0 := time.Now()
	for i := 0; i < 2; i++ {
		dir := filepath.Join(b.dir, "profile-pull")
		_ = os.RemoveAll(dir)
		_, err := b.exec(ctx, b.skopeoBin, "copy", "-q", "--policy", b.policy, "--src-tls-verify=false",
			"docker://"+ln.Addr().String()+"/ipfs/"+root, "dir:"+dir)
		_ = os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("in-process serve: %w", err)
		}
	}
	b.logf("profile: wrote %s (in-process serve, two skopeo pulls in %s)", path, time.Since(t0).Round(time.Millisecond))
	return nil
}
