package lockfile

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	cidA   = "bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm"
	cidB   = "bafkreib6epubmabzlffdhckpmvsodmjuro6xuaei2qwevs3t52xnlhaatu"
	cidC   = "bafkreibopuwahkkqplrgl3hvwu2wrbnfgoj2eau5eqjzjglsmwq2ewxpyy"
	pinA   = "bafybeigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm"
	digA   = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
	digB   = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
	digC   = "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
	digD   = "sha256:18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4"
	digE   = "sha256:3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
	header = Header
)

// sample is a lockfile whose entries are deliberately out of order.
func sample() *File {
	f := New()
	f.Put(Entry{
		Source: "ghcr.io/acme/app:1.2.3", Mode: "plain", Digest: digC,
		Platforms: []string{"linux/amd64"}, CID: cidC,
		Push: []PushTarget{
			{Ref: "registry.example.com/mirror/app:1.2.3-plain-ipfs", Digest: digD},
			{Ref: "other.example.com/app:1.2.3-plain", Digest: digE},
		},
	})
	f.Put(Entry{
		Source: "docker.io/library/alpine:3.20", Mode: "plain", Digest: digA,
		Platforms: []string{"linux/arm64", "linux/amd64", "linux/arm64"}, CID: cidA, Pin: pinA,
		Configs: []string{digE, digD, digE},
	})
	f.Put(Entry{
		Source: "ghcr.io/acme/app:1.2.3", Mode: "estargz", Digest: digC,
		Platforms: []string{"linux/amd64"}, CID: cidB,
	})
	f.Put(Entry{Source: "oci:layouts/app:v2", Mode: "plain", Digest: digB, CID: cidB})
	f.Put(Entry{Source: "docker.io/library/alpine:3.19", Mode: "plain", Digest: digB, Platforms: []string{}, CID: cidB})
	return f
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}

func TestMarshalGolden(t *testing.T) {
	golden(t, "empty.lock", New().Marshal())
	golden(t, "sample.lock", sample().Marshal())
}

func TestMarshalIgnoresInsertionOrder(t *testing.T) {
	a := sample()
	b := New()
	for i := len(a.Images) - 1; i >= 0; i-- {
		e := a.Images[i]
		// reversed platforms and push targets, too
		e.Platforms = reversed(e.Platforms)
		e.Push = reversed(e.Push)
		b.Put(e)
	}
	if string(a.Marshal()) != string(b.Marshal()) {
		t.Errorf("order changed the output:\n%s\nvs\n%s", a.Marshal(), b.Marshal())
	}
}

func reversed[T any](s []T) []T {
	var out []T
	for i := len(s) - 1; i >= 0; i-- {
		out = append(out, s[i])
	}
	return out
}

func TestMarshalDoesNotModify(t *testing.T) {
	f := sample()
	before := f.Images[1].Platforms[0]
	f.Marshal()
	if f.Images[0].Source != "ghcr.io/acme/app:1.2.3" || f.Images[1].Platforms[0] != before {
		t.Error("Marshal reordered the File")
	}
}

func TestMarshalQuotes(t *testing.T) {
	// Values that YAML would read as something else stay strings.
	f := New()
	f.Put(Entry{Source: "oci:123", Mode: "plain", Digest: digA, CID: cidA})
	f.Put(Entry{Source: "true", Mode: "plain", Digest: digA, CID: cidA})
	f.Put(Entry{Source: "docker-archive:my image #1.tar", Mode: "plain", Digest: digA, CID: cidA})
	f.Put(Entry{Source: "docker-archive:" + strings.Repeat("x", 200) + ".tar", Mode: "plain", Digest: digA, CID: cidA})
	g, err := Parse("x.lock", f.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Images, New().normalizedOf(f)) {
		t.Errorf("round trip changed the entries:\n%#v\n%#v", g.Images, f.Images)
	}
	for _, line := range strings.Split(string(f.Marshal()), "\n") {
		if strings.HasPrefix(line, "  - source: docker-archive:xxx") && len(line) < 200 {
			t.Errorf("long value folded: %q", line)
		}
	}
}

