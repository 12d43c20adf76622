package config

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goodEnv is the environment the good lists are loaded with.
var goodEnv = map[string]string{
	"IPFS_HOST": "ipfs.internal",
	"REGISTRY":  "registry.example.com",
	"KEYS":      "keys",
	"MIRROR":    "mirror.example.com/ipfs",
}

// TestGood loads every testdata/good/*.yaml and compares the resolved File
// with NAME.golden.json.
func TestGood(t *testing.T) {
	lists, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(lists) == 0 {
		t.Fatalf("no good lists: %v", err)
	}
	for _, path := range lists {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Load(path, WithEnv(goodEnv))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(path, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("resolved list differs from %s (go test -update to accept):\n%s", golden, got)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "mirrors.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v; want a not-exist error", err)
	}
}

// composeFS is what WithReadFile serves to the error tests.
var composeFS = map[string]string{
	"compose.yaml":        "services:\n  web:\n    image: nginx:1.27\n  cache:\n    image: redis:${REDIS_TAG}\n",
	"bad/compose.yaml":    "services:\n  web:\n    image: Nginx:1\n  db:\n    image: [postgres]\n",
	"empty/compose.yaml":  "services:\n  builder:\n    build: .\n",
	"broken/compose.yaml": "services:\n  web: [\n",
	"noservices.yaml":     "volumes: {}\n",
	"other/compose.yaml":  "services:\n  proxy:\n    image: docker.io/library/nginx:1.27\n",
}

