package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ipfs-mirror/mirror/convert"
)

// caseEstargz is case estargz (formerly case 5): eStargz conversion of one
// compressible layer, in-process and through mirror push --mode estargz,
// next to gzip re-compressing the same bytes.
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
	gzR := &result{Group: group, Name: "curl blob | gzip -d | gzip -6 > /dev/null", Unit: "MiB/s", bytes: raw}
	lib9 := &result{Group: group, Name: "convert.ToEstargz, level 9 (mirror's default), in-process", Unit: "MiB/s", bytes: raw}
	lib6 := &result{Group: group, Name: "convert.ToEstargz, level 6, in-process", Unit: "MiB/s", bytes: raw}
	hasMode := false
	if st, err := b.exec(ctx, b.mirrorBin, "push", "--help"); err == nil && strings.Contains(st.Stdout, "--mode") && strings.Contains(st.Stdout, "estargz") {
		hasMode = true
	}
	pushE := &result{Group: group, Name: "mirror push --mode estargz (conversion + ipfs add)", Unit: "MiB/s", bytes: raw}
	pushP := &result{Group: group, Name: "mirror push (plain, no conversion)", Unit: "MiB/s", bytes: raw}
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
		if err := b.profileEstargz(ctx, "estargz-in-process.pprof", ref); err != nil {
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
		b.add(&result{Group: group, Name: "mirror push --mode estargz", Note: "not measured: `mirror push --mode` is not in this build; the library rows above are the conversion itself"})
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

// profileEstargz runs the in-process eStargz conversion of this case once
// more under a CPU profile.
func (b *bench) profileEstargz(ctx context.Context, file, ref string) error {
	path, stop, err := b.startProfile(file)
	if err != nil {
		return err
	}
	st, err := b.estargzInProcess(ctx, ref, 0)
	stop()
	if err != nil {
		return err
	}
	b.logf("profile: wrote %s (in-process convert.ToEstargz in %s)", path, st.Wall.Round(time.Millisecond))
	return nil
}
