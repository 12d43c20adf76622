package redact

import (
	"bytes"
	"fmt"
	"testing"
)

func TestURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:pw@127.0.0.1:1/api":                                 "http://user:***@127.0.0.1:1/api",
		`ipfs api "https://a:p%40ss@h:5001": bad; Post "http://b:c@x/y"`: `ipfs api "https://a:***@h:5001": bad; Post "http://b:***@x/y"`,
		"http://user@host/":                                              "http://user@host/",
		"/ip4/127.0.0.1/tcp/5001":                                        "/ip4/127.0.0.1/tcp/5001",
		"mail me@example.com: a:b@c":                                     "mail me@example.com: a:b@c",
	} {
		if got := URLs(in); got != want {
			t.Errorf("URLs(%q) = %q, want %q", in, got, want)
		}
	}
	if got := URLPassword("http://u:p%40ss@h/"); len(got) != 2 || got[0] != "p%40ss" || got[1] != "p@ss" {
		t.Errorf("URLPassword: %q", got)
	}
}

func TestSetWriter(t *testing.T) {
	var s Set
	s.Add("SECRETPW", `a"b<c>d`, "ab")
	var buf bytes.Buffer
	w := s.Writer(&buf)
	fmt.Fprintf(w, "x SECRETPW y %q %s ab\n", `a"b<c>d`, "\"a\\\"b\\u003cc\\u003ed\"")
	if got, want := buf.String(), "x *** y \"***\" \"***\" ab\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
