// Command mirror-bench measures mirror next to the alternatives, in one run
// that anyone can repeat: it starts its own docker-registry and kubo daemon on
// 127.0.0.1, writes synthetic images of chosen sizes to the registry, builds
// the mirror binary and drives it as a user would, runs every case --runs
// times and prints the medians with their ratios to baselines measured in
// the same run (a Markdown table, or --json).
//
//	go run ./internal/cmd/mirror-bench               # the full run (minutes; several GiB of disk)
//	go run ./internal/cmd/mirror-bench --quick       # a seconds-long smoke run, tiny sizes
//	go run ./internal/cmd/mirror-bench --case serve  # one case, by name (the names: --help)
//
// See docs/benchmarks.md for what each number means.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchCase is one named case: a method of bench in its own file,
// case_<name>.go (name's dashes as underscores), listed once in cases.
type benchCase struct {
	// Name is what --case and the report call the case.
	Name string
	// Number is the number the case was known by before cases had names:
	// --case accepts it as an alias. New cases have none (0).
	Number int
	// About is one line for --help.
	About string
	Run   func(b *bench, ctx context.Context) error
}

// cases are the cases, in the order a run measures them. Adding a case is
// adding its file and one line here. (A file name must not end in _GOOS or
// _GOARCH, which would make it a build constraint: case_js.go, case_arm.go.)
var cases = []benchCase{
	{"throughput", 1, "sync throughput against curl | ipfs add and a skopeo + ipfs add -r pipeline", (*bench).caseThroughput},
	{"push-rss", 2, "peak RSS of mirror push, layers from small to large", (*bench).casePushRSS},
	{"noop-resync", 3, "no-op resync of many tags: registry and IPFS requests", (*bench).caseNoopResync},
	{"serve", 4, "skopeo pulls from mirror serve against docker-registry", (*bench).caseServe},
	{"estargz", 5, "eStargz conversion against gzip", (*bench).caseEstargz},
	{"scaling", 6, "sync by --jobs, and images sharing a base layer", (*bench).caseScaling},
	{"gateway", 0, "mirror pull --gateway (no node) against ipfs cat of the same blobs", (*bench).caseGateway},
	{"p2p", 0, "origin egress when N nodes of a private swarm fetch one image at once and one after another (issue 17)", (*bench).caseP2P},
}

// parseCases reads --case: names or old numbers, comma-separated ("all":
// every case). The result is a set of names.
func parseCases(list []benchCase, arg string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, f := range strings.Split(arg, ",") {
		f = strings.TrimSpace(f)
		if f == "all" {
			for _, c := range list {
				set[c.Name] = true
			}
			continue
		}
		n, _ := strconv.Atoi(f)
		i := slices.IndexFunc(list, func(c benchCase) bool { return c.Name == f || (n > 0 && c.Number == n) })
		if i < 0 {
			return nil, fmt.Errorf("unknown case %q (cases: %s)", f, caseNames(list))
		}
		set[list[i].Name] = true
	}
	return set, nil
}

