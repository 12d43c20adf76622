package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	kuborpc "github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	mreg "github.com/ipfs-mirror/mirror/mirror/registry"
)

// casePushRSS is case push-rss (formerly case 2): the peak RSS of mirror
// push of an image with one random layer, from small to large: it must stay
// under 150 MiB and flat.
func (b *bench) casePushRSS(ctx context.Context) error {
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
		r := &result{Group: group, Name: human(size) + " layer", Unit: "MiB"}
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
		err := b.profiled(ctx, "push-rss-kubo-during-mirror-push.pprof", largestWall, func() error {
			_, err := b.mirror(ctx, "push", largest)
			return err
		})
		if err != nil {
			return err
		}
		return b.profileInProcess(ctx, "push-rss-mirror-push-in-process.pprof", largest)
	}
	return nil
}

// profileInProcess runs what `mirror push SOURCE` runs — oci.Push through
// a manifests.Writer into the kubo RPC store — inside this process under a
// CPU profile, so that mirror's own CPU can be read without a hook in the
// mirror binary. The profile is written to file in the --profile directory.
func (b *bench) profileInProcess(ctx context.Context, file, source string) error {
	if err := b.k.reset(ctx); err != nil {
		return err
	}
	store, err := kuborpc.New(b.k.api, kuborpc.Options{Pin: true})
	if err != nil {
		return err
	}
	defer store.Close()
	w := manifests.NewWriter(store, 4, nil)
	k0 := b.k.cpu()
	t0 := time.Now()
	path, stop, err := b.startProfile(file)
	if err != nil {
		return err
	}
	_, err = oci.Push(ctx, w, source, oci.PushOptions{Registry: mreg.Options{Insecure: true, UserAgent: "mirror-bench"}})
	stop()
	if err != nil {
		return fmt.Errorf("in-process push of %s: %w", source, err)
	}
	b.logf("profile: wrote %s (in-process oci.Push of %s in %s; kubo used %.1f CPU s meanwhile)", path, source, time.Since(t0).Round(time.Millisecond), b.k.cpu()-k0)
	return nil
}