func readFake(path string) ([]byte, error) {
	if s, ok := composeFS[filepath.ToSlash(path)]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

func parseTest(data string) (*File, error) {
	return Parse("mirrors.yaml", []byte(data),
		WithEnv(map[string]string{"SET": "registry.example.com", "EMPTY": ""}),
		WithReadFile(readFake))
}

const v = "version: 1\n"

// errorCases are malformed lists and the exact error each gives.
var errorCases = []struct{ name, in, want string }{
	{"empty file", "", "mirrors.yaml:1:1: the file is empty"},
	{"comments only", "# nothing\n", "mirrors.yaml:1:1: the file is empty"},
	{"syntax", v + "images: [\n", "mirrors.yaml:2: invalid YAML: did not find expected node content"},
	{"two documents", v + "images: []\n---\nversion: 1\n", "mirrors.yaml:3:1: a second YAML document; the file must hold one"},
	{"top not a mapping", "- alpine:3\n", "mirrors.yaml:1:1: expected a mapping at the top level, got a sequence"},
	{"missing version", "images:\n  - source: alpine:3\n", "mirrors.yaml:1:1: version: required field is missing (write version: 1)"},
	{"wrong version", "version: 2\nimages: {}\n", "mirrors.yaml:1:10: version: unsupported version 2 (this mirror reads version 1)"},
	{"version not an int", "version: \"1\"\nimages:\n  - source: alpine:3\n", "mirrors.yaml:1:10: version: expected an integer, got a string"},
	{"missing images", v, "mirrors.yaml:1:1: images: required field is missing"},
	{"images empty", v + "images: []\n", "mirrors.yaml:2:9: images: must not be empty"},
	{"prune not a boolean", v + "prune: yes please\nimages:\n  - source: a:1\n", "mirrors.yaml:2:8: prune: expected a boolean, got a string"},
	{"images a mapping", v + "images: {source: a}\n", "mirrors.yaml:2:9: images: expected a sequence, got a mapping"},
	{"unknown top field", v + "mirrors: []\nimages:\n  - source: a:1\n", "mirrors.yaml:2:1: mirrors: unknown field (want one of: version, ipfs, defaults, immutable_tags, prune, images)"},
	{"unknown entry field", v + "images:\n  - source: a\n    tag: [\"1\"]\n", "mirrors.yaml:3:13: images[0].source: \"a\" names no tag or digest: add tags, or :TAG or @DIGEST to the source\n" +
		"mirrors.yaml:4:5: images[0].tag: unknown field (want one of: source, compose, tags, modes, platforms, push, encrypt, estargz, referrers, verify)"},
	{"duplicate key", v + "images:\n  - source: a:1\n    source: a:2\n", "mirrors.yaml:4:5: images[0].source: duplicate key (first at line 3)"},
	{"neither source nor compose", v + "images:\n  - modes: [plain]\n", "mirrors.yaml:3:5: images[0]: an entry needs source or compose"},
	{"source and compose", v + "images:\n  - source: a:1\n    compose: compose.yaml\n", "mirrors.yaml:4:5: images[0]: source and compose are mutually exclusive"},
	{"source not a string", v + "images:\n  - source: [alpine]\n", "mirrors.yaml:3:13: images[0].source: expected a string, got a sequence"},
	{"bad reference", v + "images:\n  - source: Docker.io/Library/alpine:3\n", "mirrors.yaml:3:13: images[0].source: invalid reference \"Docker.io/Library/alpine:3\": repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: Library/alpine"},
	{"bad digest", v + "images:\n  - source: alpine@sha256:abc\n", "mirrors.yaml:3:13: images[0].source: invalid reference \"alpine@sha256:abc\": invalid digest \"sha256:abc\": invalid checksum digest length"},
	{"url scheme", v + "images:\n  - source: https://ghcr.io/a/b:1\n", "mirrors.yaml:3:13: images[0].source: invalid reference \"https://ghcr.io/a/b:1\": remove the https:// scheme"},
	{"repo without tags", v + "images:\n  - source: docker.io/library/alpine\n", "mirrors.yaml:3:13: images[0].source: \"docker.io/library/alpine\" names no tag or digest: add tags, or :TAG or @DIGEST to the source"},
	{"tags on a tagged ref", v + "images:\n  - source: ghcr.io/acme/app:1.2.3\n    tags: [\"1.2.4\"]\n", "mirrors.yaml:4:5: images[0].tags: not allowed: source \"ghcr.io/acme/app:1.2.3\" already names a tag"},
	{"tags on a digest ref", v + "images:\n  - source: alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n    tags: [\"3\"]\n", "mirrors.yaml:4:5: images[0].tags: not allowed: source \"alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\" already names a digest"},
	{"tags on oci", v + "images:\n  - source: oci:layout\n    tags: [v1]\n", "mirrors.yaml:4:5: images[0].tags: not allowed with an oci: source (write oci:DIR:TAG)"},
	{"empty tag list", v + "images:\n  - source: alpine\n    tags: []\n", "mirrors.yaml:4:11: images[0].tags: must not be empty"},
	{"bad tag", v + "images:\n  - source: alpine\n    tags: [\"3.20\", \"-rc\"]\n", "mirrors.yaml:4:20: images[0].tags[1]: invalid tag \"-rc\""},
	{"tags a string", v + "images:\n  - source: alpine\n    tags: \"3.20\"\n", "mirrors.yaml:4:11: images[0].tags: expected a list of tags or a mapping of selectors, got a string"},
	{"empty selector", v + "images:\n  - source: alpine\n    tags: {}\n", "mirrors.yaml:4:11: images[0].tags: no selector: set allow, deny, semver or latest"},
	{"bad semver", v + "images:\n  - source: nginx\n    tags: {semver: \">=1.x.y.z\"}\n", "mirrors.yaml:4:20: images[0].tags.semver: invalid semver range \">=1.x.y.z\": improper constraint: \">=1.x.y.z\""},
	{"bad regex", v + "images:\n  - source: nginx\n    tags: {allow: ['^1\\.27'], deny: ['(alpine']}\n", "mirrors.yaml:4:38: images[0].tags.deny[0]: invalid regular expression \"(alpine\": error parsing regexp: missing closing ): `(alpine`"},
	{"latest zero", v + "images:\n  - source: nginx\n    tags: {latest: 0}\n", "mirrors.yaml:4:20: images[0].tags.latest: must be at least 1, got 0"},
	{"latest a string", v + "images:\n  - source: nginx\n    tags: {latest: three}\n", "mirrors.yaml:4:20: images[0].tags.latest: expected an integer, got a string"},
	{"unknown selector", v + "images:\n  - source: nginx\n    tags: {semverRange: \"^1\"}\n", "mirrors.yaml:4:12: images[0].tags.semverRange: unknown field (want one of: allow, deny, semver, latest)"},
	{"bad mode", v + "images:\n  - source: a:1\n    modes: [plain, zstd]\n", "mirrors.yaml:4:20: images[0].modes[1]: unknown mode \"zstd\" (want plain, estargz or encrypted)"},
	{"repeated mode", v + "images:\n  - source: a:1\n    modes: [estargz, encrypted, estargz]\n    encrypt: {recipients: [\"pgp:a@example.com\"]}\n", "mirrors.yaml:4:33: images[0].modes[2]: duplicate mode \"estargz\""},
	{"empty modes", v + "images:\n  - source: a:1\n    modes: []\n", "mirrors.yaml:4:12: images[0].modes: must not be empty"},
	{"platform without arch", v + "images:\n  - source: a:1\n    platforms: [linux]\n", "mirrors.yaml:4:17: images[0].platforms[0]: invalid platform \"linux\": want os/arch[/variant]"},
	{"platform unknown arch", v + "images:\n  - source: a:1\n    platforms: [linux/amd46]\n", "mirrors.yaml:4:17: images[0].platforms[0]: invalid platform \"linux/amd46\": unknown architecture \"amd46\""},
	{"platform repeated", v + "defaults:\n  platforms: [linux/amd64, linux/amd64]\nimages:\n  - source: a:1\n", "mirrors.yaml:3:28: defaults.platforms[1]: duplicate platform \"linux/amd64\""},
	{"encrypted without recipients", v + "images:\n  - source: a:1\n    modes: [plain, encrypted]\n", "mirrors.yaml:4:12: images[0].modes: encrypted mode needs encrypt.recipients"},
	{"encrypted from defaults", v + "defaults: {modes: [encrypted]}\nimages:\n  - source: a:1\n", "mirrors.yaml:4:5: images[0].modes: encrypted mode needs encrypt.recipients"},
	{"empty recipients", v + "images:\n  - source: a:1\n    modes: [encrypted]\n    encrypt: {recipients: []}\n", "mirrors.yaml:5:27: images[0].encrypt.recipients: must not be empty"},
	{"bad recipient", v + "images:\n  - source: a:1\n    modes: [encrypted]\n    encrypt: {recipients: [\"rsa:key.pem\"]}\n", "mirrors.yaml:5:28: images[0].encrypt.recipients[0]: invalid recipient \"rsa:key.pem\": want jwe:PUBKEY, pkcs7:CERT or pgp:EMAIL"},
	{"encrypt without encrypted", v + "images:\n  - source: a:1\n    encrypt: {recipients: [\"jwe:k.pem\"]}\n", "mirrors.yaml:4:14: images[0].encrypt: set, but modes has no encrypted"},
	{"estargz level", v + "images:\n  - source: a:1\n    modes: [estargz]\n    estargz: {compression_level: 10}\n", "mirrors.yaml:5:34: images[0].estargz.compression_level: must be between 1 and 9, got 10"},
	{"unset variable", v + "images:\n  - source: ${REGISTRY}/app:1\n", "mirrors.yaml:3:13: images[0].source: environment variable \"REGISTRY\" is not set"},
	{"required variable", v + "images:\n  - source: $SET/app:${TAG:?set TAG to the release}\n", "mirrors.yaml:3:13: images[0].source: environment variable \"TAG\" is not set: set TAG to the release"},
	{"bad variable", v + "images:\n  - source: ${1X}/app:1\n", "mirrors.yaml:3:13: images[0].source: bad variable reference \"${1X}\""},
	{"unterminated variable", v + "ipfs: {api: \"http://${HOST:5001\"}\nimages:\n  - source: a:1\n", "mirrors.yaml:2:13: ipfs.api: unterminated variable reference \"${HOST:5001\""},
	{"bad api", v + "ipfs: {api: localhost:5001}\nimages:\n  - source: a:1\n", "mirrors.yaml:2:13: ipfs.api: invalid API address \"localhost:5001\": want a multiaddr (/ip4/127.0.0.1/tcp/5001) or an http(s) URL"},
	{"pin not a bool", v + "ipfs: {pin: \"no\"}\nimages:\n  - source: a:1\n", "mirrors.yaml:2:13: ipfs.pin: expected a boolean, got a string"},
	{"bad immutable_tags", v + "immutable_tags: '^v\\d+(\\.\\d+'\nimages:\n  - source: a:1\n", "mirrors.yaml:2:17: immutable_tags: invalid regular expression \"^v\\\\d+(\\\\.\\\\d+\": error parsing regexp: missing closing ): `^v\\d+(\\.\\d+`"},
	{"template syntax", v + "images:\n  - source: a:1\n    push: [\"r.example.com/a:{{.Tag\"]\n", "mirrors.yaml:4:12: images[0].push[0]: invalid template: template: push:1: unclosed action"},
	{"template field", v + "images:\n  - source: a:1\n    push: [\"r.example.com/a:{{.Version}}\"]\n", "mirrors.yaml:4:12: images[0].push[0]: template: push:1:18: executing \"push\" at <.Version>: can't evaluate field Version in type config.PushData"},
	{"template without tag", v + "images:\n  - source: a:1\n    push: [\"r.example.com/{{.Repo}}\"]\n", "mirrors.yaml:4:12: images[0].push[0]: template gives \"r.example.com/library/a\", which names no tag"},
	{"template digest", v + "images:\n  - source: a:1\n    push: [\"r.example.com/a@{{.Digest}}\"]\n", "mirrors.yaml:4:12: images[0].push[0]: template gives \"r.example.com/a@sha256:0000000000000000000000000000000000000000000000000000000000000000\": push targets must name a tag, not a digest"},
	{"template same for every tag", v + "images:\n  - source: a\n    tags: {latest: 2}\n    push: [\"r.example.com/a:mirror\"]\n", "mirrors.yaml:5:12: images[0].push[0]: template gives \"r.example.com/a:mirror\" for every tag: use {{.Tag}}"},
	{"template same for every mode", v + "images:\n  - source: a:1\n    modes: [plain, estargz]\n    push: [\"r.example.com/a:{{.Tag}}\"]\n", "mirrors.yaml:5:12: images[0].push[0]: template gives \"r.example.com/a:1\" for both modes plain and estargz: use {{.Mode}}"},
	{"defaults template", v + "defaults: {push: [\"r.example.com/{{.Repo}}:{{.Tag}}\"]}\nimages:\n  - source: docker-archive:app.tar\n", "mirrors.yaml:4:5: images[0]: defaults.push[0]: template gives invalid reference \"r.example.com/app:\": r.example.com/app: must specify a tag name after the colon"},
	{"duplicate entry", v + "images:\n  - source: alpine\n    tags: [\"3.20\", \"3.19\"]\n  - source: docker.io/library/alpine:3.20\n", "mirrors.yaml:5:13: images[1].source: duplicate: docker.io/library/alpine:3.20 is also mirrored by images[0]"},
	{"duplicate oci", v + "images:\n  - source: oci:./layout:v1\n  - source: oci:layout:v1\n", "mirrors.yaml:4:13: images[1].source: duplicate: oci:layout:v1 is also mirrored by images[0]"},
	{"compose missing", v + "images:\n  - compose: nope/compose.yaml\n", "mirrors.yaml:3:14: images[0].compose: reading compose file: open nope/compose.yaml: file does not exist"},
	{"compose with tags", v + "images:\n  - compose: other/compose.yaml\n    tags: [\"1\"]\n", "mirrors.yaml:4:5: images[0].tags: not allowed with compose (the compose file names the tags)"},
	{"compose unset variable", v + "images:\n  - compose: other/compose.yaml\n  - compose: compose.yaml\n", "compose.yaml:5:12: services.cache.image: environment variable \"REDIS_TAG\" is not set"},
	{"compose no image", v + "images:\n  - compose: empty/compose.yaml\n", "mirrors.yaml:3:14: images[0].compose: compose file empty/compose.yaml names no image (services.*.image)"},
	{"compose no services", v + "images:\n  - compose: noservices.yaml\n", "noservices.yaml:1:1: services: required field is missing"},
	{"compose syntax", v + "images:\n  - compose: broken/compose.yaml\n", "broken/compose.yaml:2: invalid YAML: did not find expected node content"},
	{"compose and explicit", v + "images:\n  - source: nginx:1.27\n  - compose: other/compose.yaml\n", "mirrors.yaml:4:14: images[1].compose: image docker.io/library/nginx:1.27 (services proxy) is also mirrored by images[0]"},
	{"merge of a scalar", v + "images:\n  - <<: 3\n    source: a:1\n", "mirrors.yaml:3:9: images[0]: a merge key (<<) takes mappings, got an integer"},
}

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseTest(tc.in)
			if err == nil {
				t.Fatalf("no error (got %d images); want %s", len(f.Images), tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			checkErrors(t, err)
		})
	}
}

