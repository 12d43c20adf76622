package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func result() *Result {
	root, source, sd, target, platforms, blobs := fixture()
	return &Result{Root: root, Source: source, SourceDigest: sd, Target: target, Platforms: platforms, Blobs: blobs}
}

// The golden files were first written by cmd/mirror's push before its
// output moved here: byte for byte what it printed.
func TestGolden(t *testing.T) {
	r := result()
	var js, stdout, stderr bytes.Buffer
	if err := r.PrintJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.PrintText(&stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for file, got := range map[string][]byte{"push.json.golden": js.Bytes(), "push.stdout.golden": stdout.Bytes(), "push.stderr.golden": stderr.Bytes()} {
		path := filepath.Join("testdata", file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", file, got, want)
		}
	}
}

// What mirror-bench (and any script) reads of --json: the root, and each
// blob's CID as an IPLD link.
func TestJSONForPrograms(t *testing.T) {
	var buf bytes.Buffer
	if err := result().PrintJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Root  string `json:"root"`
		Blobs []struct {
			MediaType string
			CID       struct {
				Link string `json:"/"`
			}
		} `json:"blobs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Root != result().Root.String() || len(got.Blobs) != 4 || got.Blobs[3].CID.Link != result().Blobs[3].CID.String() {
		t.Errorf("read back %+v", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestPrintTextWriteError(t *testing.T) {
	var out bytes.Buffer
	if err := result().PrintText(&out, failWriter{}); err != nil || out.String() != result().Root.String()+"\n" {
		t.Errorf("a failed stderr write: %v, stdout %q (want the CID, no error)", err, out.String())
	}
	if err := result().PrintText(failWriter{}, &out); err == nil {
		t.Error("no error from a failed stdout write")
	}
}