func caseNames(list []benchCase) string {
	names := make([]string, len(list))
	for i, c := range list {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// sizes are the scenario's dimensions. (A case may instead keep sizes of
// its own in its file, chosen by bench.o.quick.)
type sizes struct {
	TPImages     int   // throughput: images synced
	TPLayer      int64 // throughput: random payload per image
	TPTextLayer  int64 // throughput: compressible payload per image (gzip)
	RSSLayers    []int64
	NoopTags     int
	ServeLayers  int
	ServeLayer   int64
	EstargzLayer int64
	ScaleJobs    []int
	ShareBase    int64
	ShareOwn     int64
	ShareCounts  []int
}

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

var fullSizes = sizes{
	TPImages: 4, TPLayer: 128 * mib, TPTextLayer: 128 * mib,
	RSSLayers:   []int64{64 * mib, 512 * mib, 1 * gib, 2 * gib},
	NoopTags:    200,
	ServeLayers: 4, ServeLayer: 128 * mib,
	EstargzLayer: 128 * mib,
	ScaleJobs:    []int{1, 2, 4, 8},
	ShareBase:    64 * mib, ShareOwn: 1 * mib, ShareCounts: []int{10, 100},
}

var quickSizes = sizes{
	TPImages: 2, TPLayer: 2 * mib, TPTextLayer: 2 * mib,
	RSSLayers:   []int64{1 * mib, 2 * mib, 4 * mib, 8 * mib},
	NoopTags:    10,
	ServeLayers: 2, ServeLayer: 2 * mib,
	EstargzLayer: 2 * mib,
	ScaleJobs:    []int{1, 4},
	ShareBase:    1 * mib, ShareOwn: 16 * kib, ShareCounts: []int{2, 5},
}

type options struct {
	runs      int
	quick     bool
	json      bool
	cases     map[string]bool // names of the cases to run
	mirrorBin string
	workDir   string
	keep      bool
	jobs      int
	profile   string
	markdown  string
}

func main() {
	os.Exit(mainErr())
}

func mainErr() int {
	var o options
	caseArg := "all"
	caseFlag := func(v string) error { caseArg = v; return nil }
	flag.IntVar(&o.runs, "runs", 3, "times each case is measured (the median is reported)")
	flag.BoolVar(&o.quick, "quick", false, "tiny sizes and one run: a smoke test of the program itself (seconds)")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON on stdout (instead of the Markdown table)")
	var caseHelp strings.Builder
	caseHelp.WriteString("cases to run, comma-separated names (or their old numbers), default all:")
	for _, c := range cases {
		num := ""
		if c.Number != 0 {
			num = fmt.Sprintf(" (%d)", c.Number)
		}
		fmt.Fprintf(&caseHelp, "\n  %s%s: %s", c.Name, num, c.About)
	}
	flag.Func("case", caseHelp.String(), caseFlag)
	flag.Func("cases", "the same as --case", caseFlag)
	flag.StringVar(&o.mirrorBin, "mirror-bin", "", "use this mirror binary instead of building ./cmd/mirror")
	flag.StringVar(&o.workDir, "dir", "", "work directory (default: a new one under $TMPDIR, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.IntVar(&o.jobs, "jobs", 4, "--jobs of mirror sync in the throughput, noop-resync and scaling cases (and the concurrency of the ipfs add baseline)")
	flag.StringVar(&o.markdown, "markdown", "", "also write the Markdown table to this file")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles to this directory: kubo's (from its /debug/pprof) during the throughput and push-rss cases' mirror runs, in-process ones of push, serve and the eStargz conversion")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mirror-bench [--quick] [--runs N] [--json] [--case NAME,...]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		return 2
	}
	var err error
	if o.cases, err = parseCases(cases, caseArg); err != nil {
		fmt.Fprintln(os.Stderr, "mirror-bench: --case:", err)
		return 2
	}
	if o.quick && !flagSet("runs") {
		o.runs = 1
	}
	if o.runs < 1 || o.jobs < 1 {
		fmt.Fprintln(os.Stderr, "mirror-bench: --runs and --jobs must be at least 1")
		return 2
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "mirror-bench: --profile:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, sz: fullSizes, log: os.Stderr}
	if o.quick {
		b.sz = quickSizes
	}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mirror-bench:", err)
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	return 0
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// bench is one benchmark run.
type bench struct {
	o   options
	sz  sizes
	log io.Writer

	dir                       string
	mirrorBin, ipfsBin        string
	skopeoBin, curlBin, gzBin string
	k                         *kubo
	reg                       *registry
	policy                    string
	machine                   machine
	results                   []*result
	cur                       string // the name of the case running
	sets                      map[string]*imageSet
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "mirror-bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) (err error) {
	start := time.Now()
	if err := b.tools(); err != nil {
		return err
	}
	b.dir = b.o.workDir
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "mirror-bench-*"); err != nil {
			return err
		}
		if !b.o.keep {
			defer os.RemoveAll(b.dir)
		}
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	b.machine = readMachine()
	b.logf("work dir %s; %d CPUs; load %s", b.dir, b.machine.NProc, b.machine.LoadStart)
	if err := b.buildMirror(ctx); err != nil {
		return err
	}
	b.policy = filepath.Join(b.dir, "policy.json")
	if err := os.WriteFile(b.policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		return err
	}
	if b.k, err = startKubo(ctx, b.ipfsBin, b.dir); err != nil {
		return err
	}
	defer b.k.Stop()
	if b.reg, err = startRegistry(ctx, b.regBin(), filepath.Join(b.dir, "registry")); err != nil {
		return err
	}
	defer b.reg.Stop()
	if v, err := b.k.cli(ctx, nil, "version", "-n"); err == nil {
		b.machine.Kubo = strings.TrimSpace(v)
	}
	b.logf("kubo %s at %s, docker-registry at %s", b.machine.Kubo, b.k.api, b.reg.host)

	var errs []error
	for _, c := range cases {
		if !b.o.cases[c.Name] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.cur = c.Name
		t0 := time.Now()
		b.logf("case %s: start (load %s)", c.Name, loadAvg())
		if err := c.Run(b, ctx); err != nil {
			errs = append(errs, fmt.Errorf("case %s: %w", c.Name, err))
			b.logf("case %s: FAILED: %v", c.Name, err)
			continue
		}
		b.logf("case %s: done in %s (load %s)", c.Name, time.Since(t0).Round(time.Second), loadAvg())
	}
	b.machine.LoadEnd = loadAvg()
	b.machine.Duration = time.Since(start).Round(time.Second).String()
	if b.o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(b.report()); err != nil {
			return err
		}
	} else {
		b.printMarkdown(os.Stdout)
	}
	if b.o.markdown != "" {
		f, err := os.Create(b.o.markdown)
		if err != nil {
			return err
		}
		b.printMarkdown(f)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func (b *bench) regBin() string {
	p, _ := findTool("MIRROR_REGISTRY_BIN", "docker-registry")
	return p
}

func (b *bench) tools() error {
	var err error
	if b.ipfsBin, err = findTool("MIRROR_IPFS_BIN", "ipfs"); err != nil {
		return err
	}
	if _, err = findTool("MIRROR_REGISTRY_BIN", "docker-registry"); err != nil {
		return err
	}
	if b.skopeoBin, err = findTool("", "skopeo"); err != nil {
		return err
	}
	if b.curlBin, err = findTool("", "curl"); err != nil {
		return err
	}
	if b.gzBin, err = findTool("", "gzip"); err != nil {
		return err
	}
	return nil
}

// buildMirror builds ./cmd/mirror of the module we are in (or takes
// --mirror-bin).
func (b *bench) buildMirror(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if err == nil {
		if rev, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
			b.machine.Commit = strings.TrimSpace(string(rev))
		}
	}
	if b.o.mirrorBin != "" {
		b.mirrorBin = b.o.mirrorBin
		b.machine.Commit += " (--mirror-bin " + b.mirrorBin + ")"
		return nil
	}
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	if strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return errors.New("not inside the mirror module: run from the repository (or pass --mirror-bin)")
	}
	b.mirrorBin = filepath.Join(b.dir, "mirror")
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.mirrorBin, "./cmd/mirror")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/mirror: %w", err)
	}
	b.logf("built mirror (%s) in %s", b.machine.Commit, time.Since(t0).Round(time.Second))
	return nil
}

// machine describes where the numbers were taken.
type machine struct {
	NProc     int    `json:"nproc"`
	MemTotal  string `json:"memTotal"`
	CPU       string `json:"cpu"`
	GoVersion string `json:"goVersion"`
	Kubo      string `json:"kubo"`
	Commit    string `json:"commit,omitempty"`
	LoadStart string `json:"loadStart"`
	LoadEnd   string `json:"loadEnd"`
	Duration  string `json:"duration"`
}

func readMachine() machine {
	m := machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// median of xs (xs is not changed).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func osArgs() []string { return os.Args[1:] }
