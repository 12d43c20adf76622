package main

// A small stand-in for the GitHub Actions runner, enough to run our
// composite actions (action.yml, actions/*/action.yml) as a runner would:
// inputs with their defaults, `if:` conditions, `${{ }}` expressions in
// run: and env:, a fresh GITHUB_OUTPUT per step, GITHUB_ENV and GITHUB_PATH
// carried to later steps, one GITHUB_STEP_SUMMARY, outputs evaluated at the
// end. Steps with `uses:` cannot run here: one whose condition holds fails
// the test (our actions only reach them when Go or a cache is needed).
//
// The expression language is the subset our actions use: literals
// ('str', true, false, null, numbers), contexts (inputs.*, steps.*.outputs.*,
// steps.*.outcome, github.action_path, github.workspace, runner.temp,
// runner.os, runner.arch, env.*), == != && || ! ( ) and success(),
// failure(), always(), cancelled(). Anything else fails the test.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// runner is one job: a workspace, a temp directory, a step summary, and
// the environment and PATH that steps add for later ones.
type runner struct {
	t         *testing.T
	Workspace string
	Temp      string
	Summary   string
	BaseEnv   []string          // added to the process environment
	jobEnv    map[string]string // from GITHUB_ENV
	jobPath   []string          // from GITHUB_PATH, newest first
	// AfterUse, when set, sees every action run.
	AfterUse func(*actionResult)
}

func newRunner(t *testing.T, workspace string) *runner {
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
	return &runner{t: t, Workspace: workspace, Temp: temp, Summary: summary, jobEnv: map[string]string{}}
}

// stepResult is what one step did.
type stepResult struct {
	ID      string
	Name    string
	Outcome string // success, failure, skipped
	Code    int
	Outputs map[string]string
	Log     string
}

// actionResult is what one use of an action did.
type actionResult struct {
	Outputs map[string]string
	Steps   []*stepResult
	Failed  bool
	Log     string
}

