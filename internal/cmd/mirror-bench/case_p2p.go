package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Case p2p (issue 17): one origin kubo node holds an image `mirror push`
// wrote; N consumer nodes in the same private swarm on 127.0.0.1 (a swarm
// key, no bootstrap, no routing, no mDNS) fetch it at once and one after
// another, through `mirror pull` to an OCI layout and through
// `mirror --online serve` on each consumer's repo (its embedded node)
// answering skopeo. What it reports: the origin's bitswap DataSent over the
// image size, each consumer's bytes from the origin and from peers (bitswap
// ledgers), duplicate blocks, and the time until the last consumer has the
// image; every consumer's result must be byte-identical.

// p2pFlags are the case's own flags. They are registered on the program's
// flag set from this file (init) so that the case stays one file.
type p2pFlags struct {
	ns         string
	mib        int64
	layers     int
	via        string
	modes      string
	topologies string
	seeds      int
	config     []string
	pullArgs   string
	stall      time.Duration
}

var p2pOpt p2pFlags

func init() {
	flag.StringVar(&p2pOpt.ns, "p2p-n", "2,4,8", "case p2p: numbers of consumer nodes, comma-separated (--quick: 2)")
	flag.Int64Var(&p2pOpt.mib, "p2p-mib", 128, "case p2p: image size in MiB (--quick: 4)")
	flag.IntVar(&p2pOpt.layers, "p2p-layers", 4, "case p2p: layers the image is split into (--quick: 2)")
	flag.StringVar(&p2pOpt.via, "p2p-via", "pull,serve", "case p2p: how consumers fetch: pull (mirror pull to oci:), serve (skopeo from mirror --online serve on each consumer)")
	flag.StringVar(&p2pOpt.modes, "p2p-modes", "once,staggered", "case p2p: once (every consumer at the same moment), staggered (one after another)")
	flag.StringVar(&p2pOpt.topologies, "p2p-topology", "mesh,seeded,star", "case p2p: how the nodes connect, comma-separated, each measured in the same run: mesh (every consumer to every other and to the origin: a swarm as it forms by itself), seeded (consumers to each other, only the --p2p-seeds first to the origin), star (the seeds to the origin, every other consumer only to the seeds: the Kubernetes example's topology)")
	flag.IntVar(&p2pOpt.seeds, "p2p-seeds", 1, "case p2p: consumers connected to the origin in the seeded and star topologies")
	flag.Func("p2p-config", "case p2p: KEY=JSON set with `ipfs config --json` on every node before it starts (repeatable), e.g. Internal.Bitswap.ProviderSearchDelay='\"0s\"'", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=JSON, got %q", v)
		}
		p2pOpt.config = append(p2pOpt.config, v)
		return nil
	})
	flag.DurationVar(&p2pOpt.stall, "p2p-stall", 5*time.Minute, "case p2p: a run in which a consumer has not the image after this long is reported as stalled (and not counted)")
	flag.StringVar(&p2pOpt.pullArgs, "p2p-mirror-args", "", "case p2p: extra arguments (space-separated) for every `mirror pull` and `mirror serve` of consumers")
}

// p2pSwarmKey is the private network's key (a fixed test key: nodes of this
// run only).
const p2pSwarmKey = "/key/swarm/psk/1.0.0/\n/base16/\n5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e\n"

// p2pNode is a kubo daemon or a `mirror --online serve` (its embedded node
// serves kubo's RPC API) in the private swarm.
type p2pNode struct {
	*kubo
	id    string // peer ID
	addr  string // /ip4/127.0.0.1/tcp/PORT/p2p/ID
	serve string // serve's HOST:PORT, when the node is a mirror serve
}

// p2pRun is one measured fetch by N consumers.
type p2pRun struct {
	originSent int64
	fromOrigin []int64
	fromPeers  []int64
	dupBlks    int64
	dupBytes   int64
	last       time.Duration   // until the last consumer had the image
	each       []time.Duration // each consumer's own fetch
	// resumes counts, by consumer, the reads mirror asked again after a
	// wait without bytes (its "asking again" warnings): the stalls.
	resumes []int
	// said is, by consumer, mirror's lines about those resumes.
	said []string
}

