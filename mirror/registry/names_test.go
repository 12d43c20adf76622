package registry

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCanonicalRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"alpine":                         "docker.io/library/alpine:latest",
		"alpine:3.20":                    "docker.io/library/alpine:3.20",
		"docker.io/library/nginx:1.27":   "docker.io/library/nginx:1.27",
		"ghcr.io/acme/app:1.2.3":         "ghcr.io/acme/app:1.2.3",
		"localhost:5000/x":               "localhost:5000/x:latest",
		"alpine@" + d:                    "docker.io/library/alpine@" + d,
		"alpine:3.20@" + d:               "docker.io/library/alpine:3.20@" + d,
		"index.docker.io/library/alpine": "docker.io/library/alpine:latest",
	} {
		got, err := CanonicalRef(in)
		if err != nil || got != want {
			t.Errorf("CanonicalRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := CanonicalRef("UPPER::bad"); err == nil {
		t.Error("bad reference accepted")
	}
}
func TestCanonicalRepo(t *testing.T) {
	for _, tc := range []struct {
		ns, name, want string
	}{
		{"", "alpine", "docker.io/library/alpine"},
		{"", "library/alpine", "docker.io/library/alpine"},
		{"", "docker.io/library/alpine", "docker.io/library/alpine"},
		{"", "index.docker.io/library/alpine", "docker.io/library/alpine"},
		{"", "registry-1.docker.io/library/alpine", "docker.io/library/alpine"},
		{"", "docker.io/alpine", "docker.io/library/alpine"},
		{"", "acme/app", "docker.io/acme/app"},
		{"", "ghcr.io/acme/app", "ghcr.io/acme/app"},
		{"", "localhost/app", "localhost/app"},
		{"", "127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c"},
		{"docker.io", "library/alpine", "docker.io/library/alpine"},
		{"docker.io", "alpine", "docker.io/library/alpine"},
		{"registry-1.docker.io", "library/alpine", "docker.io/library/alpine"},
		{"ghcr.io", "acme/app", "ghcr.io/acme/app"},
		{"GHCR.io", "acme/app", "ghcr.io/acme/app"},
		{"", "Bad/name", ""},
		{"", "a//b", ""},
		{"", "a/../b", ""},
		{"", "", ""},
		{"bad host!", "a", ""},
	} {
		got, ok := CanonicalRepo(tc.ns, tc.name)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("CanonicalRepo(%q, %q) = %q, %v; want %q", tc.ns, tc.name, got, ok, tc.want)
		}
	}
}

func TestSplitSource(t *testing.T) {
	for _, tc := range []struct {
		src, repo, tag string
		ok             bool
	}{
		{"docker.io/library/alpine:3.20", "docker.io/library/alpine", "3.20", true},
		{"docker://alpine:3.20", "docker.io/library/alpine", "3.20", true},
		{"ghcr.io/acme/app:1.2.3@sha256:" + string(bytes.Repeat([]byte("a"), 64)), "ghcr.io/acme/app", "1.2.3", true},
		{"ghcr.io/acme/app@sha256:" + string(bytes.Repeat([]byte("a"), 64)), "ghcr.io/acme/app", "", true},
		{"127.0.0.1:5000/x:y", "127.0.0.1:5000/x", "y", true},
		{"127.0.0.1:5000/x", "127.0.0.1:5000/x", "", true},
		{"oci:/srv/layout:tag", "", "", false},
		{"docker-archive:/tmp/a.tar", "", "", false},
	} {
		repo, tag, ok := SplitSource(tc.src)
		if repo != tc.repo || tag != tc.tag || ok != tc.ok {
			t.Errorf("SplitSource(%q) = %q %q %v; want %q %q %v", tc.src, repo, tag, ok, tc.repo, tc.tag, tc.ok)
		}
	}
}

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
		if got, ok := CanonicalRepo(tc.ns, tc.name); !ok || got != tc.want {
			t.Errorf("CanonicalRepo(%q, %q) = %q, %v; want %q", tc.ns, tc.name, got, ok, tc.want)
		}
	}
	for in, want := range map[string]string{
		"127.0.0.1:15000/test/hello": "127.0.0.1_15000/test/hello",
		"docker.io/library/alpine":   "docker.io/library/alpine",
	} {
		if got := FoldPort(in); got != want {
			t.Errorf("FoldPort(%q) = %q, want %q", in, got, want)
		}
		if got, ok := CanonicalRepo("", FoldPort(in)); !ok || got != in {
			t.Errorf("the fold of %q does not come back: %q", in, got)
		}
	}
}

