package config

import (
	"strings"
	"testing"
)

// TestSyntaxErrorLines: YAML syntax errors name the line of the problem
// (yaml.v3 reports parser errors one line early).
func TestSyntaxErrorLines(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"version: 1\nimages:\n  - source: a/b\n    tags: [\"1.0\"\n", "m.yaml:4: invalid YAML: did not find expected ',' or ']'"},
		{"version: 1\nimages:\n  - source: a/b\n    tags: [\"1.0\"\n  - source: c/d\n", "m.yaml:4: "},
		{"version: 1\nimages:\n  - source: {a\n", "m.yaml:3: invalid YAML: did not find expected ',' or '}'"},
		{"version: 1\nimages: [\n", "m.yaml:2: invalid YAML: did not find expected node content"},
		{"version: 1\nimages:\n  - source: \"a\n", "m.yaml:3: invalid YAML: found unexpected end of stream"},
	} {
		_, err := Parse("m.yaml", []byte(c.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %s…", c.yaml, err, c.want)
		}
	}
}
