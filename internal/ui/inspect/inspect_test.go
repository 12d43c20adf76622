package inspect

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs-mirror/mirror/manifests"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The golden files were first written by cmd/mirror's inspect before its
// rendering moved here: the output is byte for byte what it printed.
func TestGolden(t *testing.T) {
	for name, tree := range map[string]func() *manifests.Tree{"multi": multiTree, "single": singleTree} {
		for _, handle := range []string{"", aHandle} {
			base := name
			if handle != "" {
				base += "-handle"
			}
			im, err := New(tree(), handle)
			if err != nil {
				t.Fatal(err)
			}
			var txt, js bytes.Buffer
			// As the CLI prints it: the handle line first, text only.
			if handle != "" {
				if err := PrintHandle(&txt, handle, im.Root); err != nil {
					t.Fatal(err)
				}
			}
			if err := im.PrintText(&txt); err != nil {
				t.Fatal(err)
			}
			if err := im.PrintJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, base+".txt.golden", txt.Bytes())
			golden(t, base+".json.golden", js.Bytes())
		}
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", file, got, want)
	}
}

// The shape: a document listed twice appears twice, its children once.
func TestNewTree(t *testing.T) {
	im, err := New(multiTree(), "")
	if err != nil {
		t.Fatal(err)
	}
	idx := im.Tree
	if idx == nil || len(idx.Children) != 4 {
		t.Fatalf("index node %+v", idx)
	}
	first, again := idx.Children[0], idx.Children[3]
	if first.Digest != again.Digest || len(first.Children) != 3 || len(again.Children) != 0 {
		t.Errorf("repeated manifest: %d then %d children", len(first.Children), len(again.Children))
	}
	if first.Platform == nil || first.Platform.Architecture != "amd64" || first.Children[1].Annot["a.b"] != "c" {
		t.Errorf("platform or annotations lost: %+v", first)
	}
	if im.Root.String() != "bafkreifnzlmwt5tofiace57o63lexcecyoyugovyzskzcpbw2p3brvmxmq" || im.Descriptor.Digest.String() != idx.Digest {
		t.Errorf("root %s, descriptor %s", im.Root, im.Descriptor.Digest)
	}
}

// A tree whose document does not parse is an error, not a partial print.
func TestNewBadDocument(t *testing.T) {
	tree := singleTree()
	tree.Docs[tree.RootDescriptor.Digest] = []byte("{")
	if _, err := New(tree, ""); err == nil {
		t.Error("no error for an unparsable manifest")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

// A failed write is returned, and nothing is written after it.
func TestPrintTextWriteError(t *testing.T) {
	im, err := New(multiTree(), "")
	if err != nil {
		t.Fatal(err)
	}
	w := &failWriter{n: 3}
	if err := im.PrintText(w); err == nil || err.Error() != "disk full" {
		t.Errorf("PrintText: %v", err)
	}
}
