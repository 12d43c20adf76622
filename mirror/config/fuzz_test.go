package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// made of *Errors with a position, and that what it accepts holds together:
// every image has modes and a position, and its push templates, checked at
// load time, execute at run time too.
func FuzzParse(f *testing.F) {
	lists, _ := filepath.Glob("testdata/good/*.yaml")
	composes, _ := filepath.Glob("testdata/good/*/compose.y*ml")
	compose := []byte(composeFS["compose.yaml"])
	if len(composes) > 0 {
		compose, _ = os.ReadFile(composes[0])
	}
	for _, path := range lists {
		data, err := os.ReadFile(path)
		if err == nil {
			f.Add(data, compose)
		}
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.in), compose)
	}
	for _, c := range composeFS {
		f.Add([]byte(v+"images:\n  - compose: c.yaml\n    modes: [plain, estargz]\n"), []byte(c))
	}

	env := map[string]string{"SET": "registry.example.com", "EMPTY": "", "TAG": "1.2"}
	f.Fuzz(func(t *testing.T, list, compose []byte) {
		readFile := func(string) ([]byte, error) { return compose, nil }
		file, err := Parse("mirrors.yaml", list, WithEnv(env), WithReadFile(readFile))
		if err != nil {
			checkFuzzError(t, err)
			if file != nil {
				t.Fatal("a File with an error")
			}
		} else {
			checkFile(t, file)
			again, err := Parse("mirrors.yaml", list, WithEnv(env), WithReadFile(readFile))
			a, _ := json.Marshal(file)
			b, _ := json.Marshal(again)
			if err != nil || string(a) != string(b) {
				t.Fatalf("a second parse differs: %v", err)
			}
		}

		if _, err := ComposeImages("compose.yaml", WithEnv(env), WithReadFile(readFile)); err != nil {
			checkFuzzError(t, err)
		}
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	leaves := 0
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		e, ok := err.(*Error)
		if !ok {
			t.Fatalf("not an *Error: %T %v", err, err)
		}
		if e.File == "" || e.Line < 1 || e.Column < 0 || e.Msg == "" {
			t.Fatalf("error without a position: %#v", e)
		}
		if strings.ContainsAny(e.Msg, "\n\r") {
			t.Fatalf("a message of several lines: %q", e.Msg)
		}
		leaves++
	}
	walk(err)
	if leaves == 0 || len(Errors(err)) != leaves {
		t.Fatalf("%d leaves, %d Errors in %v", leaves, len(Errors(err)), err)
	}
}

func checkFile(t *testing.T, f *File) {
	t.Helper()
	if f.Version != Version || len(f.Images) == 0 {
		t.Fatalf("accepted a list with version %d and %d images", f.Version, len(f.Images))
	}
	for i, img := range f.Images {
		if len(img.Modes) == 0 || img.Pos.Line < 1 || img.Source == "" {
			t.Fatalf("images[%d] incomplete: %+v", i, img)
		}
		if img.HasMode(modes.Encrypted) && (img.Encrypt == nil || len(img.Encrypt.Recipients) == 0) {
			t.Fatalf("images[%d]: encrypted without recipients", i)
		}
		if img.Kind == registry.KindRegistry && img.Tag == "" && img.Digest == "" && len(img.Tags.List) == 0 && img.Tags.IsList() {
			t.Fatalf("images[%d]: a repository with nothing to select", i)
		}
		if _, err := img.Tags.Select([]string{"1.0.0", "v2.1", "latest", "1.0.0-rc1"}); err != nil {
			t.Fatalf("images[%d]: Select: %v", i, err)
		}
		tag := sampleTag
		switch {
		case img.Kind != registry.KindRegistry:
			tag = img.Tag
		case img.Tags.IsList() && len(img.Tags.List) > 0:
			tag = img.Tags.List[0]
		case img.Tags.IsList():
			tag = ""
		}
		for _, m := range img.Modes {
			if _, err := img.PushTargets(tag, sampleDigest, string(m)); err != nil {
				t.Fatalf("images[%d]: PushTargets(%q, %s): %v", i, tag, m, err)
			}
		}
		_ = img.LockSource(tag)
	}
}
