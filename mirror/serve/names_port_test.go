package serve

import "testing"

// TestFoldedPortNames: a registry host with a port is named with the port
// folded into the first component (127.0.0.1_15000/…), which docker-style
// references accept; the colon and ?ns= forms keep working.
func TestFoldedPortNames(t *testing.T) {
	for _, tc := range []struct{ ns, name, want string }{
		{"", "127.0.0.1_15000/test/hello", "127.0.0.1:15000/test/hello"},
		{"", "127.0.0.1:15000/test/hello", "127.0.0.1:15000/test/hello"},
		{"127.0.0.1:15000", "test/hello", "127.0.0.1:15000/test/hello"},
		{"", "localhost_5000/app", "localhost:5000/app"},
		{"", "registry.example.com_8443/team/app", "registry.example.com:8443/team/app"},
		{"", "foo_1/app", "docker.io/foo_1/app"}, // not a host: a Docker Hub name
		{"", "ghcr.io/acme/app", "ghcr.io/acme/app"},
	} {
		if got, ok := canonicalRepo(tc.ns, tc.name); !ok || got != tc.want {
			t.Errorf("canonicalRepo(%q, %q) = %q, %v; want %q", tc.ns, tc.name, got, ok, tc.want)
		}
	}
	for in, want := range map[string]string{
		"127.0.0.1:15000/test/hello": "127.0.0.1_15000/test/hello",
		"docker.io/library/alpine":   "docker.io/library/alpine",
	} {
		if got := FoldPort(in); got != want {
			t.Errorf("FoldPort(%q) = %q, want %q", in, got, want)
		}
		if got, ok := canonicalRepo("", FoldPort(in)); !ok || got != in {
			t.Errorf("the fold of %q does not come back: %q", in, got)
		}
	}
	tbl := &nameTable{repos: map[string]map[string]lockEntry{"127.0.0.1:15000/test/hello": {"1.0": {}}, "docker.io/library/alpine": {"3.20": {}}}}
	got := tbl.catalog()
	want := []string{"127.0.0.1:15000/test/hello", "127.0.0.1_15000/test/hello", "docker.io/library/alpine"}
	if len(got) != len(want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("catalog %v, want %v", got, want)
		}
	}
}