func (b *bench) caseP2P(ctx context.Context) error {
	o := p2pOpt
	ns, err := parseInts(o.ns)
	if err != nil {
		return fmt.Errorf("--p2p-n: %w", err)
	}
	if b.o.quick {
		if !flagSet("p2p-n") {
			ns = []int{2}
		}
		if !flagSet("p2p-mib") {
			o.mib = 4
		}
		if !flagSet("p2p-layers") {
			o.layers = 2
		}
		// A bitswap stall (docs/daemonless.md) costs the smoke run one
		// short read timeout, not a minute.
		if !flagSet("p2p-mirror-args") {
			o.pullArgs = "--read-timeout 5s"
		}
		if !flagSet("p2p-stall") {
			o.stall = 2 * time.Minute
		}
	}
	if o.mib < 1 || o.layers < 1 || o.layers > 64 {
		return fmt.Errorf("--p2p-mib must be at least 1, --p2p-layers 1 to 64")
	}
	topos := strings.Split(o.topologies, ",")
	for _, t := range topos {
		if t != "mesh" && t != "seeded" && t != "star" {
			return fmt.Errorf("--p2p-topology: %q: want mesh, seeded or star", t)
		}
	}
	if o.seeds < 1 {
		return fmt.Errorf("--p2p-seeds must be at least 1")
	}
	vias, modes := strings.Split(o.via, ","), strings.Split(o.modes, ",")
	for _, v := range vias {
		if v != "pull" && v != "serve" {
			return fmt.Errorf("--p2p-via: %q: want pull or serve", v)
		}
	}
	for _, m := range modes {
		if m != "once" && m != "staggered" {
			return fmt.Errorf("--p2p-modes: %q: want once or staggered", m)
		}
	}
	root := filepath.Join(b.dir, "p2p")
	defer os.RemoveAll(root)

	// The image, on the bench's registry, then pushed into the origin.
	var layers []*synthLayer
	per := o.mib * mib / int64(o.layers)
	for i := 0; i < o.layers; i++ {
		l, err := newSynthLayer(synthSpec{Seed: 1700 + uint64(i), Size: per, FileSize: 16 * mib})
		if err != nil {
			return err
		}
		layers = append(layers, l)
	}
	img, err := synthImage("p2p", layers...)
	if err != nil {
		return err
	}
	ref := b.ref("p2p") + ":v1"
	if err := pushImages(ctx, []string{ref}, []v1.Image{img}); err != nil {
		return err
	}
	size, err := imageBytes(img)
	if err != nil {
		return err
	}
	origin, err := b.startP2PKubo(ctx, filepath.Join(root, "origin"), o.config)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	defer origin.Stop()
	st, err := b.pipe(ctx, cmdOf(b.mirrorBin, "--insecure", "--ipfs-api", origin.api, "--json", "push", ref))
	if err != nil {
		return fmt.Errorf("mirror push into the origin: %w", err)
	}
	var pj pushJSON
	if err := json.Unmarshal([]byte(st.Stdout), &pj); err != nil || pj.Root == "" {
		return fmt.Errorf("mirror --json push: cannot read the output (%v): %.200s", err, st.Stdout)
	}
	want := map[string]bool{}
	for _, bl := range pj.Blobs {
		if strings.Contains(bl.MediaType, "layer") || strings.Contains(bl.MediaType, "config") {
			want[strings.TrimPrefix(bl.Digest, "sha256:")] = true
		}
	}
	b.logf("  p2p: %s image (%d layers) pushed into the origin as ipfs://%s", human(size), o.layers, pj.Root)
	extra := strings.Fields(o.pullArgs)
	var settings string
	if len(o.config) > 0 {
		settings += "; kubo config " + strings.Join(o.config, " ")
	}
	if len(extra) > 0 {
		settings += "; mirror " + o.pullArgs
	}

	for _, via := range vias {
		what := "mirror pull to oci:"
		if via == "serve" {
			what = "skopeo copy from mirror --online serve on each consumer"
		}
		egressG := fmt.Sprintf("p2p: origin egress ÷ image size (%s image, %d layers; %s)", human(size), o.layers, what)
		timeG := fmt.Sprintf("p2p: seconds until the last consumer has the image (%s)", what)
		var rows []*result // egress rows, then time rows: one table each
		for _, n := range ns {
			for _, topo := range topos {
				dir := filepath.Join(root, fmt.Sprintf("%s-%d-%s", via, n, topo))
				up := func() ([]*p2pNode, error) {
					_ = os.RemoveAll(dir)
					var nodes []*p2pNode
					var err error
					if via == "serve" && topo == "star" {
						// As the Kubernetes example runs it: each mirror
						// serve keeps its own connections (--peer), the
						// seeds to the origin, every other node to the seeds.
						nodes, err = b.startStar(ctx, dir, n, origin, o.seeds, o.config, extra)
					} else {
						nodes, err = b.startConsumers(ctx, dir, n, via, o.config, extra)
						if err == nil {
							err = connectSwarm(ctx, origin, nodes, topo, o.seeds)
						}
					}
					if err != nil {
						stopAll(nodes)
						return nil, err
					}
					return nodes, nil
				}
				nodes, err := up()
				if err != nil {
					return err
				}
				for _, mode := range modes {
					label := fmt.Sprintf("%s: N=%d, %s, at once", via, n, topo)
					if mode == "staggered" {
						label = fmt.Sprintf("%s: N=%d, %s, one after another", via, n, topo)
					}
					er := &result{Group: egressG, Name: label, Unit: "×"}
					tr := &result{Group: timeG, Name: label, Unit: "s"}
					var last *p2pRun
					var resumed []string // reads resumed after a stall, by run
					var stalls []string
					for run := 0; run < b.o.runs; run++ {
						r, err := b.p2pFetch(ctx, origin, nodes, pj.Root, via, mode == "once", filepath.Join(root, "out"), want, o.stall, extra)
						var st *p2pStall
						if errors.As(err, &st) {
							// A stall is a result too: say so, and go on with
							// fresh consumers (the stuck wants die with them).
							b.logf("  p2p: %s, run %d: STALLED: %v (load %s)", label, run+1, st, loadAvg())
							stalls = append(stalls, st.Error())
							stopAll(nodes)
							if nodes, err = up(); err != nil {
								return err
							}
							continue
						}
						if err != nil {
							stopAll(nodes)
							return fmt.Errorf("%s, %s: %w", via, label, err)
						}
						b.logf("  p2p: %s, run %d: origin egress %.2f× image, last consumer done in %s (load %s)", label, run+1, float64(r.originSent)/float64(size), r.last.Round(time.Millisecond), loadAvg())
						er.Runs = append(er.Runs, float64(r.originSent)/float64(size))
						tr.Runs = append(tr.Runs, r.last.Seconds())
						last = r
						resumed = append(resumed, strconv.Itoa(r.resumed()))
					}
					var notes []string
					if last != nil {
						notes = append(notes, last.note(size), "reads resumed after a stall, by run: "+strings.Join(resumed, ", "))
					}
					if len(stalls) > 0 {
						notes = append(notes, fmt.Sprintf("%d of %d runs STALLED (not counted): %s", len(stalls), b.o.runs, strings.Join(stalls, "; ")))
						tr.Note = notes[len(notes)-1]
					}
					er.Note = strings.Join(append(notes, topoText(topo, o.seeds)), "; ") + settings
					rows = append(rows, er, tr)
				}
				stopAll(nodes)
			}
		}
		for _, g := range []string{egressG, timeG} {
			for _, r := range rows {
				if r.Group != g {
					continue
				}
				b.add(r)
				if r.Unit == "×" && strings.HasPrefix(r.Name, via+": N=8, ") && strings.HasSuffix(r.Name, ", at once") && !strings.Contains(r.Name, "mesh") {
					r.target("≤ 1.5× image", r.Median <= 1.5)
				}
			}
		}
	}
	return nil
}