// step returns the result of the step with id (nil if none).
func (a *actionResult) step(id string) *stepResult {
	for _, s := range a.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// JobEnv is what GITHUB_ENV holds so far.
func (r *runner) JobEnv() map[string]string { return r.jobEnv }

// JobPath is what GITHUB_PATH holds so far, newest first.
func (r *runner) JobPath() []string { return r.jobPath }

// use runs the composite action in dir with inputs, as `uses: dir`.
func (r *runner) use(dir string, inputs map[string]string) *actionResult {
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

	res := &actionResult{Outputs: map[string]string{}}
	var log strings.Builder
	ctx := &exprContext{t: t, r: r, actionPath: dir, inputs: in, steps: map[string]*stepResult{}}
	for i, st := range meta.Runs.Steps {
		name := st.Name
		if name == "" {
			name = st.ID
		}
		if name == "" {
			name = fmt.Sprintf("step %d", i+1)
		}
		sr := &stepResult{ID: st.ID, Name: name, Outputs: map[string]string{}}
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

func (r *runner) runStep(ctx *exprContext, st actionStep, sr *stepResult) {
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
func parseFileCommand(t *testing.T, path string) map[string]string {
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

// exprContext evaluates ${{ }} expressions for one action run.
type exprContext struct {
	t          *testing.T
	r          *runner
	actionPath string
	inputs     map[string]string
	steps      map[string]*stepResult
	failed     bool
}

// substitute replaces every ${{ expr }} in s by its value.
func (c *exprContext) substitute(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+3:]
		j := closing(rest)
		if j < 0 {
			c.t.Fatalf("unclosed ${{ in %q", s)
		}
		b.WriteString(toString(c.eval(rest[:j])))
		s = rest[j+2:]
	}
}

// closing finds the "}}" that ends an expression, outside string literals.
func closing(s string) int {
	inStr := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			inStr = !inStr
		case !inStr && strings.HasPrefix(s[i:], "}}"):
			return i
		}
	}
	return -1
}

func (c *exprContext) eval(expr string) any {
	p := &exprParser{c: c, toks: tokenize(c.t, expr), src: expr}
	v := p.or()
	if p.pos != len(p.toks) {
		c.t.Fatalf("expression %q: unexpected %q", expr, p.toks[p.pos])
	}
	return v
}

func tokenize(t *testing.T, s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			i++
		case ch == '\'':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(s) {
				t.Fatalf("expression %q: unterminated string", s)
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, s[i:i+2])
			i += 2
		case ch == '!' || ch == '(' || ch == ')' || ch == ',':
			toks = append(toks, string(ch))
			i++
		default:
			j := i
			for j < len(s) && (isIdent(s[j]) || s[j] == '.') {
				j++
			}
			if j == i {
				t.Fatalf("expression %q: unsupported character %q", s, ch)
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func isIdent(b byte) bool {
	return b == '_' || b == '-' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

type exprParser struct {
	c    *exprContext
	toks []string
	pos  int
	src  string
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) next() string {
	tok := p.peek()
	p.pos++
	return tok
}

func (p *exprParser) or() any {
	v := p.and()
	for p.peek() == "||" {
		p.next()
		w := p.and()
		if !truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) and() any {
	v := p.unary()
	for p.peek() == "&&" {
		p.next()
		w := p.unary()
		if truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) unary() any {
	if p.peek() == "!" {
		p.next()
		return !truthy(p.unary())
	}
	return p.cmp()
}

func (p *exprParser) cmp() any {
	v := p.primary()
	switch p.peek() {
	case "==":
		p.next()
		return equal(v, p.primary())
	case "!=":
		p.next()
		return !equal(v, p.primary())
	}
	return v
}

func (p *exprParser) primary() any {
	tok := p.next()
	switch {
	case tok == "(":
		v := p.or()
		if p.next() != ")" {
			p.c.t.Fatalf("expression %q: missing )", p.src)
		}
		return v
	case strings.HasPrefix(tok, "'"):
		return strings.ReplaceAll(tok[1:len(tok)-1], "''", "'")
	case tok == "true":
		return true
	case tok == "false":
		return false
	case tok == "null":
		return nil
	case tok == "":
		p.c.t.Fatalf("expression %q: unexpected end", p.src)
	}
	if f, err := strconv.ParseFloat(tok, 64); err == nil {
		return f
	}
	if p.peek() == "(" {
		p.next()
		if p.next() != ")" {
			p.c.t.Fatalf("expression %q: %s() with arguments is not supported here", p.src, tok)
		}
		switch tok {
		case "success":
			return !p.c.failed
		case "failure":
			return p.c.failed
		case "always":
			return true
		case "cancelled":
			return false
		}
		p.c.t.Fatalf("expression %q: function %s is not supported here", p.src, tok)
	}
	return p.c.lookup(tok, p.src)
}

// lookup resolves a context path such as inputs.config or
// steps.sync.outputs.lockfile.
func (c *exprContext) lookup(path, src string) any {
	parts := strings.Split(path, ".")
	switch {
	case parts[0] == "inputs" && len(parts) == 2:
		v, ok := c.inputs[parts[1]]
		if !ok {
			c.t.Fatalf("expression %q: no input %q", src, parts[1])
		}
		return v
	case parts[0] == "steps" && len(parts) == 4 && parts[2] == "outputs":
		s, ok := c.steps[parts[1]]
		if !ok {
			c.t.Fatalf("expression %q: no step %q before this one", src, parts[1])
		}
		if v, ok := s.Outputs[parts[3]]; ok {
			return v
		}
		return nil
	case parts[0] == "steps" && len(parts) == 3 && (parts[2] == "outcome" || parts[2] == "conclusion"):
		s, ok := c.steps[parts[1]]
		if !ok {
			c.t.Fatalf("expression %q: no step %q before this one", src, parts[1])
		}
		return s.Outcome
	case path == "github.action_path":
		return c.actionPath
	case path == "github.workspace":
		return c.r.Workspace
	case path == "runner.temp":
		return c.r.Temp
	case path == "runner.os":
		return "Linux"
	case path == "runner.arch":
		return "X64"
	case parts[0] == "env" && len(parts) == 2:
		if v, ok := c.r.jobEnv[parts[1]]; ok {
			return v
		}
		return nil
	}
	c.t.Fatalf("expression %q: context %q is not supported here", src, path)
	return nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// equal is GitHub's ==: strings compare ignoring case; other mixes compare
// as numbers.
func equal(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(as, bs)
	}
	if ab, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			return ab == bb
		}
	}
	return toNumber(a) == toNumber(b)
}

func toNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		if strings.TrimSpace(x) == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f
		}
	}
	return math.NaN()
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