// normalizedOf is f's entries as Parse returns them after Marshal.
func (*File) normalizedOf(f *File) []Entry {
	out := f.normalized()
	for i := range out {
		if out[i].Platforms == nil {
			out[i].Platforms = []string{}
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	f := sample()
	data := f.Marshal()
	g, err := Parse("mirrors.lock", data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Images, f.normalizedOf(f)) {
		t.Errorf("entries changed:\n%#v\nwant\n%#v", g.Images, f.normalizedOf(f))
	}
	if again := g.Marshal(); string(again) != string(data) {
		t.Errorf("a no-op rewrite changed the bytes:\n%s\nvs\n%s", again, data)
	}
	// The golden files read back to the same bytes, too.
	for _, name := range []string{"empty.lock", "sample.lock"} {
		g, err := Read(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, g.Marshal())
	}
}

func TestPutLookupRemove(t *testing.T) {
	f := New()
	if _, ok := f.Lookup("a", "plain"); ok {
		t.Fatal("found in an empty file")
	}
	plat := []string{"linux/amd64"}
	f.Put(Entry{Source: "a", Mode: "plain", Digest: digA, CID: cidA, Platforms: plat})
	plat[0] = "changed" // Put keeps its own copy
	f.Put(Entry{Source: "a", Mode: "estargz", Digest: digA, CID: cidB})
	f.Put(Entry{Source: "a", Mode: "plain", Digest: digB, CID: cidC, Platforms: []string{"linux/amd64"}})
	if len(f.Images) != 2 {
		t.Fatalf("Put did not replace: %d entries", len(f.Images))
	}
	e, ok := f.Lookup("a", "plain")
	if !ok || e.Digest != digB || e.CID != cidC || e.Platforms[0] != "linux/amd64" {
		t.Fatalf("Lookup = %+v, %v", e, ok)
	}
	if _, ok := f.Lookup("a", "encrypted"); ok {
		t.Error("found a mode never put")
	}
	if !f.Remove("a", "plain") || f.Remove("a", "plain") {
		t.Error("Remove")
	}
	if _, ok := f.Lookup("a", "plain"); ok || len(f.Images) != 1 {
		t.Error("entry still there after Remove")
	}
}

func TestReadMissing(t *testing.T) {
	f, err := Read(filepath.Join(t.TempDir(), "mirrors.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || len(f.Images) != 0 {
		t.Errorf("Read of a missing file = %+v", f)
	}
}

func TestReadErrors(t *testing.T) {
	entry := "  - source: docker.io/library/alpine:3.20\n    mode: plain\n    digest: " + digA + "\n    platforms: []\n    cid: " + cidA + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "m.lock:1: the file is empty"},
		{"syntax", "version: 1\nimages: [\n", "m.lock:2: invalid YAML: did not find expected node content"},
		{"not a mapping", "- a\n", "m.lock:1:1: expected a mapping"},
		{"no version", "images: []\n", "m.lock:1:1: version: required field is missing"},
		{"version 2", "version: 2\nimages: []\n", "m.lock:1:10: version: unsupported version 2 (this mirror reads version 1)"},
		{"version string", "version: \"1\"\nimages: []\n", "m.lock:1:10: version: expected an integer"},
		{"unknown top", "version: 1\nimages: []\ncreated: today\n", "m.lock:3:1: created: unknown field (want one of: version, images)"},
		{"no images", "version: 1\n", "m.lock:1:1: images: required field is missing"},
		{"unknown entry field", "version: 1\nimages:\n" + entry + "    size: 3\n", "m.lock:8:5: images[0].size: unknown field (want one of: source, mode, digest, platforms, cid, configs, pin, upstream, referrers, push)"},
		{"bad mode", "version: 1\nimages:\n" + strings.Replace(entry, "mode: plain", "mode: zstd", 1), "m.lock:4:11: images[0].mode: unknown mode \"zstd\" (want plain, estargz or encrypted)"},
		{"bad digest", "version: 1\nimages:\n" + strings.Replace(entry, digA, "sha256:abc", 1), "m.lock:5:13: images[0].digest: invalid digest \"sha256:abc\": invalid checksum digest length"},
		{"bad cid", "version: 1\nimages:\n" + strings.Replace(entry, cidA, "bafynotacid", 1), "m.lock:7:10: images[0].cid: \"bafynotacid\" is not a CID: length greater than remaining number of bytes in buffer"},
		{"missing cid", "version: 1\nimages:\n" + strings.Replace(entry, "    cid: "+cidA+"\n", "", 1), "m.lock:3:5: images[0].cid: required field is missing"},
		{"bad platform", "version: 1\nimages:\n" + strings.Replace(entry, "[]", "[linux]", 1), "m.lock:6:17: images[0].platforms[0]: invalid platform \"linux\": want os/arch[/variant]"},
		{"duplicate", "version: 1\nimages:\n" + entry + entry, "m.lock:8:5: images[1]: duplicate entry for docker.io/library/alpine:3.20 in mode plain (first at line 3)"},
		{"bad config digest", "version: 1\nimages:\n" + entry + "    configs: [sha256:abc]\n", "m.lock:8:15: images[0].configs[0]: invalid digest \"sha256:abc\": invalid checksum digest length"},
		{"push without digest", "version: 1\nimages:\n" + entry + "    push:\n      - ref: r.example.com/a:1\n", "m.lock:9:9: images[0].push[0].digest: required field is missing"},
		{"two documents", "version: 1\nimages: []\n---\nversion: 1\n", "m.lock:3:1: more than one YAML document"},
		{"number source", "version: 1\nimages:\n" + strings.Replace(entry, "docker.io/library/alpine:3.20", "3.20", 1), "m.lock:3:13: images[0].source: expected a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.lock", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("error is not ErrInvalid")
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mirrors.lock")
	f := sample()
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != string(f.Marshal()) {
		t.Error("written bytes differ from Marshal")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}

	// A no-op rewrite leaves the file alone (same inode, same bytes).
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if !os.SameFile(st, st2) {
		t.Error("a no-op rewrite replaced the file")
	}

	// A change replaces it and keeps its mode.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f.Remove("oci:layouts/app:v2", "plain")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if strings.Contains(string(got), "oci:") {
		t.Error("change not written")
	}
	st3, _ := os.Stat(path)
	if st3.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", st3.Mode().Perm())
	}
	assertNoTemp(t, filepath.Dir(path))
}

func TestWriteFileRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mirrors.lock")
	f := New()
	f.Put(Entry{Source: "a", Mode: "plain", Digest: "nope", CID: cidA})
	err := f.WriteFile(path)
	if err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	want := "writing lockfile " + path + ": images[0].digest: invalid digest \"nope\": invalid checksum digest format"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("an invalid file was written")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"write", func() {
			writeTemp = func(f *os.File, b []byte) (int, error) {
				n, _ := f.Write(b[:len(b)/2]) // a torn write
				return n, boom
			}
		}},
		{"sync", func() { syncTemp = func(*os.File) error { return boom } }},
		{"rename", func() { renameTemp = func(string, string) error { return boom } }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, s, r := writeTemp, syncTemp, renameTemp
			t.Cleanup(func() { writeTemp, syncTemp, renameTemp = w, s, r })

			dir := t.TempDir()
			path := filepath.Join(dir, "mirrors.lock")
			old := sample()
			if err := old.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)

			tc.setup()
			f := sample()
			f.Put(Entry{Source: "docker.io/library/busybox:1", Mode: "plain", Digest: digE, CID: cidA})
			err := f.WriteFile(path)
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want boom", err)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Error("the old file changed after a failed write")
			}
			assertNoTemp(t, dir)
		})
	}
}

