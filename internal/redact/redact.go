// Package redact keeps secrets out of what mirror prints: the passwords of
// URLs (an --ipfs-api / ipfs.api with user:password@), key passwords and
// header values.
//
// Two layers: URLs masks the userinfo password of every URL in a string
// (used where an address is put into an error or a log line), and a Set of
// known secrets scrubs whatever reaches an output (its Writer wraps stdout,
// stderr and the files the CLI writes), so a secret that slipped through
// some message — a library's error quoting a URL, say — is still masked.
package redact

import (
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Mask is what a secret is replaced with.
const Mask = "***"

// userinfo matches "scheme://user:password@" (the password may be empty).
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^/?#@\s:"']*):([^/?#@\s"']*)@`)

// URLs returns s with the password of every URL's userinfo replaced by
// Mask (the user name is kept: it says which account, and is not secret).
// s need not parse as a URL: it may be an error message quoting several.
func URLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}:"+Mask+"@")
}

// URLPassword returns the password of an http(s) URL's userinfo, in the
// forms an output could show it (as written, and percent-decoded); nil when
// there is none.
func URLPassword(s string) []string {
	var out []string
	for _, m := range userinfo.FindAllStringSubmatch(s, -1) {
		if m[2] == "" {
			continue
		}
		out = append(out, m[2])
		if d, err := url.PathUnescape(m[2]); err == nil && d != m[2] {
			out = append(out, d)
		}
	}
	return out
}

// MinLen is the shortest secret a Set scrubs: masking every "a" of an
// output would make it unreadable and hide nothing. Shorter secrets are
// still kept out by the redaction where they are formatted.
const MinLen = 4

// Set is a set of secret strings to mask in every output. The zero value
// is empty and ready; a Set is safe for concurrent use.
type Set struct {
	mu      sync.RWMutex
	secrets []string // longest first
}

// Add adds secrets (empty and shorter than MinLen ones are ignored), with
// the forms JSON and %q quoting would give them.
func (s *Set) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range secrets {
		if len(x) < MinLen {
			continue
		}
		for _, f := range forms(x) {
			if !contains(s.secrets, f) {
				s.secrets = append(s.secrets, f)
			}
		}
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
}

// forms are x and how quoting escapes it (JSON and Go %q escape ", \ and
// control characters, JSON also <, > and &).
func forms(x string) []string {
	out := []string{x}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	if q := r.Replace(x); q != x {
		out = append(out, q)
	}
	j := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "<", `\u003c`, ">", `\u003e`, "&", `\u0026`)
	if q := j.Replace(x); q != x && !contains(out, q) {
		out = append(out, q)
	}
	if e := url.QueryEscape(x); e != x && !contains(out, e) {
		out = append(out, e)
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// String returns str with every secret of the set, and every URL password,
// replaced by Mask.
func (s *Set) String(str string) string {
	if s != nil {
		s.mu.RLock()
		for _, x := range s.secrets {
			if strings.Contains(str, x) {
				str = strings.ReplaceAll(str, x, Mask)
			}
		}
		s.mu.RUnlock()
	}
	return URLs(str)
}

// Writer returns a writer that masks the set's secrets in what it passes
// to w. Each Write is masked on its own: a secret split across two writes
// is not seen, which line-oriented output (every fmt.Fprint*, JSON
// encoders, slog) never does.
func (s *Set) Writer(w io.Writer) *Writer { return &Writer{w: w, set: s} }

// Writer masks secrets on their way to an underlying writer.
type Writer struct {
	w   io.Writer
	set *Set
}

// Write masks p and writes it; it reports len(p) on success.
func (w *Writer) Write(p []byte) (int, error) {
	out := w.set.String(string(p))
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap is the underlying writer (for terminal checks).
func (w *Writer) Unwrap() io.Writer { return w.w }
