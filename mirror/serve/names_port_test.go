package serve

import "testing"

// TestFoldedPortCatalog: the catalog lists a repository whose host has a
// port under both names, the colon and the folded one.
func TestFoldedPortCatalog(t *testing.T) {
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