func (r *p2pRun) note(size int64) string {
	var per []string
	for i := range r.fromOrigin {
		per = append(per, fmt.Sprintf("%s/%s", fmtMiB(r.fromOrigin[i]), fmtMiB(r.fromPeers[i])))
	}
	var each []string
	for _, d := range r.each {
		each = append(each, fmtNum(d.Seconds()))
	}
	resumes := r.resumed()
	slow := 0
	for i := range r.each {
		if r.each[i] > r.each[slow] {
			slow = i
		}
	}
	var said string
	if slow < len(r.said) && r.said[slow] != "" {
		said = fmt.Sprintf("; the slowest consumer (%d) said: %s", slow, lastLines(r.said[slow], 6))
	}
	return fmt.Sprintf("last run: origin sent %s MiB for a %s MiB image; MiB from origin/from peers by consumer: %s; duplicate blocks %d (%s MiB); each consumer's seconds: %s; reads resumed after a stall: %d (by consumer %v)",
		fmtMiB(r.originSent), fmtMiB(size), strings.Join(per, ", "), r.dupBlks, fmtMiB(r.dupBytes), strings.Join(each, ", "), resumes, r.resumes) + said
}

// resumed is how many reads the consumers resumed after a stall.
func (r *p2pRun) resumed() int {
	n := 0
	for _, k := range r.resumes {
		n += k
	}
	return n
}

