package lockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/internal/yamlpos"
)

// Read reads the lockfile at path. A missing file is an empty File (New()),
// not an error; a malformed one is an error made of *Errors with the line
// and column of each problem, joined with errors.Join.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading lockfile: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a lockfile's bytes; filename names it in errors.
func Parse(filename string, data []byte) (*File, error) {
	r := &reader{file: filename}
	f := r.parse(data)
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	return f, nil
}

// Validate checks what WriteFile is about to write: every field Read
// requires is set and well formed, and no source and mode appear twice.
// Field paths index the entries in their written (sorted) order.
func (f *File) Validate() error {
	var errs []error
	seen := map[[2]string]bool{}
	for i, e := range f.normalized() {
		field := "images[" + strconv.Itoa(i) + "]"
		add := func(name string, err error) {
			if err != nil {
				errs = append(errs, &Error{Field: field + "." + name, Msg: err.Error()})
			}
		}
		add("source", checkSource(e.Source))
		add("mode", checkMode(e.Mode))
		add("digest", checkDigest(e.Digest))
		for j, p := range e.Platforms {
			add("platforms["+strconv.Itoa(j)+"]", checkPlatform(p))
		}
		add("cid", checkCID(e.CID))
		for j, c := range e.Configs {
			add("configs["+strconv.Itoa(j)+"]", checkDigest(c))
		}
		if e.Pin != "" {
			add("pin", checkCID(e.Pin))
		}
		if e.Upstream != "" {
			add("upstream", checkCID(e.Upstream))
		}
		validateReferrers(e.Referrers, add)
		for j, t := range e.Push {
			add("push["+strconv.Itoa(j)+"].ref", checkRef(t.Ref))
			add("push["+strconv.Itoa(j)+"].digest", checkDigest(t.Digest))
		}
		k := [2]string{e.Source, e.Mode}
		if seen[k] && e.Source != "" {
			errs = append(errs, &Error{Field: field, Msg: fmt.Sprintf("duplicate entry for %s in mode %s", e.Source, e.Mode)})
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}

func checkSource(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, "\n\r\t") {
		return fmt.Errorf("invalid source %q", s)
	}
	return nil
}

func checkMode(m string) error {
	switch {
	case modes.Mode(m).Valid():
		return nil
	case m == "":
		return errors.New("must not be empty")
	}
	return fmt.Errorf("unknown mode %q (want %s)", m, modes.Want())
}

func checkDigest(d string) error {
	if d == "" {
		return errors.New("must not be empty")
	}
	if _, err := digest.Parse(d); err != nil {
		return fmt.Errorf("invalid digest %q: %v", d, err)
	}
	return nil
}

var platformRE = regexp.MustCompile(`^[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9._]+)?$`)

func checkPlatform(p string) error {
	if !platformRE.MatchString(p) {
		return fmt.Errorf("invalid platform %q: want os/arch[/variant]", p)
	}
	return nil
}

func checkCID(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if _, err := cid.Decode(s); err != nil {
		msg := err.Error()
		for strings.HasPrefix(msg, "invalid cid: ") {
			msg = strings.TrimPrefix(msg, "invalid cid: ")
		}
		return fmt.Errorf("%q is not a CID: %s", s, msg)
	}
	return nil
}

func checkRef(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \n\r\t") {
		return fmt.Errorf("invalid reference %q", s)
	}
	return nil
}

type reader struct {
	file string
	errs []error
}

func (r *reader) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: r.file, Line: 1, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil && n.Line > 0 {
		e.Line, e.Column = n.Line, n.Column
	}
	r.errs = append(r.errs, e)
}

func (r *reader) parse(data []byte) *File {
	root, err := yamlpos.Document(data)
	var syntax *yamlpos.SyntaxError
	var extra *yamlpos.ExtraDocumentError
	switch {
	case errors.As(err, &syntax):
		r.errs = append(r.errs, &Error{File: r.file, Line: syntax.Line, Msg: syntax.Error()})
		return nil
	case errors.As(err, &extra):
		r.errorf(extra.Node, "", "more than one YAML document")
		return nil
	case err != nil: // yamlpos.ErrEmpty
		r.errorf(nil, "", "%v", err)
		return nil
	}
	m, ok := r.fields(root, "", "version", "images")
	if !ok {
		return nil
	}
	f := New()
	vn, ok := m["version"]
	if !ok {
		r.errorf(root, "version", "required field is missing")
		return nil
	}
	var v int
	if vn.Kind != yaml.ScalarNode || vn.ShortTag() != "!!int" || vn.Decode(&v) != nil {
		r.errorf(vn, "version", "expected an integer")
		return nil
	}
	if v != Version {
		r.errorf(vn, "version", "unsupported version %d (this mirror reads version %d)", v, Version)
		return nil
	}
	in, ok := m["images"]
	if !ok {
		r.errorf(root, "images", "required field is missing")
		return nil
	}
	if in.Kind != yaml.SequenceNode {
		r.errorf(in, "images", "expected a sequence")
		return nil
	}
	first := map[[2]string]int{}
	for i, n := range in.Content {
		field := "images[" + strconv.Itoa(i) + "]"
		e, ok := r.entry(n, field)
		if !ok {
			continue
		}
		k := [2]string{e.Source, e.Mode}
		if line, dup := first[k]; dup {
			r.errorf(n, field, "duplicate entry for %s in mode %s (first at line %d)", e.Source, e.Mode, line)
			continue
		}
		first[k] = n.Line
		f.Images = append(f.Images, e)
	}
	return f
}