// TestNames: one grammar for every caller. The same reference parses to
// the same name in the mirrors list (ParseName), the compose rewrite
// (CanonicalRef) and mirror serve (SplitSource, CanonicalRepo): IPv6
// hosts, ports, Docker Hub's docker.io/library defaults and digests.
func TestNames(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in              string
		registry, repo  string // of ParseName
		tag, digest     string
		canonical       string // CanonicalRef
		lookup, lookTag string // SplitSource
		folded          string // FoldPort(lookup)
	}{
		{"alpine", "docker.io", "library/alpine", "", "", "docker.io/library/alpine:latest", "docker.io/library/alpine", "", "docker.io/library/alpine"},
		{"alpine:3.20", "docker.io", "library/alpine", "3.20", "", "docker.io/library/alpine:3.20", "docker.io/library/alpine", "3.20", "docker.io/library/alpine"},
		{"library/alpine:3.20", "docker.io", "library/alpine", "3.20", "", "docker.io/library/alpine:3.20", "docker.io/library/alpine", "3.20", "docker.io/library/alpine"},
		{"docker.io/alpine:3.20", "docker.io", "library/alpine", "3.20", "", "docker.io/library/alpine:3.20", "docker.io/library/alpine", "3.20", "docker.io/library/alpine"},
		{"index.docker.io/acme/app:1", "docker.io", "acme/app", "1", "", "docker.io/acme/app:1", "docker.io/acme/app", "1", "docker.io/acme/app"},
		{"acme/app@" + d, "docker.io", "acme/app", "", d, "docker.io/acme/app@" + d, "docker.io/acme/app", "", "docker.io/acme/app"},
		{"ghcr.io/acme/app:1.2.3@" + d, "ghcr.io", "acme/app", "1.2.3", d, "ghcr.io/acme/app:1.2.3@" + d, "ghcr.io/acme/app", "1.2.3", "ghcr.io/acme/app"},
		{"localhost/app:1", "localhost", "app", "1", "", "localhost/app:1", "localhost/app", "1", "localhost/app"},
		{"localhost:5000/app", "localhost:5000", "app", "", "", "localhost:5000/app:latest", "localhost:5000/app", "", "localhost_5000/app"},
		{"127.0.0.1:15000/test/hello:1.0", "127.0.0.1:15000", "test/hello", "1.0", "", "127.0.0.1:15000/test/hello:1.0", "127.0.0.1:15000/test/hello", "1.0", "127.0.0.1_15000/test/hello"},
		{"registry.example.com:8443/a/b/c@" + d, "registry.example.com:8443", "a/b/c", "", d, "registry.example.com:8443/a/b/c@" + d, "registry.example.com:8443/a/b/c", "", "registry.example.com_8443/a/b/c"},
		{"[::1]:5000/app:1", "[::1]:5000", "app", "1", "", "[::1]:5000/app:1", "[::1]:5000/app", "1", "[::1]:5000/app"},
		{"[::1]/app", "[::1]", "app", "", "", "[::1]/app:latest", "[::1]/app", "", "[::1]/app"},
		{"[2001:db8::1]:443/team/app:v2@" + d, "[2001:db8::1]:443", "team/app", "v2", d, "[2001:db8::1]:443/team/app:v2@" + d, "[2001:db8::1]:443/team/app", "v2", "[2001:db8::1]:443/team/app"},
	} {
		n, err := ParseName(tc.in)
		if err != nil {
			t.Errorf("ParseName(%q): %v", tc.in, err)
			continue
		}
		if want := (Name{tc.registry, tc.repo, tc.tag, tc.digest}); n != want {
			t.Errorf("ParseName(%q) = %+v, want %+v", tc.in, n, want)
		}
		if got, err := CanonicalRef(tc.in); err != nil || got != tc.canonical {
			t.Errorf("CanonicalRef(%q) = %q, %v; want %q", tc.in, got, err, tc.canonical)
		}
		// serve reads the canonical form back from the lockfile.
		for _, src := range []string{tc.in, tc.canonical, "docker://" + tc.in} {
			repo, tag, ok := SplitSource(src)
			wantTag := tc.lookTag
			if src == tc.canonical && tc.tag == "" && tc.digest == "" {
				wantTag = "latest"
			}
			if !ok || repo != tc.lookup || tag != wantTag {
				t.Errorf("SplitSource(%q) = %q %q %v; want %q %q", src, repo, tag, ok, tc.lookup, wantTag)
			}
		}
		if got, ok := CanonicalRepo("", tc.lookup); !ok || got != tc.lookup {
			t.Errorf("CanonicalRepo(%q) = %q, %v: not a fixed point", tc.lookup, got, ok)
		}
		if got := FoldPort(tc.lookup); got != tc.folded {
			t.Errorf("FoldPort(%q) = %q, want %q", tc.lookup, got, tc.folded)
		}
		if got, ok := CanonicalRepo("", tc.folded); !ok || got != tc.lookup {
			t.Errorf("the fold of %q does not come back: %q, %v", tc.lookup, got, ok)
		}
	}
	// A containerd mirror request names the host with ?ns=, IPv6 too.
	if got, ok := CanonicalRepo("[::1]:5000", "app"); !ok || got != "[::1]:5000/app" {
		t.Errorf("CanonicalRepo(ns=[::1]:5000, app) = %q, %v", got, ok)
	}
	for _, bad := range []string{
		"docker://alpine:3",             // the caller strips docker://
		"https://ghcr.io/acme/app:1",    // a URL
		"Docker.io/Library/alpine:3",    // upper case path
		"alpine:bad tag",                // tag
		"-bad.example.com/app:1",        // host
		"[::1/app:1",                    // unclosed bracket
		"[fe80::1%25eth0]:5000/app:1",   // a zone is no host
		"alpine@sha256:abc",             // short digest
		"ghcr.io/acme/app@md5:" + d[7:], // unknown algorithm
	} {
		_, err := ParseName(bad)
		if err == nil {
			t.Errorf("ParseName(%q) accepted", bad)
			continue
		}
		if !errors.Is(err, ErrBadReference) || !strings.HasPrefix(err.Error(), "invalid reference ") {
			t.Errorf("ParseName(%q) = %v: want an ErrBadReference `invalid reference …`", bad, err)
		}
		if _, _, ok := SplitSource(bad); ok && !strings.HasPrefix(bad, "docker://") {
			t.Errorf("SplitSource(%q) accepted", bad)
		}
	}
	for _, bad := range []struct{ ns, name string }{{"", "[::1/app"}, {"[::1", "app"}, {"", "[::1]:5000/App"}} {
		if got, ok := CanonicalRepo(bad.ns, bad.name); ok {
			t.Errorf("CanonicalRepo(%q, %q) = %q, accepted", bad.ns, bad.name, got)
		}
	}
}

