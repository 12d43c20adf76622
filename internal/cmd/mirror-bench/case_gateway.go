package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// caseGateway is case gateway (issue 16): `mirror pull --gateway` of an
// image through kubo's own HTTP gateway, by a mirror process with no IPFS
// node, next to `ipfs cat` of the same blobs from the same node (one
// after the other, as pull reads them, and all at once) and to `mirror
// pull --ipfs-api` of the same node.
func (b *bench) caseGateway(ctx context.Context) error {
	if st, err := b.exec(ctx, b.mirrorBin, "pull", "--help"); err != nil || !strings.Contains(st.Stdout+st.Stderr, "--gateway") {
		b.add(&result{Group: "mirror pull --gateway", Name: "not measured", Note: "`mirror pull --gateway` is not in this build"})
		return nil
	}
	nLayers, layerSize := 4, 128*mib
	if b.o.quick {
		nLayers, layerSize = 2, 2*mib
	}
	pi, err := b.pushedImage(ctx, "gateway", 1600, nLayers, layerSize)
	if err != nil {
		return err
	}
	size, pj, blobCIDs := pi.size, pi.push, pi.blobCIDs
	gwb, err := os.ReadFile(filepath.Join(b.k.repo, "gateway"))
	if err != nil {
		return fmt.Errorf("kubo's gateway address: %w", err)
	}
	gw := strings.TrimSpace(string(gwb))
	// The consumer has no node: no API, an IPFS_PATH with nothing in it.
	noNode := []string{"IPFS_API=", "IPFS_PATH=" + filepath.Join(b.dir, "gateway-no-repo")}

	group := fmt.Sprintf("pull of a %s image (%d × %s random layers) to oci:", human(size), nLayers, human(layerSize))
	gwR := &result{Group: group, Name: "mirror pull --gateway (kubo's gateway, no node in mirror)", Unit: "MiB/s", bytes: size}
	apiR := &result{Group: group, Name: "mirror pull --ipfs-api (the same node's RPC API)", Unit: "MiB/s", bytes: size}
	catR := &result{Group: group, Name: "ipfs cat of each blob to a file, one after the other", Unit: "MiB/s", bytes: size}
	catParR := &result{Group: group, Name: "ipfs cat of each blob to a file, all at once", Unit: "MiB/s", bytes: size}
	rssR := &result{Group: "peak RSS of `mirror pull --gateway`, " + human(size) + " image", Name: "mirror pull --gateway", Unit: "MiB"}
	outDir := filepath.Join(b.dir, "gateway-out")
	pull := func(args ...string) (stat, error) {
		dir := filepath.Join(b.dir, "gateway-pull")
		_ = os.RemoveAll(dir)
		defer os.RemoveAll(dir)
		syscall.Sync()
		c := cmdOf(b.mirrorBin, append(args, "ipfs://"+pj.Root, "oci:"+dir)...)
		c.env = noNode
		st, err := b.pipe(ctx, c)
		if err != nil {
			return st, err
		}
		if got := dirBytes(dir); got < size-4096 {
			return st, fmt.Errorf("mirror %s: %d bytes in the layout, want at least %d", strings.Join(args, " "), got, size-4096)
		}
		return st, nil
	}
	cat := func(jobs int) (stat, error) {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return stat{}, err
		}
		defer os.RemoveAll(outDir)
		syscall.Sync()
		k0 := b.k.cpu()
		st, err := parallel(len(blobCIDs), jobs, func(i int) (stat, error) {
			c := cmdOf(b.k.bin, "cat", blobCIDs[i])
			c.out = filepath.Join(outDir, blobCIDs[i])
			return b.pipe(ctx, c)
		})
		st.KuboCPU = b.k.cpu() - k0
		return st, err
	}
	// One unmeasured pull first: the node's blocks into the page cache.
	if _, err := pull("pull", "--gateway", gw); err != nil {
		return err
	}
	for run := 0; run < b.o.runs; run++ {
		st, err := cat(1)
		if err != nil {
			return fmt.Errorf("ipfs cat: %w", err)
		}
		record(catR, mibps(size, st.Wall), st)
		if st, err = pull("pull", "--gateway", gw); err != nil {
			return err
		}
		record(gwR, mibps(size, st.Wall), st)
		record(rssR, float64(st.MaxRSS)/float64(mib), st)
		if st, err = cat(len(blobCIDs)); err != nil {
			return fmt.Errorf("ipfs cat: %w", err)
		}
		record(catParR, mibps(size, st.Wall), st)
		if st, err = pull("--ipfs-api", b.k.api, "pull"); err != nil {
			return err
		}
		record(apiR, mibps(size, st.Wall), st)
		b.logf("  run %d done (load %s)", run+1, loadAvg())
	}
	catR.Note = "`ipfs cat CID > file` for every layer and the config, one after the other (as pull reads them); CPU = ipfs + kubo"
	catParR.Note = "the same, every blob at once"
	gwR.Note = fmt.Sprintf("`mirror pull --gateway %s ipfs://ROOT oci:DIR` with IPFS_API empty and an empty IPFS_PATH (no node in mirror); every block checked against its CID, every blob against its digest; one unmeasured pull first", "http://127.0.0.1:PORT")
	apiR.Note = "`mirror --ipfs-api ADDR pull ipfs://ROOT oci:DIR`: the same pull from the node's RPC API"
	rssR.Note = "ru_maxrss of the mirror process"
	b.add(catR)
	b.add(catParR)
	b.add(gwR)
	b.add(apiR)
	b.add(rssR)
	b.compare(gwR, catR.Name)
	gwR.target("≥ 0.8× ipfs cat, one after the other", gwR.Ratio >= 0.8)
	b.compare(apiR, catR.Name)
	b.compare(catParR, catR.Name)
	rssR.target("< 150 MiB", rssR.Median < 150)
	b.logf("  gateway pull done in %s per run (median)", time.Duration(float64(size)/gwR.Median/float64(mib)*float64(time.Second)).Round(time.Millisecond))
	return nil
}
