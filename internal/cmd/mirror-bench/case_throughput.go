package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

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

// caseThroughput is case throughput (formerly case 1): mirror sync of a set
// of images, in MiB/s, next to the limit (the same blob bytes through curl |
// ipfs add) and to what a user scripts today (skopeo copy to an OCI layout,
// then ipfs add -r); once with random tar layers, once with compressible
// tar+gzip ones.
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
		mirrorR := &result{Group: group, Name: fmt.Sprintf("mirror sync --jobs %d", jobs), Unit: "MiB/s", bytes: s.bytes}
		addR := &result{Group: group, Name: fmt.Sprintf("limit: curl blob | ipfs add, %d at once", jobs), Unit: "MiB/s", bytes: s.bytes}
		skoR := &result{Group: group, Name: "skopeo copy → oci:DIR, then ipfs add -r DIR", Unit: "MiB/s", bytes: s.bytes}
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
			err := b.profiled(ctx, "throughput-kubo-during-mirror-sync.pprof", expect, func() error {
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
