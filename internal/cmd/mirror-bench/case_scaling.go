package main

import (
	"context"
	"fmt"
	"path/filepath"
)

// caseScaling is case scaling (formerly case 6): the throughput case's
// random set synced by --jobs, and N images sharing one base layer.
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
		r := &result{Group: group, Name: fmt.Sprintf("--jobs %d", j), Unit: "s"}
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
		r := &result{Group: group, Name: fmt.Sprintf("%d images", c), Unit: "s"}
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