// checkErrors asserts that err is made only of *Errors with positions.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%v: not ErrInvalid", err)
	}
	es := Errors(err)
	if len(es) == 0 || len(es) != len(strings.Split(err.Error(), "\n")) {
		t.Fatalf("%d *Errors in %q", len(es), err)
	}
	for _, e := range es {
		if e.File == "" || e.Line < 1 || e.Column < 0 || e.Msg == "" {
			t.Errorf("error without a position: %#v", e)
		}
	}
}

// TestErrorsCollected checks that all problems of a file are reported, in
// order of position, including those inside a compose file (after the
// entry naming it).
func TestErrorsCollected(t *testing.T) {
	in := `version: 1
bogus: 1
defaults:
  modes: [fast]
images:
  - source: alpine
    tags: {semver: "~>"}
  - compose: bad/compose.yaml
  - source: ghcr.io/acme/app:1
    platforms: [linux/sparc]
`
	_, err := parseTest(in)
	want := []string{
		`mirrors.yaml:2:1: bogus: unknown field (want one of: version, ipfs, defaults, immutable_tags, prune, images)`,
		`mirrors.yaml:4:11: defaults.modes[0]: unknown mode "fast" (want plain, estargz or encrypted)`,
		`mirrors.yaml:7:20: images[0].tags.semver: invalid semver range "~>": improper constraint: "~>"`,
		`bad/compose.yaml:3:12: services.web.image: invalid reference "Nginx:1": repository can only contain the characters ` + "`abcdefghijklmnopqrstuvwxyz0123456789_-./`" + `: Nginx`,
		`bad/compose.yaml:5:12: services.db.image: expected a string, got a sequence`,
		`mirrors.yaml:10:17: images[2].platforms[0]: invalid platform "linux/sparc": unknown architecture "sparc"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
	checkErrors(t, err)
	es := Errors(err)
	if e := es[2]; e.File != "mirrors.yaml" || e.Line != 7 || e.Column != 20 || e.Field != "images[0].tags.semver" || !strings.HasPrefix(e.Msg, "invalid semver range") {
		t.Errorf("fields of the third error: %#v", e)
	}
}

func TestAliasBomb(t *testing.T) {
	// Each level merges the previous one ten times: 10^9 keys if expanded.
	var b strings.Builder
	b.WriteString("version: 1\nx0: &a0 {modes: [plain]}\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("x" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " {<<: [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]}\n")
	}
	b.WriteString("images:\n  - <<: *a9\n    source: a:1\n")
	_, err := parseTest(b.String())
	if err == nil || !strings.Contains(err.Error(), "too many aliases") {
		t.Errorf("err = %v", err)
	}
}

func TestResolved(t *testing.T) {
	f, err := Parse(filepath.Join("lists", "mirrors.yaml"), []byte(`version: 1
immutable_tags: '^v?\d+\.\d+\.\d+$'
defaults:
  modes: [plain, estargz]
  platforms: [linux/amd64]
  push: ["r.example.com/{{.Repo}}:{{.Tag}}-{{.Mode}}"]
images:
  - source: docker.io/library/alpine
    tags: ["3.20"]
  - source: oci:../layouts/app:v1
    platforms: []
    push: []
  - source: ghcr.io/acme/app:1.2.3
    modes: [encrypted]
    encrypt: {recipients: ["jwe:keys/pub.pem", "pgp:ops@example.com", "pkcs7:/abs/cert.pem"]}
`), WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !f.IsImmutable("v1.2.3") || f.IsImmutable("latest") || !f.IPFS.Pin || f.IPFS.API != "" || f.Prune {
		t.Errorf("file settings: %+v", f)
	}
	alpine, oci, app := f.Images[0], f.Images[1], f.Images[2]
	if !reflect.DeepEqual(alpine.Modes, []modes.Mode{modes.Plain, modes.Estargz}) || !reflect.DeepEqual(alpine.Platforms, []string{"linux/amd64"}) {
		t.Errorf("defaults not applied: %+v", alpine)
	}
	if len(oci.Platforms) != 0 || len(oci.Push) != 0 || oci.Path != "layouts/app" || oci.Tag != "v1" {
		t.Errorf("an entry's own [] must override the defaults, path resolved: %+v", oci)
	}
	if want := []string{"jwe:lists/keys/pub.pem", "pgp:ops@example.com", "pkcs7:/abs/cert.pem"}; !reflect.DeepEqual(app.Encrypt.Recipients, want) {
		t.Errorf("recipients = %q, want %q", app.Encrypt.Recipients, want)
	}
	if got := app.LockSource(""); got != "ghcr.io/acme/app:1.2.3" {
		t.Errorf("LockSource = %q", got)
	}
	if got := alpine.LockSource("3.20"); got != "docker.io/library/alpine:3.20" {
		t.Errorf("LockSource = %q", got)
	}
	if got := oci.LockSource("ignored"); got != "oci:../layouts/app:v1" {
		t.Errorf("LockSource = %q", got)
	}
	if alpine.Pos != (Pos{File: "lists/mirrors.yaml", Line: 8, Column: 5}) {
		t.Errorf("Pos = %+v", alpine.Pos)
	}
}

func TestPushTargets(t *testing.T) {
	f, err := parseTest(`version: 1
images:
  - source: alpine
    tags: {latest: 1}
    modes: [plain, estargz]
    push:
      - "r.example.com/mirror/{{.Repo}}:{{.Tag}}-{{.Mode}}"
      - "{{.Registry}}.mirror.example.com/{{.Repo}}:{{.Tag}}-{{.Mode}}"
  - source: docker-archive:images/app.tar.gz
    push: ["r.example.com/{{.Repo}}:{{.Mode}}"]
  - source: alpine:3.20
`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Images[0].PushTargets("3.20.1", "sha256:abc", "estargz")
	want := []string{"r.example.com/mirror/library/alpine:3.20.1-estargz", "docker.io.mirror.example.com/library/alpine:3.20.1-estargz"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PushTargets = %q, %v; want %q", got, err, want)
	}
	got, err = f.Images[1].PushTargets("", "sha256:abc", "plain")
	if err != nil || !reflect.DeepEqual(got, []string{"r.example.com/app:plain"}) {
		t.Errorf("PushTargets = %q, %v", got, err)
	}
	if got, err := f.Images[2].PushTargets("3.20", "", "plain"); got != nil || err != nil {
		t.Errorf("no push: %q, %v", got, err)
	}
	// A tag that makes an invalid reference is an error at run time.
	_, err = f.Images[0].PushTargets("", "sha256:abc", "plain")
	if err == nil || err.Error() != `push[0]: template gives "r.example.com/mirror/library/alpine:-plain": invalid tag "-plain"` {
		t.Errorf("err = %v", err)
	}
	// An Image built by hand works too.
	img := &Image{Kind: registry.KindRegistry, Registry: "ghcr.io", Repo: "a/b", Push: []string{"x.example.com/{{.Repo}}:{{.Tag}}"}}
	if got, err := img.PushTargets("1", "", "plain"); err != nil || got[0] != "x.example.com/a/b:1" {
		t.Errorf("hand-built: %q, %v", got, err)
	}
}

func TestComposeImages(t *testing.T) {
	got, err := ComposeImages("testdata/good/app/compose.yaml", WithEnv(map[string]string{"REDIS_TAG": "7.4"}))
	want := map[string]string{
		"web":    "nginx:1.27",
		"cache":  "redis:7.4",
		"worker": "docker.io/library/nginx:1.27",
		"db":     "postgres",
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ComposeImages = %v, %v; want %v", got, err, want)
	}
	_, err = ComposeImages("bad/compose.yaml", WithReadFile(readFake))
	if err == nil || !strings.HasPrefix(err.Error(), "bad/compose.yaml:3:12: services.web.image: invalid reference") {
		t.Errorf("err = %v", err)
	}
	checkErrors(t, err)
	if _, err := ComposeImages(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "a", "EMPTY": "", "B_2": "b"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"$A/${B_2}", "a/b", ""},
		{"$A$B_2", "ab", ""},
		{"${A}x", "ax", ""},
		{"$$A", "$A", ""},
		{"cost $5 and $", "cost $5 and $", ""},
		{"${MISSING:-def}", "def", ""},
		{"${EMPTY:-def}", "def", ""},
		{"${EMPTY-def}", "", ""},
		{"${MISSING-def}", "def", ""},
		{"${MISSING:-${A}/x}", "a/x", ""},
		{"${A:-${MISSING}}", "a", ""},
		{"${A:?need A}", "a", ""},
		{"${MISSING:?need it}", "", `environment variable "MISSING" is not set: need it`},
		{"${EMPTY:?need it}", "", `environment variable "EMPTY" is empty: need it`},
		{"${EMPTY?}", "", ""},
		{"$MISSING", "", `environment variable "MISSING" is not set`},
		{"${MISSING}", "", `environment variable "MISSING" is not set`},
		{"${A", "", `unterminated variable reference "${A"`},
		{"${}", "", `bad variable reference "${}"`},
		{"${A B}", "", `bad variable reference "${A B}"`},
		{"${A:+x}", "", `bad variable reference "${A:+x}"`},
	} {
		got, err := expand(tc.in, lookup)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("expand(%q) err = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAPI(t *testing.T) {
	for _, ok := range []string{"/ip4/127.0.0.1/tcp/5001", "/dns4/ipfs/tcp/5001", "/ip6/::1/tcp/5001", "http://127.0.0.1:5001", "https://ipfs.example.com"} {
		if err := checkAPI(ok); err != nil {
			t.Errorf("checkAPI(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:5001", "/ip4/1.2.3/tcp/1", "ftp://x", "http://", "/unknown/x"} {
		if err := checkAPI(bad); err == nil {
			t.Errorf("checkAPI(%q) accepted", bad)
		}
	}
}

func TestMessagesAreOneLine(t *testing.T) {
	_, err := parseTest(v + "images:\n  - source: \"a\\nb:1\"\n")
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), `a\nb`) {
		t.Errorf("err = %q", err)
	}
}

func TestRegistryHosts(t *testing.T) {
	for _, tc := range []struct {
		src string
		ok  bool
	}{
		{"localhost:5000/app:1", true},
		{"[::1]:5000/app:1", true},
		{"registry-1.example.com/a/b/c:1", true},
		{"$x.example.com/app:1", false},
		{"-bad.example.com/app:1", false},
	} {
		_, err := parseRegistryRef(tc.src)
		if (err == nil) != tc.ok {
			t.Errorf("parseRegistryRef(%q) err = %v", tc.src, err)
		}
	}
	if err := checkPushRef("$literal.example.com/app:1"); err == nil {
		t.Error("push target with a bad host accepted")
	}
}
