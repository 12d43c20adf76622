package lockfile

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, returns only *Errors with a
// position, and that whatever it accepts is written back deterministically:
// Marshal of what Parse read parses again to the same bytes, and passes
// Validate (so WriteFile would accept it).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.lock")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\nimages:\n  - source: a\n    mode: plain\n    digest: " + digA + "\n    platforms: [linux/amd64]\n    cid: " + cidA + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := Parse("m.lock", data)
		if err != nil {
			var walk func(error)
			walk = func(err error) {
				if j, ok := err.(interface{ Unwrap() []error }); ok {
					for _, e := range j.Unwrap() {
						walk(e)
					}
					return
				}
				e, ok := err.(*Error)
				if !ok || e.File != "m.lock" || e.Line < 1 {
					t.Fatalf("bad error %T %#v", err, err)
				}
			}
			walk(err)
			return
		}
		if err := lf.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out := lf.Marshal()
		again, err := Parse("m.lock", out)
		if err != nil {
			t.Fatalf("cannot read back what Marshal wrote: %v\n%s", err, out)
		}
		if out2 := again.Marshal(); string(out2) != string(out) {
			t.Fatalf("not deterministic:\n%s\nvs\n%s", out, out2)
		}
	})
}
