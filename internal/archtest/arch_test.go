// Package archtest holds the test that keeps the layout honest: every
// package of the module has a layer, and a package imports only packages
// of lower layers (docs/architecture.md draws the same table). A new
// package fails the test until it is given a layer here.
package archtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/ipfs-mirror/mirror"

// layers: a package may import a package of a strictly lower layer only.
// Test files are not counted (a test may drive anything below the binary).
var layers = map[string]int{
	// 0: leaves — the IPFS store interface and small helpers
	"mirror/ipfs":       0,
	"internal/redact":   0,
	"internal/yamlpos":  0,
	"internal/reqcount": 0,
	"convert/modes":     0,
	// 1: the stores, and the format on the store interface
	"mirror/ipfs/kubo":     1,
	"mirror/ipfs/car":      1,
	"mirror/ipfs/embedded": 1,
	"mirror/ipfs/gateway":  1,
	"manifests":            1,
	"manifests/ocidir":     1,
	// 2: what builds on the format; choosing a store; registry access
	"mirror/ipfs/open":    2,
	"manifests/pinhandle": 2,
	"manifests/upstream":  2,
	"manifests/treegen":   2,
	"convert":             2,
	"mirror/registry":     2,
	"mirror/lockfile":     2,
	// 3: sources and destinations; the list
	"mirror/oci":                3,
	"mirror/config":             3,
	"mirror/sigverify":          3,
	"convert/internal/rsscheck": 3,
	"internal/ui":               3,
	"internal/ui/inspect":       4,
	"internal/ui/push":          4,
	// 4: the operations
	"mirror/verify":  4,
	"mirror/publish": 4,
	"mirror/compose": 4,
	"mirror/serve":   4,
	// 5: the sync engine (it verifies what it keeps)
	"mirror/syncer": 5,
	// 6: programs and test scaffolding
	"cmd/mirror":                6,
	"internal/cmd/mirror-bench": 6,
	"internal/cmd/refregistry":  6,
	"internal/rig":              6,
	"internal/actiontest":       6,
}

func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		from := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if strings.HasPrefix(from, "internal/archtest") || strings.HasPrefix(from, "internal/stack") {
			continue
		}
		lf, ok := layers[from]
		if !ok {
			t.Errorf("package %s has no layer: add it to archtest's table and to docs/architecture.md", from)
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := strings.TrimPrefix(imp, module+"/")
			lt, ok := layers[to]
			if !ok {
				continue // reported as its own package
			}
			if lt >= lf {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", from, lf, to, lt)
			}
		}
	}
}

// sniffing is what callers outside the store packages must not do: reach
// through the ipfs.Store interface to the kubo client or assert a concrete
// store. Optional capabilities are interfaces in mirror/ipfs.
var sniffing = regexp.MustCompile(`\*rpc\.HttpApi|HttpApi\b|\*kubo\.Store|\.\(\*embedded\.|\.\(\*car\.|\.\(\*kubo\.`)

func TestNoStoreSniffing(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case "mirror/ipfs/kubo", "mirror/ipfs/open", "mirror/ipfs/embedded", "mirror/ipfs/car", "internal/archtest", "internal/stack", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if sniffing.MatchString(line) {
				t.Errorf("%s:%d: %s — use an ipfs capability interface instead", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
