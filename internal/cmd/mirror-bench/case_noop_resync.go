package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// caseNoopResync is case noop-resync (formerly case 3): mirror sync of many
// tags that have not changed since the last sync, with the registry and the
// IPFS API behind counting proxies: no blob or manifest GETs and no IPFS
// adds; once more with immutable_tags, which needs no registry request at
// all.
func (b *bench) caseNoopResync(ctx context.Context) error {
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
	first := &result{Group: group, Name: fmt.Sprintf("first sync (%d new), wall", n), Unit: "s", Runs: []float64{st.Wall.Seconds()},
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
		wall := &result{Group: g, Name: "mirror sync, wall", Unit: "s"}
		gets := &result{Group: g, Name: "manifest + blob GETs", Unit: "requests"}
		heads := &result{Group: g, Name: "manifest HEADs per tag", Unit: ""}
		all := &result{Group: g, Name: "registry requests, all", Unit: "requests"}
		adds := &result{Group: g, Name: "IPFS adds", Unit: "calls"}
		calls := &result{Group: g, Name: "IPFS API calls, all", Unit: "calls"}
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