func TestWriteFileNewFileFails(t *testing.T) {
	// No old file, failing write: nothing is left behind.
	s := syncTemp
	t.Cleanup(func() { syncTemp = s })
	syncTemp = func(*os.File) error { return errors.New("boom") }
	dir := t.TempDir()
	if err := sample().WriteFile(filepath.Join(dir, "mirrors.lock")); err == nil {
		t.Fatal("no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "mirrors.lock" {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestUpstreamField: upstream: is written after pin: and before push:,
// reads back, is optional (older lockfiles read as before, see the golden
// files), and a malformed one is a positioned error.
func TestUpstreamField(t *testing.T) {
	f := New()
	f.Put(Entry{
		Source: "docker.io/library/alpine:3.20", Mode: "plain", Digest: digA, Platforms: []string{}, CID: cidA, Pin: pinA,
		Upstream: pinA, Push: []PushTarget{{Ref: "r.example.com/a:1", Digest: digD}},
	})
	b := f.Marshal()
	want := "    pin: " + pinA + "\n    upstream: " + pinA + "\n    push:\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("marshalled:\n%s\nwant it to contain\n%s", b, want)
	}
	g, err := Parse("m.lock", b)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := g.Lookup("docker.io/library/alpine:3.20", "plain"); !ok || e.Upstream != pinA {
		t.Errorf("read back: %+v", e)
	}
	if err := g.Validate(); err != nil {
		t.Error(err)
	}
	bad := strings.Replace(string(b), "upstream: "+pinA, "upstream: notacid", 1)
	if _, err := Parse("m.lock", []byte(bad)); err == nil || !strings.Contains(err.Error(), "m.lock:10:15: images[0].upstream: \"notacid\" is not a CID") {
		t.Errorf("bad upstream: %v", err)
	}
}
