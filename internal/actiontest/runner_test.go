package actiontest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fatalT turns the harness's own failures (Fatal, Fatalf) into a panic
// that harnessError recovers, so a test can see them.
type fatalT struct{ *testing.T }

type harnessFailure struct{ msg string }

func (f fatalT) Fatal(args ...any) { panic(harnessFailure{fmt.Sprint(args...)}) }
func (f fatalT) Fatalf(format string, args ...any) {
	panic(harnessFailure{fmt.Sprintf(format, args...)})
}

// harnessError runs fn with a fatalT and returns the message it failed
// with ("" if it did not).
func harnessError(t *testing.T, fn func(tb testing.TB)) (msg string) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			hf, ok := r.(harnessFailure)
			if !ok {
				panic(r)
			}
			msg = hf.msg
		}
	}()
	fn(fatalT{t})
	return ""
}

func workspace(t *testing.T) string {
	ws := t.TempDir()
	if err := os.Mkdir(filepath.Join(ws, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	return ws
}

func outcomes(res *Result) map[string]string {
	m := map[string]string{}
	for _, s := range res.Steps {
		m[s.ID] = s.Outcome
	}
	return m
}

func TestUseSucceeds(t *testing.T) {
	t.Setenv("GITHUB_LEAK", "from the test's environment")
	ws := workspace(t)
	r := New(t, ws)
	var seen int
	r.AfterUse = func(*Result) { seen++ }
	res := r.Use("testdata/demo", map[string]string{"who": "world"})
	if res.Failed {
		t.Fatalf("failed:\n%s", res.Log)
	}
	want := map[string]string{"say": "success", "setup-go": "skipped", "env-seen": "success", "maybe-fail": "skipped",
		"after-failure": "success", "on-failure": "skipped", "cleanup": "success"}
	if got := outcomes(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v\n%s", got, want, res.Log)
	}
	if o := res.Outputs; o["said"] != "hello, world" || o["lines"] != "one\ntwo" || o["outcome"] != "skipped" {
		t.Errorf("outputs %q", o)
	}
	if got := res.Step("say").Outputs["leak"]; got != "none" {
		t.Errorf("GITHUB_LEAK reached the step: %q", got)
	}
	abs, _ := filepath.Abs("testdata/demo")
	if o := res.Step("env-seen").Outputs; o["said"] != "yes" || o["action-path"] != abs {
		t.Errorf("env-seen outputs %q", o)
	}
	if r.JobEnv()["DEMO_SAID"] != "yes" {
		t.Errorf("JobEnv %v", r.JobEnv())
	}
	if p := r.JobPath(); len(p) != 1 || p[0] != filepath.Join(r.Temp, "bin") {
		t.Errorf("JobPath %v", p)
	}
	if b, _ := os.ReadFile(r.Summary); string(b) != "### hello, world\n" {
		t.Errorf("summary %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Temp, "cleanup-dir")); strings.TrimSpace(string(b)) != filepath.Join(ws, "sub") {
		t.Errorf("cleanup ran in %q, want %s/sub", b, ws)
	}
	if res.Step("no-such-step") != nil {
		t.Error("Step of an unknown id is not nil")
	}

	// A second use in the same job: the summary grows, the PATH too.
	res = r.Use("testdata/demo", map[string]string{"who": "again", "greeting": "hi"})
	if res.Failed || res.Outputs["said"] != "hi, again" {
		t.Fatalf("second use: %q\n%s", res.Outputs, res.Log)
	}
	if b, _ := os.ReadFile(r.Summary); string(b) != "### hello, world\n### hi, again\n" {
		t.Errorf("summary %q", b)
	}
	if len(r.JobPath()) != 2 || seen != 2 {
		t.Errorf("JobPath %v, AfterUse saw %d uses", r.JobPath(), seen)
	}
}

func TestUseFails(t *testing.T) {
	r := New(t, workspace(t))
	res := r.Use("testdata/demo", map[string]string{"who": "world", "fail": "true"})
	if !res.Failed {
		t.Fatalf("did not fail:\n%s", res.Log)
	}
	want := map[string]string{"say": "success", "setup-go": "skipped", "env-seen": "success", "maybe-fail": "failure",
		"after-failure": "skipped", "on-failure": "success", "cleanup": "success"}
	if got := outcomes(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v\n%s", got, want, res.Log)
	}
	if s := res.Step("maybe-fail"); s.Code != 3 || s.Log != "failing\n" {
		t.Errorf("maybe-fail: exit %d, log %q", s.Code, s.Log)
	}
	if res.Outputs["outcome"] != "failure" || !strings.Contains(res.Log, "::: maybe-fail: failure (exit 3,") {
		t.Errorf("outputs %q, log:\n%s", res.Outputs, res.Log)
	}
}

// What the harness cannot do fails the test, never silently.
func TestHarnessRefuses(t *testing.T) {
	for _, tc := range []struct {
		inputs map[string]string
		want   string
	}{
		{map[string]string{"who": "x", "colour": "red"}, `input "colour" is not declared`},
		{map[string]string{}, `required input "who" not given`},
		{map[string]string{"who": "x", "greeting": "never"}, `uses actions/setup-go@v5 and its condition`},
	} {
		msg := harnessError(t, func(tb testing.TB) {
			New(tb, workspace(t)).Use("testdata/demo", tc.inputs)
		})
		if !strings.Contains(msg, tc.want) {
			t.Errorf("inputs %v: harness error %q, want %q", tc.inputs, msg, tc.want)
		}
	}
	if msg := harnessError(t, func(tb testing.TB) { New(tb, t.TempDir()).Use(t.TempDir(), nil) }); !strings.Contains(msg, "action.yml") {
		t.Errorf("no action.yml: harness error %q", msg)
	}
}

func TestParseFileCommand(t *testing.T) {
	f := filepath.Join(t.TempDir(), "out")
	body := "a=1\nempty=\n\nb=x=y\nm<<EOF\nline 1\n\nline 3\nEOF\nlast=z\n"
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got := parseFileCommand(t, f)
	want := map[string]string{"a": "1", "empty": "", "b": "x=y", "m": "line 1\n\nline 3", "last": "z"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"no equals sign\n", "m<<EOF\nnever closed\n"} {
		if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if msg := harnessError(t, func(tb testing.TB) { parseFileCommand(tb, f) }); msg == "" {
			t.Errorf("%q: no error", bad)
		}
	}
}