func fmtMiB(n int64) string { return fmtNum(float64(n) / float64(mib)) }

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("%q: want numbers from 1 to 64", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// p2pEnv is a consumer's or the origin's environment: its repo, the
// private network forced (kubo refuses to start without the key).
func p2pEnv(repo string) []string {
	env := slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, "IPFS_API=") || strings.HasPrefix(e, "IPFS_PATH=")
	})
	level := "error"
	if v := os.Getenv("MIRROR_BENCH_GOLOG"); v != "" {
		level = v // e.g. error,bitswap/bsnet=info: why a stalled node stopped asking
	}
	return append(env, "IPFS_PATH="+repo, "IPFS_TELEMETRY=off", "GOLOG_LOG_LEVEL="+level, "LIBP2P_FORCE_PNET=1")
}

// initP2PRepo makes a repo as the rig's kubo has it (loopback only, no
// bootstrap, no routing, no mDNS), with the swarm key and config.
func (b *bench) initP2PRepo(ctx context.Context, repo string, config []string) (*kubo, error) {
	if err := os.MkdirAll(filepath.Dir(repo), 0o755); err != nil {
		return nil, err
	}
	k := &kubo{bin: b.ipfsBin, repo: repo}
	steps := [][]string{
		{"init", "--profile=test", "--empty-repo"},
		{"config", "--json", "Bootstrap", "[]"},
		{"config", "--json", "Routing.Type", `"none"`},
		{"config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`},
		{"config", "--json", "Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
		{"config", "--json", "Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
		{"config", "--json", "Discovery.MDNS.Enabled", "false"},
		{"config", "--json", "AutoConf.Enabled", "false"},
	}
	for _, c := range config {
		key, val, _ := strings.Cut(c, "=")
		steps = append(steps, []string{"config", "--json", key, val})
	}
	for _, s := range steps {
		if _, err := k.cli(ctx, nil, s...); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "swarm.key"), []byte(p2pSwarmKey), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// startP2PKubo starts an online kubo daemon in the private swarm.
func (b *bench) startP2PKubo(ctx context.Context, repo string, config []string) (*p2pNode, error) {
	k, err := b.initP2PRepo(ctx, repo, config)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.ipfsBin, "daemon", "--migrate=false")
	cmd.Env = p2pEnv(repo)
	p, ready, err := startProc(cmd, func(l string) bool { return strings.Contains(l, "Daemon is ready") })
	if err != nil {
		return nil, fmt.Errorf("starting ipfs daemon: %w", err)
	}
	k.p = p
	select {
	case <-ready:
	case <-p.done:
		return nil, fmt.Errorf("ipfs daemon exited:\n%s", p.Log())
	case <-time.After(90 * time.Second):
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("ipfs daemon not ready in 90s:\n%s", p.Log())
	case <-ctx.Done():
		p.Stop(5 * time.Second)
		return nil, ctx.Err()
	}
	return p2pIdentify(ctx, k)
}

// startP2PServe starts `mirror --online serve` on repo: its embedded node
// joins the private swarm and serves kubo's RPC API (written to
// $IPFS_PATH/api).
func (b *bench) startP2PServe(ctx context.Context, repo string, global, extra []string) (*p2pNode, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append(append(append([]string{"--online"}, global...), "serve", "--listen", addr, "--blob-cache", "none"), extra...)
	cmd := exec.Command(b.mirrorBin, args...)
	cmd.Env = p2pEnv(repo)
	p, _, err := startProc(cmd, nil)
	if err != nil {
		return nil, err
	}
	k := &kubo{bin: b.ipfsBin, repo: repo, p: p}
	if err := waitHTTP(ctx, "http://"+addr+"/v2/", 90*time.Second, p.done); err != nil {
		p.Stop(time.Second)
		return nil, fmt.Errorf("mirror serve: %w\n%s", err, p.Log())
	}
	n, err := p2pIdentify(ctx, k)
	if err != nil {
		p.Stop(time.Second)
		return nil, fmt.Errorf("mirror serve's RPC API: %w\n%s", err, p.Log())
	}
	n.serve = addr
	return n, nil
}

// p2pIdentify reads the node's API address from its repo and asks it its
// peer ID and loopback swarm address.
func p2pIdentify(ctx context.Context, k *kubo) (*p2pNode, error) {
	raw, err := os.ReadFile(filepath.Join(k.repo, "api"))
	if err != nil {
		return nil, err
	}
	k.api = strings.TrimSpace(string(raw))
	hp := strings.Replace(strings.TrimPrefix(k.api, "/ip4/"), "/tcp/", ":", 1)
	k.apiURL = "http://" + hp
	var id struct {
		ID        string
		Addresses []string
	}
	if err := rpc(ctx, k.apiURL, "id", nil, &id); err != nil {
		return nil, err
	}
	n := &p2pNode{kubo: k, id: id.ID}
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.Contains(a, "/p2p/") {
			n.addr = a
			break
		}
	}
	if n.addr == "" {
		return nil, fmt.Errorf("no loopback TCP address in %v", id.Addresses)
	}
	return n, nil
}

// startConsumers starts n consumer nodes: kubo daemons (via pull) or
// mirror serves (via serve), each on a fresh repo.
func (b *bench) startConsumers(ctx context.Context, dir string, n int, via string, config, extra []string) ([]*p2pNode, error) {
	nodes := make([]*p2pNode, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			repo := filepath.Join(dir, fmt.Sprintf("c%d", i))
			if via == "pull" {
				nodes[i], errs[i] = b.startP2PKubo(ctx, repo, config)
				return
			}
			if _, err := b.initP2PRepo(ctx, repo, config); err != nil {
				errs[i] = err
				return
			}
			nodes[i], errs[i] = b.startP2PServe(ctx, repo, nil, extra)
		}()
	}
	wg.Wait()
	nodes = slices.DeleteFunc(nodes, func(n *p2pNode) bool { return n == nil })
	if err := errors.Join(errs...); err != nil {
		return nodes, fmt.Errorf("starting consumers: %w", err)
	}
	return nodes, nil
}

// startStar starts n mirror serves on fresh repos in the star topology
// by their own flags: the seeds with --peer ORIGIN, then every other with
// --peer for each seed; no swarm connect. It returns when every node is
// connected to the peers it names.
func (b *bench) startStar(ctx context.Context, dir string, n int, origin *p2pNode, seeds int, config, extra []string) ([]*p2pNode, error) {
	seeds = min(seeds, n)
	start := func(i int, peers []string) (*p2pNode, error) {
		repo := filepath.Join(dir, fmt.Sprintf("c%d", i))
		if _, err := b.initP2PRepo(ctx, repo, config); err != nil {
			return nil, err
		}
		var flags []string
		for _, p := range peers {
			flags = append(flags, "--peer", p)
		}
		return b.startP2PServe(ctx, repo, flags, extra)
	}
	var nodes []*p2pNode
	fail := func(err error) ([]*p2pNode, error) {
		stopAll(nodes)
		return nil, fmt.Errorf("starting the star: %w", err)
	}
	var seedAddrs []string
	for i := 0; i < seeds; i++ {
		nd, err := start(i, []string{origin.addr})
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, nd)
		seedAddrs = append(seedAddrs, nd.addr)
	}
	for i := seeds; i < n; i++ {
		nd, err := start(i, seedAddrs)
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, nd)
	}
	// Peering dials in the background: wait until each node sees the
	// peers it was given.
	for i, nd := range nodes {
		want := []string{origin.id}
		if i >= seeds {
			want = nil
			for _, s := range nodes[:seeds] {
				want = append(want, s.id)
			}
		}
		if err := waitPeers(ctx, nd, want, 60*time.Second); err != nil {
			return fail(fmt.Errorf("consumer %d: %w", i, err))
		}
	}
	return nodes, nil
}

