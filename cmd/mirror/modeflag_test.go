package main

import (
	"testing"

	"github.com/alecthomas/kong"

	"github.com/ipfs-mirror/mirror/convert/modes"
)

// TestModeFlagEnum: push --mode takes exactly the modes of package modes,
// plain by default.
func TestModeFlagEnum(t *testing.T) {
	var cli CLI
	p, err := kong.New(&cli, kong.Vars{"version": "test"}, modeVars())
	if err != nil {
		t.Fatal(err)
	}
	var flag *kong.Flag
	for _, n := range p.Model.Children {
		if n.Name != "push" {
			continue
		}
		for _, f := range n.Flags {
			if f.Name == "mode" {
				flag = f
			}
		}
	}
	if flag == nil {
		t.Fatal("push has no --mode flag")
	}
	if flag.Enum != modes.Enum() || flag.Default != string(modes.Plain) {
		t.Errorf("--mode enum %q default %q, want %q and %q", flag.Enum, flag.Default, modes.Enum(), modes.Plain)
	}
	for _, m := range modes.All() {
		if _, err := p.Parse([]string{"push", "--mode", string(m), "alpine:3"}); err != nil || cli.Push.Mode != string(m) {
			t.Errorf("--mode %s: %v (%q)", m, err, cli.Push.Mode)
		}
	}
	if _, err := p.Parse([]string{"push", "--mode", "zstd", "alpine:3"}); err == nil {
		t.Error("--mode zstd accepted")
	}
}