// fields returns a mapping's values by key, rejecting unknown and repeated
// keys. The lockfile is machine-written: aliases and merge keys are not
// accepted.
func (r *reader) fields(n *yaml.Node, field string, known ...string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		r.errorf(n, field, "expected a mapping")
		return nil, false
	}
	ok := true
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if field != "" {
			name = field + "." + k.Value
		}
		switch {
		case k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str":
			r.errorf(k, field, "mapping keys must be strings")
			ok = false
		case !slices.Contains(known, k.Value):
			r.errorf(k, name, "unknown field (want one of: %s)", strings.Join(known, ", "))
			ok = false
		case m[k.Value] != nil:
			r.errorf(k, name, "duplicate key")
			ok = false
		default:
			m[k.Value] = v
		}
	}
	return m, ok
}

func (r *reader) str(m map[string]*yaml.Node, parent *yaml.Node, field, key string, required bool, check func(string) error) string {
	n, ok := m[key]
	f := field + "." + key
	if !ok {
		if required {
			r.errorf(parent, f, "required field is missing")
		}
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		r.errorf(n, f, "expected a string")
		return ""
	}
	if check != nil {
		if err := check(n.Value); err != nil {
			r.errorf(n, f, "%v", err)
		}
	}
	return n.Value
}

func (r *reader) entry(n *yaml.Node, field string) (Entry, bool) {
	before := len(r.errs)
	m, ok := r.fields(n, field, "source", "mode", "digest", "platforms", "cid", "configs", "pin", "upstream", "referrers", "push")
	if !ok {
		return Entry{}, false
	}
	e := Entry{
		Source: r.str(m, n, field, "source", true, checkSource),
		Mode:   r.str(m, n, field, "mode", true, checkMode),
		Digest: r.str(m, n, field, "digest", true, checkDigest),
		CID:    r.str(m, n, field, "cid", true, checkCID),
		Pin:    r.str(m, n, field, "pin", false, checkCID),
	}
	e.Upstream = r.str(m, n, field, "upstream", false, checkCID)
	if rn, ok := m["referrers"]; ok {
		e.Referrers = r.referrers(rn, field+".referrers")
	}
	if pn, ok := m["platforms"]; !ok {
		r.errorf(n, field+".platforms", "required field is missing")
	} else if pn.Kind != yaml.SequenceNode {
		r.errorf(pn, field+".platforms", "expected a sequence")
	} else {
		e.Platforms = []string{}
		for j, p := range pn.Content {
			f := field + ".platforms[" + strconv.Itoa(j) + "]"
			if p.Kind != yaml.ScalarNode || p.ShortTag() != "!!str" {
				r.errorf(p, f, "expected a string")
				continue
			}
			if err := checkPlatform(p.Value); err != nil {
				r.errorf(p, f, "%v", err)
				continue
			}
			e.Platforms = append(e.Platforms, p.Value)
		}
	}
	if cn, ok := m["configs"]; ok {
		if cn.Kind != yaml.SequenceNode {
			r.errorf(cn, field+".configs", "expected a sequence")
		} else {
			for j, c := range cn.Content {
				f := field + ".configs[" + strconv.Itoa(j) + "]"
				if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!str" {
					r.errorf(c, f, "expected a string")
					continue
				}
				if err := checkDigest(c.Value); err != nil {
					r.errorf(c, f, "%v", err)
					continue
				}
				e.Configs = append(e.Configs, c.Value)
			}
		}
	}
	if pn, ok := m["push"]; ok {
		if pn.Kind != yaml.SequenceNode {
			r.errorf(pn, field+".push", "expected a sequence")
		} else {
			for j, t := range pn.Content {
				f := field + ".push[" + strconv.Itoa(j) + "]"
				tm, ok := r.fields(t, f, "ref", "digest")
				if !ok {
					continue
				}
				e.Push = append(e.Push, PushTarget{
					Ref:    r.str(tm, t, f, "ref", true, checkRef),
					Digest: r.str(tm, t, f, "digest", true, checkDigest),
				})
			}
		}
	}
	return e, len(r.errs) == before
}