// TestKindOf: one classification of SOURCE/DEST strings by prefix, with
// the prefix each kind's names carry.
func TestKindOf(t *testing.T) {
	for s, want := range map[string]Kind{
		"oci:/srv/layout:v1":        KindOCI,
		"oci:layout":                KindOCI,
		"docker-archive:a.tar":      KindDockerArchive,
		"docker-archive:a.tar:x:1":  KindDockerArchive,
		"alpine:3.20":               KindRegistry,
		"docker://alpine:3.20":      KindRegistry,
		"localhost:5000/oci:1":      KindRegistry,
		"[::1]:5000/docker-archive": KindRegistry,
	} {
		if got := KindOf(s); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", s, got, want)
		}
		if p := KindOf(s).Prefix(); want != KindRegistry && p != string(want)+":" || want == KindRegistry && p != "" {
			t.Errorf("%s.Prefix() = %q", want, p)
		}
	}
	for _, s := range []string{"oci:/srv/layout:v1", "docker-archive:a.tar", "ghcr.io/acme/app:1"} {
		r, err := ParseRef(s, Options{})
		if err != nil || r.Kind != KindOf(s) || r.String() != s {
			t.Errorf("ParseRef(%q) = %v (%s), %v", s, r, r.Kind, err)
		}
	}
}
