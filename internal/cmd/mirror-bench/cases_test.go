package main

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// Every case has a unique name, a unique old number (if any) and the file
// the registry's comment promises.
func TestCasesRegistry(t *testing.T) {
	names, numbers := map[string]bool{}, map[int]bool{}
	for _, c := range cases {
		if c.Name == "" || strings.ContainsAny(c.Name, ", ") || c.Run == nil || c.About == "" {
			t.Errorf("case %+v: a name without commas or spaces, an About and a Run are needed", c)
		}
		if names[c.Name] || (c.Number != 0 && numbers[c.Number]) {
			t.Errorf("case %q (%d): name or number used twice", c.Name, c.Number)
		}
		names[c.Name], numbers[c.Number] = true, true
		file := "case_" + strings.ReplaceAll(c.Name, "-", "_") + ".go"
		if _, err := os.Stat(file); err != nil {
			t.Errorf("case %q: %v", c.Name, err)
		}
	}
}

func TestParseCases(t *testing.T) {
	all := make([]string, len(cases))
	var numbered []string // the cases known by a number before they had names
	for i, c := range cases {
		all[i] = c.Name
		if c.Number != 0 {
			numbered = append(numbered, c.Name)
		}
	}
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"all", all},
		{"1,2,3,4,5,6", numbered},
		{"gateway", []string{"gateway"}},
		{"p2p", []string{"p2p"}},
		{"serve", []string{"serve"}},
		{"4", []string{"serve"}},
		{" throughput , 6", []string{"scaling", "throughput"}},
		{"noop-resync,3", []string{"noop-resync"}},
	} {
		got, err := parseCases(cases, tc.arg)
		if err != nil {
			t.Errorf("parseCases(%q): %v", tc.arg, err)
			continue
		}
		if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(tc.want)); !slices.Equal(g, w) {
			t.Errorf("parseCases(%q) = %v, want %v", tc.arg, g, w)
		}
	}
	for _, bad := range []string{"", "0", "7", "-1", "Serve", "serve,", "through"} {
		if got, err := parseCases(cases, bad); err == nil {
			t.Errorf("parseCases(%q) = %v, want an error", bad, got)
		}
	}
}
