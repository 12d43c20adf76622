package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// result is one row: a measurement repeated --runs times.
type result struct {
	// Case is the name of the case that measured the row (set by add).
	Case  string `json:"case"`
	Group string `json:"group"`
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	// Runs are the values of each run; Median is what the table shows.
	Runs   []float64 `json:"runs"`
	Median float64   `json:"median"`
	// CPU seconds per run: the measured processes (mirror, or the
	// baseline's tools) and the kubo daemon over the same interval.
	CPU     []float64 `json:"cpuSeconds,omitempty"`
	KuboCPU []float64 `json:"kuboCpuSeconds,omitempty"`
	// Baseline names the row of the same group this one is compared with;
	// Ratio is Median / the baseline's median.
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Note     string  `json:"note,omitempty"`
	// Load is the 1/5/15-minute load average when the row was finished.
	Load string `json:"load"`
	// MiBPerCPUSecond is, for throughput rows, the bytes moved per CPU
	// second of the tool and kubo together (medians): a figure that a busy
	// machine distorts less than wall time.
	MiBPerCPUSecond float64 `json:"mibPerCpuSecond,omitempty"`

	bytes int64 // bytes per run, for MiBPerCPUSecond
}

func (b *bench) add(r *result) *result {
	if r.Case == "" {
		r.Case = b.cur
	}
	r.Median = median(r.Runs)
	r.Load = loadAvg()
	if r.bytes > 0 && len(r.CPU) > 0 {
		if cpu := median(r.CPU) + median(r.KuboCPU); cpu > 0 {
			r.MiBPerCPUSecond = float64(r.bytes) / float64(mib) / cpu
		}
	}
	b.results = append(b.results, r)
	unit := r.Unit
	b.logf("  %s / %s: %s %s (runs %s)", r.Group, r.Name, fmtNum(r.Median), unit, fmtRuns(r.Runs))
	return r
}

// compare sets r's ratio against the row named base in r's group.
func (b *bench) compare(r *result, base string) {
	for _, o := range b.results {
		if o.Group == r.Group && o.Name == base && o.Median != 0 {
			r.Baseline, r.Ratio = base, r.Median/o.Median
			return
		}
	}
}

func (r *result) target(desc string, met bool) {
	r.Target, r.Met = desc, &met
}

type report struct {
	Command string    `json:"command"`
	Quick   bool      `json:"quick"`
	Runs    int       `json:"runs"`
	Machine machine   `json:"machine"`
	Results []*result `json:"results"`
}

func (b *bench) report() report {
	return report{Command: b.command(), Quick: b.o.quick, Runs: b.o.runs, Machine: b.machine, Results: b.results}
}

func (b *bench) command() string {
	return "go run ./internal/cmd/mirror-bench " + strings.Join(osArgs(), " ")
}

func (b *bench) printMarkdown(w io.Writer) {
	m := b.machine
	fmt.Fprintf(w, "## mirror-bench results\n\n")
	fmt.Fprintf(w, "`%s` — %d runs per case, medians shown.\n\n", strings.TrimSpace(b.command()), b.o.runs)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s RAM, %s, kubo %s, mirror %s. Load average (1/5/15 min) at start %s, at end %s; run took %s.\n\n",
		m.NProc, m.CPU, m.MemTotal, m.GoVersion, m.Kubo, m.Commit, m.LoadStart, m.LoadEnd, m.Duration)
	group := ""
	for _, r := range b.results {
		if r.Group != group {
			group = r.Group
			fmt.Fprintf(w, "\n**%s — %s** (load at end: %s)\n\n", r.Case, group, r.Load)
			fmt.Fprintln(w, "| measurement | median | runs | CPU s (tool / kubo) | MiB per CPU s | ratio | target | met |")
			fmt.Fprintln(w, "|---|---:|---|---|---:|---|---|---|")
		}
		cpu := ""
		if len(r.CPU) > 0 {
			cpu = fmt.Sprintf("%.1f / %.1f", median(r.CPU), median(r.KuboCPU))
		}
		ratio := ""
		if r.Baseline != "" {
			ratio = fmt.Sprintf("%.2f× %s", r.Ratio, r.Baseline)
		}
		met := ""
		if r.Met != nil {
			met = "✅ met"
			if !*r.Met {
				met = "❌ missed"
			}
		}
		val := strings.TrimSpace(fmtNum(r.Median) + " " + r.Unit)
		if len(r.Runs) == 0 {
			val = "not measured"
		}
		eff := ""
		if r.MiBPerCPUSecond > 0 {
			eff = fmtNum(r.MiBPerCPUSecond)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", esc(r.Name), val, fmtRuns(r.Runs), cpu, eff, esc(ratio), esc(r.Target), met)
	}
	var notes []string
	for _, r := range b.results {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s, %s: %s", r.Case, r.Name, r.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n\n%s\n", strings.Join(notes, "\n"))
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v == float64(int64(v)):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtRuns(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmtNum(x)
	}
	return strings.Join(s, ", ")
}
