// Package actiontest is a small stand-in for the GitHub Actions runner,
// enough for tests to run our composite actions (action.yml,
// actions/*/action.yml) as a runner would: inputs with their defaults, `if:`
// conditions, `${{ }}` expressions in run: and env:, a fresh GITHUB_OUTPUT
// per step, GITHUB_ENV and GITHUB_PATH carried to later steps, one
// GITHUB_STEP_SUMMARY, outputs evaluated at the end. Steps with `uses:`
// cannot run here: one whose condition holds fails the test (our actions
// only reach them when Go or a cache is needed).
//
// The expression language is the subset our actions use: literals ('str',
// true, false, null, numbers), contexts (inputs.*, steps.*.outputs.*,
// steps.*.outcome, github.action_path, github.workspace, runner.temp,
// runner.os, runner.arch, env.*), == != && || ! ( ) and success(),
// failure(), always(), cancelled(). Anything else fails the test.
//
// A test makes a Runner for a workspace (New), runs an action directory
// with inputs (Runner.Use) and reads the Result: outputs, each step's
// outcome, exit code, outputs and log (Result.Step), and what the job
// carries on (JobEnv, JobPath, the Summary file). Failures of the harness
// itself (a malformed action.yml, an expression it does not support) fail
// the test; a failing step does not: it is in the Result.
package actiontest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type actionMeta struct {
	Name   string `yaml:"name"`
	Inputs map[string]struct {
		Description string `yaml:"description"`
		Required    bool   `yaml:"required"`
		Default     string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

// statusFunc finds a status check function in an if: condition.
var statusFunc = regexp.MustCompile(`\b(success|failure|always|cancelled)\(\s*\)`)

type actionStep struct {
	ID               string            `yaml:"id"`
	Name             string            `yaml:"name"`
	If               string            `yaml:"if"`
	Shell            string            `yaml:"shell"`
	Run              string            `yaml:"run"`
	Uses             string            `yaml:"uses"`
	With             map[string]string `yaml:"with"`
	Env              map[string]string `yaml:"env"`
	WorkingDirectory string            `yaml:"working-directory"`
}

// Runner is one job: a workspace, a temp directory, a step summary, and
// the environment and PATH that steps add for later ones.
type Runner struct {
	t         testing.TB
	Workspace string            // GITHUB_WORKSPACE, every step's directory
	Temp      string            // RUNNER_TEMP, removed with the test
	Summary   string            // the GITHUB_STEP_SUMMARY file, shared by every step
	BaseEnv   []string          // KEY=VALUE added to the process environment
	jobEnv    map[string]string // from GITHUB_ENV
	jobPath   []string          // from GITHUB_PATH, newest first
	// AfterUse, when set, sees every action run.
	AfterUse func(*Result)
}

// New is a Runner for a job in workspace; its temp directory and summary
// file are under t.TempDir.
func New(t testing.TB, workspace string) *Runner {
	t.Helper()
	tmp := t.TempDir()
	summary := filepath.Join(tmp, "step-summary.md")
	if err := os.WriteFile(summary, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(tmp, "runner-temp")
	if err := os.MkdirAll(temp, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Runner{t: t, Workspace: workspace, Temp: temp, Summary: summary, jobEnv: map[string]string{}}
}

// StepResult is what one step did.
type StepResult struct {
	ID      string
	Name    string // the step's name, else its id, else "step N"
	Outcome string // success, failure, skipped
	Code    int    // the exit code (-1 when bash did not exit)
	Outputs map[string]string
	Log     string // stdout and stderr together
}

// Result is what one use of an action did.
type Result struct {
	Outputs map[string]string // the action's outputs
	Steps   []*StepResult     // every step, skipped ones too, in order
	Failed  bool              // some step failed
	Log     string            // every step's outcome and log
}

// Step returns the result of the step with id (nil if none).
func (a *Result) Step(id string) *StepResult {
	for _, s := range a.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// JobEnv is what GITHUB_ENV holds so far.
func (r *Runner) JobEnv() map[string]string { return r.jobEnv }

// JobPath is what GITHUB_PATH holds so far, newest first.
func (r *Runner) JobPath() []string { return r.jobPath }

// Use runs the composite action in dir with inputs, as `uses: dir`.
func (r *Runner) Use(dir string, inputs map[string]string) *Result {
	t := r.t
	t.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta actionMeta
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(false)
	if err := dec.Decode(&meta); err != nil {
		t.Fatalf("%s/action.yml: %v", dir, err)
	}
	if meta.Runs.Using != "composite" {
		t.Fatalf("%s: runs.using %q, want composite", dir, meta.Runs.Using)
	}
	in := map[string]string{}
	for k, v := range meta.Inputs {
		in[k] = v.Default
	}
	for k, v := range inputs {
		if _, ok := meta.Inputs[k]; !ok {
			t.Fatalf("%s: input %q is not declared in action.yml", dir, k)
		}
		in[k] = v
	}
	for k, v := range meta.Inputs {
		if v.Required && in[k] == "" {
			t.Fatalf("%s: required input %q not given", dir, k)
		}
	}

	res := &Result{Outputs: map[string]string{}}
	var log strings.Builder
	ctx := &exprContext{t: t, r: r, actionPath: dir, inputs: in, steps: map[string]*StepResult{}}
	for i, st := range meta.Runs.Steps {
		name := st.Name
		if name == "" {
			name = st.ID
		}
		if name == "" {
			name = fmt.Sprintf("step %d", i+1)
		}
		sr := &StepResult{ID: st.ID, Name: name, Outputs: map[string]string{}}
		res.Steps = append(res.Steps, sr)
		if st.ID != "" {
			ctx.steps[st.ID] = sr
		}
		cond := strings.TrimSpace(st.If)
		if cond == "" {
			cond = "success()"
		}
		if strings.HasPrefix(cond, "${{") && strings.HasSuffix(cond, "}}") {
			cond = strings.TrimSuffix(strings.TrimPrefix(cond, "${{"), "}}")
		}
		// As on GitHub: without a status function, success() && is implied.
		if !statusFunc.MatchString(cond) {
			cond = "success() && (" + cond + ")"
		}
		if !truthy(ctx.eval(cond)) {
			sr.Outcome = "skipped"
			fmt.Fprintf(&log, "::: %s: skipped (if: %s)\n", name, st.If)
			continue
		}
		if st.Uses != "" {
			t.Fatalf("%s: step %q uses %s and its condition %q holds: this harness cannot run it", dir, name, st.Uses, st.If)
		}
		if st.Shell != "bash" {
			t.Fatalf("%s: step %q: shell %q (want bash)", dir, name, st.Shell)
		}
		began := time.Now()
		r.runStep(ctx, st, sr)
		took := time.Since(began).Round(time.Millisecond)
		fmt.Fprintf(&log, "::: %s: %s (exit %d, %s)\n%s", name, sr.Outcome, sr.Code, took, sr.Log)
		t.Logf("%s: step %s: %s in %s", filepath.Base(dir), name, sr.Outcome, took)
		if sr.Outcome == "failure" {
			ctx.failed = true
			res.Failed = true
		}
	}
	for k, o := range meta.Outputs {
		res.Outputs[k] = ctx.substitute(o.Value)
	}
	res.Log = log.String()
	if r.AfterUse != nil {
		r.AfterUse(res)
	}
	return res
}

func (r *Runner) runStep(ctx *exprContext, st actionStep, sr *StepResult) {
	t := r.t
	files := t.TempDir()
	outFile := filepath.Join(files, "output")
	envFile := filepath.Join(files, "env")
	pathFile := filepath.Join(files, "path")
	for _, f := range []string{outFile, envFile, pathFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(files, "step.sh")
	if err := os.WriteFile(script, []byte(ctx.substitute(st.Run)), 0o755); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "RUNNER_") || strings.HasPrefix(k, "INPUT_") {
			continue
		}
		env[k] = v
	}
	for _, kv := range r.BaseEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range r.jobEnv {
		env[k] = v
	}
	for k, v := range map[string]string{
		"CI":                  "true",
		"GITHUB_ACTIONS":      "true",
		"GITHUB_WORKSPACE":    r.Workspace,
		"GITHUB_ACTION_PATH":  ctx.actionPath,
		"GITHUB_OUTPUT":       outFile,
		"GITHUB_ENV":          envFile,
		"GITHUB_PATH":         pathFile,
		"GITHUB_STEP_SUMMARY": r.Summary,
		"RUNNER_TEMP":         r.Temp,
		"RUNNER_TOOL_CACHE":   filepath.Join(r.Temp, "toolcache"),
		"RUNNER_OS":           "Linux",
		"RUNNER_ARCH":         "X64",
		"IPFS_TELEMETRY":      "off",
	} {
		env[k] = v
	}
	for k, v := range st.Env {
		env[k] = ctx.substitute(v)
	}
	if len(r.jobPath) > 0 {
		env["PATH"] = strings.Join(r.jobPath, ":") + ":" + env["PATH"]
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}

	c, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Env = envList
	cmd.Dir = r.Workspace
	if st.WorkingDirectory != "" {
		cmd.Dir = filepath.Join(r.Workspace, ctx.substitute(st.WorkingDirectory))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	sr.Log = out.String()
	sr.Outcome = "success"
	if err != nil {
		sr.Outcome = "failure"
		sr.Code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			sr.Code = ee.ExitCode()
		}
	}
	sr.Outputs = parseFileCommand(t, outFile)
	for k, v := range parseFileCommand(t, envFile) {
		r.jobEnv[k] = v
	}
	p, _ := os.ReadFile(pathFile)
	for _, line := range strings.Split(string(p), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			r.jobPath = append([]string{line}, r.jobPath...)
		}
	}
}

// parseFileCommand reads a GITHUB_OUTPUT / GITHUB_ENV file: NAME=VALUE lines
// and NAME<<DELIMITER blocks.
func parseFileCommand(t testing.TB, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if k, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(k, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				t.Fatalf("%s: %s<<%s never closed", path, k, delim)
			}
			out[k] = strings.Join(val, "\n")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		out[k] = v
	}
	return out
}