type swarmPeer struct{ Peer string }

// waitPeers waits until n is connected to every peer of ids.
func waitPeers(ctx context.Context, n *p2pNode, ids []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var sw struct{ Peers []swarmPeer }
		if err := rpc(ctx, n.apiURL, "swarm/peers", nil, &sw); err != nil {
			return err
		}
		missing := 0
		for _, id := range ids {
			if !slices.ContainsFunc(sw.Peers, func(p swarmPeer) bool { return p.Peer == id }) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not connected to %d of the %d peers its --peer flags name after %s", missing, len(ids), limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func stopAll(nodes []*p2pNode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
}

func topoText(topo string, seeds int) string {
	switch topo {
	case "seeded":
		return fmt.Sprintf("consumers connected to each other, %d of them (the seeds) to the origin", seeds)
	case "star":
		return fmt.Sprintf("%d seed consumer(s) connected to the origin, every other consumer only to the seeds", seeds)
	}
	return "every consumer connected to every other and to the origin"
}

// connectSwarm connects the nodes as topo says (see --p2p-topology): in
// mesh every consumer to every other and to the origin; in seeded every
// consumer to every other and the first seeds to the origin; in star the
// first seeds to the origin and every other consumer to the seeds only.
func connectSwarm(ctx context.Context, origin *p2pNode, nodes []*p2pNode, topo string, seeds int) error {
	for i, n := range nodes {
		seed := i < seeds
		if topo == "mesh" || seed {
			if err := rpc(ctx, n.apiURL, "swarm/connect", url.Values{"arg": {origin.addr}}, nil); err != nil {
				return fmt.Errorf("consumer %d to the origin: %w", i, err)
			}
		}
		for j, m := range nodes[:i] {
			if topo == "star" && !seed && j >= seeds {
				continue
			}
			if err := rpc(ctx, n.apiURL, "swarm/connect", url.Values{"arg": {m.addr}}, nil); err != nil {
				return fmt.Errorf("consumer %d to a peer: %w", i, err)
			}
		}
	}
	return nil
}

// bitswapStats is the part of `ipfs stats bitswap` we read.
type bitswapStats struct {
	DataSent        int64
	DataReceived    int64
	DupBlksReceived int64
	DupDataReceived int64
}

func (n *p2pNode) stats(ctx context.Context) (bitswapStats, error) {
	var s bitswapStats
	err := rpc(ctx, n.apiURL, "stats/bitswap", nil, &s)
	return s, err
}

// recvFrom is what `ipfs bitswap ledger PEER` says the node received from
// peer (bytes).
func (n *p2pNode) recvFrom(ctx context.Context, peer string) (int64, error) {
	var l struct{ Recv int64 }
	err := rpc(ctx, n.apiURL, "bitswap/ledger", url.Values{"arg": {peer}}, &l)
	return l.Recv, err
}

type p2pSnap struct {
	originSent int64
	cons       []bitswapStats
	fromOrigin []int64
}

func p2pSnapshot(ctx context.Context, origin *p2pNode, nodes []*p2pNode) (p2pSnap, error) {
	s := p2pSnap{cons: make([]bitswapStats, len(nodes)), fromOrigin: make([]int64, len(nodes))}
	ost, err := origin.stats(ctx)
	if err != nil {
		return s, fmt.Errorf("origin: %w", err)
	}
	s.originSent = ost.DataSent
	for i, n := range nodes {
		if s.cons[i], err = n.stats(ctx); err != nil {
			return s, fmt.Errorf("consumer %d: %w", i, err)
		}
		if s.fromOrigin[i], err = n.recvFrom(ctx, origin.id); err != nil {
			return s, fmt.Errorf("consumer %d: %w", i, err)
		}
	}
	return s, nil
}

// p2pFetch empties the consumers' blockstores, then has every consumer
// fetch root (at once or one after another), checks every result and
// returns the counters' deltas.
func (b *bench) p2pFetch(ctx context.Context, origin *p2pNode, nodes []*p2pNode, root, via string, once bool, out string, want map[string]bool, stall time.Duration, extra []string) (*p2pRun, error) {
	for i, n := range nodes {
		if err := n.reset(ctx); err != nil {
			return nil, fmt.Errorf("consumer %d: %w", i, err)
		}
	}
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	before, err := p2pSnapshot(ctx, origin, nodes)
	if err != nil {
		return nil, err
	}
	r := &p2pRun{each: make([]time.Duration, len(nodes)), resumes: make([]int, len(nodes)), said: make([]string, len(nodes))}
	dirs := make([]string, len(nodes))
	var stuckMu sync.Mutex
	var stuck []string
	fetch := func(i int) error {
		dirs[i] = filepath.Join(out, fmt.Sprintf("c%d", i))
		// Each consumer's own deadline: a fetch past it is a stall. What
		// its node was doing is read before the fetch is stopped (stopping
		// it cancels the node's wants).
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		diag := make(chan string, 1)
		timer := time.AfterFunc(stall, func() {
			diag <- p2pDiag(ctx, nodes[i])
			cancel()
		})
		defer timer.Stop()
		t0 := time.Now()
		var err error
		if via == "pull" {
			args := []string{"--ipfs-api", nodes[i].api, "--timeout", "30m", "pull"}
			args = append(append(args, extra...), "ipfs://"+root, "oci:"+dirs[i])
			var st stat
			st, err = b.pipe(fctx, cmdOf(b.mirrorBin, args...))
			r.resumes[i] = strings.Count(st.Stderr, askedAgain)
			r.said[i] = grepLines(st.Stderr, askedAgain)
		} else {
			log0 := len(nodes[i].p.Log())
			_, err = b.pipe(fctx, cmdOf(b.skopeoBin, "copy", "-q", "--policy", b.policy, "--src-tls-verify=false",
				"docker://"+nodes[i].serve+"/ipfs/"+root, "dir:"+dirs[i]))
			if l := nodes[i].p.Log(); len(l) >= log0 {
				r.resumes[i] = strings.Count(l[log0:], askedAgain)
				r.said[i] = grepLines(l[log0:], askedAgain)
			}
		}
		r.each[i] = time.Since(t0)
		if err != nil && fctx.Err() != nil && ctx.Err() == nil {
			// Still fetching when time ran out: what it was waiting for.
			d := <-diag
			stuckMu.Lock()
			stuck = append(stuck, fmt.Sprintf("consumer %d (%s written, %s)", i, human(writtenBytes(dirs[i])), d))
			stuckMu.Unlock()
			return nil
		}
		if err != nil && via == "serve" {
			return fmt.Errorf("consumer %d: %w; mirror serve said: %s", i, err, lastLines(grepLines(nodes[i].p.Log(), "WARN", "ERROR", "retry", "timeout", "again"), 12))
		}
		if err != nil {
			return fmt.Errorf("consumer %d: %w", i, err)
		}
		return nil
	}
	t0 := time.Now()
	if once {
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = fetch(i) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	} else {
		for i := range nodes {
			if err := fetch(i); err != nil {
				return nil, err
			}
			if len(stuck) > 0 {
				break
			}
		}
	}
	r.last = time.Since(t0)
	if len(stuck) > 0 {
		slices.Sort(stuck)
		return nil, &p2pStall{after: stall, stuck: stuck}
	}
	after, err := p2pSnapshot(ctx, origin, nodes)
	if err != nil {
		return nil, err
	}
	r.originSent = after.originSent - before.originSent
	for i := range nodes {
		got := after.cons[i].DataReceived - before.cons[i].DataReceived
		from := after.fromOrigin[i] - before.fromOrigin[i]
		r.fromOrigin = append(r.fromOrigin, from)
		r.fromPeers = append(r.fromPeers, got-from)
		r.dupBlks += after.cons[i].DupBlksReceived - before.cons[i].DupBlksReceived
		r.dupBytes += after.cons[i].DupDataReceived - before.cons[i].DupDataReceived
	}
	// Every consumer has every blob, byte for byte.
	var first []string
	for i, d := range dirs {
		got, err := verifiedBlobs(d)
		if err != nil {
			return nil, fmt.Errorf("consumer %d: %w", i, err)
		}
		for w := range want {
			if !slices.Contains(got, w) {
				return nil, fmt.Errorf("consumer %d: blob sha256:%s missing from its result", i, w)
			}
		}
		if i == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			return nil, fmt.Errorf("consumer %d's blobs %v differ from consumer 0's %v", i, got, first)
		}
	}
	return r, nil
}

