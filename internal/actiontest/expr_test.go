package actiontest

import (
	"math"
	"testing"
)

func testContext(t testing.TB, failed bool) *exprContext {
	return &exprContext{
		t:          t,
		r:          &Runner{Workspace: "/ws", Temp: "/tmp/rt", jobEnv: map[string]string{"MODE": "fast"}},
		actionPath: "/actions/x",
		inputs:     map[string]string{"name": "Mirror", "empty": "", "n": "3"},
		steps: map[string]*StepResult{
			"a": {ID: "a", Outcome: "success", Outputs: map[string]string{"cid": "bafy", "zero": "0"}},
			"b": {ID: "b", Outcome: "skipped", Outputs: map[string]string{}},
		},
		failed: failed,
	}
}

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		want   any
		failed bool
	}{
		{"'it''s'", "it's", false},
		{"true", true, false},
		{"null", nil, false},
		{"42", 42.0, false},
		{"inputs.name", "Mirror", false},
		{"inputs.name == 'MIRROR'", true, false}, // strings compare ignoring case
		{"inputs.name != 'mirror'", false, false},
		{"inputs.n == 3", true, false},
		{"inputs.empty || 'default'", "default", false},
		{"inputs.name && 'yes'", "yes", false},
		{"inputs.empty && 'yes'", "", false},
		{"!inputs.empty", true, false},
		{"!(inputs.n == 3) || steps.a.outputs.cid", "bafy", false},
		{"steps.a.outputs.missing", nil, false},
		{"steps.a.outputs.zero == 0", true, false},
		{"steps.a.outputs.zero == false", true, false},
		{"steps.b.outcome", "skipped", false},
		{"steps.a.conclusion == 'success'", true, false},
		{"github.action_path", "/actions/x", false},
		{"github.workspace", "/ws", false},
		{"runner.temp", "/tmp/rt", false},
		{"runner.os == 'linux' && runner.arch == 'x64'", true, false},
		{"env.MODE", "fast", false},
		{"env.UNSET", nil, false},
		{"null == ''", true, false},  // both 0 as numbers
		{"'abc' == 0", false, false}, // NaN
		{"success()", true, false},
		{"success()", false, true},
		{"failure()", true, true},
		{"always() && !cancelled()", true, true},
	} {
		got := testContext(t, tc.failed).eval(tc.expr)
		if got != tc.want {
			t.Errorf("eval(%q) (failed %v) = %#v, want %#v", tc.expr, tc.failed, got, tc.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	c := testContext(t, false)
	for in, want := range map[string]string{
		"plain":                                 "plain",
		"${{ inputs.name }}/${{inputs.n}}":      "Mirror/3",
		"x=${{ steps.a.outputs.missing }}.":     "x=.",
		"${{ '}}' }} and ${{ 1 == 1 }}":         "}} and true",
		"${{ inputs.n == 3 && inputs.n || 0 }}": "3",
	} {
		if got := c.substitute(in); got != want {
			t.Errorf("substitute(%q) = %q, want %q", in, got, want)
		}
	}
}

// Anything outside the subset fails the test rather than guessing.
func TestEvalRefuses(t *testing.T) {
	for _, expr := range []string{
		"inputs.nope", "steps.c.outputs.x", "steps.c.outcome", "github.sha", "secrets.TOKEN",
		"contains(inputs.name, 'M')", "success(1)", "fromJSON('1')", "(true", "'open", "inputs.n > 1", "",
	} {
		if msg := harnessError(t, func(tb testing.TB) { testContext(tb, false).eval(expr) }); msg == "" {
			t.Errorf("eval(%q): no harness error", expr)
		}
	}
	if msg := harnessError(t, func(tb testing.TB) { testContext(tb, false).substitute("${{ inputs.name ") }); msg == "" {
		t.Error("unclosed ${{: no harness error")
	}
}

func TestConversions(t *testing.T) {
	if !math.IsNaN(toNumber("abc")) || toNumber(" 2.5 ") != 2.5 || toNumber(true) != 1 || toNumber(nil) != 0 {
		t.Error("toNumber")
	}
	if toString(1.5) != "1.5" || toString(false) != "false" || toString(nil) != "" {
		t.Error("toString")
	}
	if truthy(math.NaN()) || truthy(0.0) || !truthy("0") || truthy("") || truthy(nil) {
		t.Error("truthy")
	}
}