// askedAgain is in each warning mirror pull and serve write when a read
// had no bytes within the read timeout and is asked again.
const askedAgain = "asking again"

// p2pDiag says what a stalled node is waiting for: its wantlist, the
// peers it is connected to, and the last lines of its log (with
// MIRROR_BENCH_GOLOG=error,bitswap/client/msgq=info they show the want-block
// timeouts that precede a stall).
func p2pDiag(ctx context.Context, n *p2pNode) string {
	var st struct{ Wantlist []any }
	var sw struct{ Peers []any }
	_ = rpc(ctx, n.apiURL, "bitswap/stat", nil, &st)
	_ = rpc(ctx, n.apiURL, "swarm/peers", nil, &sw)
	d := fmt.Sprintf("%d blocks in its wantlist, connected to %d peers", len(st.Wantlist), len(sw.Peers))
	if n.p != nil {
		if l := lastLines(n.p.Log(), 3); l != "" {
			d += "; its log: " + l
		}
	}
	return d
}

// writtenBytes is what a fetch to dir wrote so far: dir, and the staging
// directories mirror pull keeps beside it (.NAME.tmp-*).
func writtenBytes(dir string) int64 {
	n := dirBytes(dir)
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*"))
	for _, t := range tmps {
		n += dirBytes(t)
	}
	return n
}

// p2pStall is a run in which some consumers did not get the image in time.
type p2pStall struct {
	after time.Duration
	stuck []string
}

func (e *p2pStall) Error() string {
	return fmt.Sprintf("after %s still fetching: %s", e.after, strings.Join(e.stuck, ", "))
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// verifiedBlobs hashes every file of dir named by a sha256 (an OCI
// layout's blobs/sha256/HEX, a dir: transport's HEX) and returns the
// sorted digests; a file whose bytes do not match its name is an error.
func verifiedBlobs(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !hex64.MatchString(d.Name()) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Name() {
			return fmt.Errorf("%s: content is sha256:%s", p, got)
		}
		out = append(out, d.Name())
		return nil
	})
	slices.Sort(out)
	return out, err
}

// rpc calls kubo's RPC API (POST /api/v0/PATH) and decodes the JSON answer
// into out (nil: discarded).
func rpc(ctx context.Context, apiURL, path string, args url.Values, out any) error {
	u := apiURL + "/api/v0/" + path
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ipfs %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("ipfs %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ipfs %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("ipfs %s: %w", path, err)
	}
	return nil
}

// grepLines keeps the lines of s that contain one of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
