package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// ParseOption changes how Load and Parse read a list.
type ParseOption func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

// WithLookupEnv sets the function that looks up environment variables for
// ${VAR} expansion (default os.LookupEnv).
func WithLookupEnv(f func(name string) (string, bool)) ParseOption {
	return func(o *options) { o.lookupEnv = f }
}

// WithEnv makes ${VAR} expansion see exactly env.
func WithEnv(env map[string]string) ParseOption {
	return WithLookupEnv(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
}

// WithReadFile sets the function that reads compose files (default
// os.ReadFile).
func WithReadFile(f func(path string) ([]byte, error)) ParseOption {
	return func(o *options) { o.readFile = f }
}

func makeOptions(opts []ParseOption) *options {
	o := &options{lookupEnv: os.LookupEnv, readFile: os.ReadFile}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Load reads and parses the mirrors list at path. An error reading the file
// itself is returned wrapped as is; problems in its content are *Errors
// (see Parse).
func Load(path string, opts ...ParseOption) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading mirrors list: %w", err)
	}
	return Parse(path, data, opts...)
}

// Parse parses a mirrors list. filename names it in errors and its
// directory is where relative paths (oci:DIR, docker-archive:FILE,
// compose:, key files, prioritized_files) start from; compose files are
// read from there.
//
// On failure the error is an *Error, or several joined with errors.Join,
// sorted by position (see Errors); no *File is returned.
func Parse(filename string, data []byte, opts ...ParseOption) (*File, error) {
	p := &parser{file: filename, dir: filepath.Dir(filename), o: makeOptions(opts), errs: &errorList{}}
	f := p.parseFile(data)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

var (
	topFields      = []string{"version", "ipfs", "defaults", "immutable_tags", "prune", "images"}
	ipfsFields     = []string{"api", "pin"}
	defaultsFields = []string{"modes", "platforms", "push", "encrypt", "estargz", "referrers", "verify"}
	entryFields    = []string{"source", "compose", "tags", "modes", "platforms", "push", "encrypt", "estargz", "referrers", "verify"}
	selectorFields = []string{"allow", "deny", "semver", "latest"}
	encryptFields  = []string{"recipients"}
	estargzFields  = []string{"compression_level", "prioritized_files"}
)

func (p *parser) parseFile(data []byte) *File {
	root := p.document(data)
	if root == nil {
		return nil
	}
	if d := p.deref(root); d != nil && d.Kind != yaml.MappingNode {
		p.errorf(d, "", "expected a mapping at the top level, got %s", describe(d))
		return nil
	}
	m, ok := p.fields(root, "", topFields...)
	if !ok {
		return nil
	}
	f := &File{Path: p.file, Dir: p.dir, IPFS: IPFS{Pin: true}}

	if kv, ok := m["version"]; !ok {
		p.errorf(p.deref(root), "version", "required field is missing (write version: %d)", Version)
	} else if v, ok := p.integer(kv.v, "version"); ok {
		if v != Version {
			p.errorf(p.deref(kv.v), "version", "unsupported version %d (this mirror reads version %d)", v, Version)
			return nil // another format: checking the rest would only confuse
		}
		f.Version = v
	}

	if kv, ok := m["ipfs"]; ok {
		p.parseIPFS(kv.v, &f.IPFS)
	}
	var defaults settings
	if kv, ok := m["defaults"]; ok {
		if dm, ok := p.fields(kv.v, "defaults", defaultsFields...); ok {
			defaults = p.parseSettings(dm, "defaults")
		}
	}
	if kv, ok := m["immutable_tags"]; ok {
		if s, ok := p.str(kv.v, "immutable_tags"); ok {
			re, err := regexp.Compile(s)
			if err != nil {
				p.errorf(p.deref(kv.v), "immutable_tags", "invalid regular expression %q: %v", s, err)
			} else {
				f.ImmutableTags = re
			}
		}
	}

	if kv, ok := m["prune"]; ok {
		if b, ok := p.boolean(kv.v, "prune"); ok {
			f.Prune = b
		}
	}

	kv, ok := m["images"]
	if !ok {
		p.errorf(p.deref(root), "images", "required field is missing")
		return f
	}
	list := p.deref(kv.v)
	if list == nil {
		return f
	}
	if list.Kind != yaml.SequenceNode {
		p.errorf(list, "images", "expected a sequence, got %s", describe(list))
		return f
	}
	if len(list.Content) == 0 {
		p.errorf(list, "images", "must not be empty")
		return f
	}
	var entries []*entry
	for i, n := range list.Content {
		entries = append(entries, p.parseEntry(i, n, &defaults)...)
	}
	f.Images = p.dedupEntries(entries)
	return f
}

func (p *parser) parseIPFS(n *yaml.Node, out *IPFS) {
	m, ok := p.fields(n, "ipfs", ipfsFields...)
	if !ok {
		return
	}
	if kv, ok := m["api"]; ok {
		if s, ok := p.str(kv.v, "ipfs.api"); ok {
			if s, ok = p.expand(s, kv.v, "ipfs.api"); ok {
				if err := checkAPI(s); err != nil {
					p.errorf(p.deref(kv.v), "ipfs.api", "%v", err)
				} else {
					out.API = s
					if v := p.derefQuiet(kv.v); v != nil {
						out.APIPos = Pos{File: p.file, Line: v.Line, Column: v.Column}
					}
				}
			}
		}
	}
	if kv, ok := m["pin"]; ok {
		if b, ok := p.boolean(kv.v, "ipfs.pin"); ok {
			out.Pin = b
		}
	}
}

// settings are the fields an entry shares with defaults; a nil node means
// "not set here".
type settings struct {
	modes     []modes.Mode
	modesNode *yaml.Node

	platforms     []string
	platformsNode *yaml.Node

	push      []string
	pushTmpl  []*template.Template
	pushNodes []*yaml.Node
	pushField []string
	pushNode  *yaml.Node

	encrypt     *Encrypt
	encryptNode *yaml.Node

	estargz     *Estargz
	estargzNode *yaml.Node

	referrers     *Referrers // nil with referrersSet: referrers: false
	referrersSet  bool
	referrersNode *yaml.Node

	verify     *Verify
	verifyOff  bool // verify: false
	verifyNode *yaml.Node
}

func (p *parser) parseSettings(m map[string]pair, field string) settings {
	var s settings
	if kv, ok := m["modes"]; ok {
		s.modesNode = p.derefQuiet(kv.v)
		f := join(field, "modes")
		if list, nodes, ok := p.strs(kv.v, f); ok {
			if len(list) == 0 {
				p.errorf(s.modesNode, f, "must not be empty")
			}
			good := true
			for i, x := range list {
				m := modes.Mode(x)
				switch {
				case !m.Valid():
					p.errorf(nodes[i], index(f, i), "unknown mode %q (want %s)", x, modes.Want())
					good = false
				case slices.Contains(s.modes, m):
					p.errorf(nodes[i], index(f, i), "duplicate mode %q", x)
					good = false
				default:
					s.modes = append(s.modes, m)
				}
			}
			if !good || len(list) == 0 {
				s.modes = nil
			}
		}
		if s.modes == nil {
			s.modesNode = nil // invalid: do not report follow-on errors
			s.modes = []modes.Mode{}
		}
	}
	if kv, ok := m["platforms"]; ok {
		s.platformsNode = p.derefQuiet(kv.v)
		f := join(field, "platforms")
		s.platforms = []string{}
		if list, nodes, ok := p.strs(kv.v, f); ok {
			for i, x := range list {
				if err := checkPlatform(x); err != nil {
					p.errorf(nodes[i], index(f, i), "%v", err)
				} else if slices.Contains(s.platforms, x) {
					p.errorf(nodes[i], index(f, i), "duplicate platform %q", x)
				} else {
					s.platforms = append(s.platforms, x)
				}
			}
		}
	}
	if kv, ok := m["push"]; ok {
		s.pushNode = p.derefQuiet(kv.v)
		f := join(field, "push")
		s.push = []string{}
		if list, nodes, ok := p.strs(kv.v, f); ok {
			for i, x := range list {
				x, ok := p.expand(x, nodes[i], index(f, i))
				if !ok {
					continue
				}
				t, err := parseTemplate(x)
				if err != nil {
					p.errorf(nodes[i], index(f, i), "invalid template: %v", err)
					continue
				}
				s.push = append(s.push, x)
				s.pushTmpl = append(s.pushTmpl, t)
				s.pushNodes = append(s.pushNodes, nodes[i])
				s.pushField = append(s.pushField, index(f, i))
			}
		}
	}
	if kv, ok := m["encrypt"]; ok {
		s.encryptNode = p.derefQuiet(kv.v)
		f := join(field, "encrypt")
		if em, ok := p.fields(kv.v, f, encryptFields...); ok {
			e := &Encrypt{}
			rkv, ok := em["recipients"]
			if !ok {
				p.errorf(s.encryptNode, join(f, "recipients"), "required field is missing")
			} else {
				rf := join(f, "recipients")
				if list, nodes, ok := p.strs(rkv.v, rf); ok {
					if len(list) == 0 {
						p.errorf(p.deref(rkv.v), rf, "must not be empty")
					}
					for i, x := range list {
						x, ok := p.expand(x, nodes[i], index(rf, i))
						if !ok {
							continue
						}
						r, err := resolveRecipient(x, p.dir)
						if err != nil {
							p.errorf(nodes[i], index(rf, i), "%v", err)
							continue
						}
						if slices.Contains(e.Recipients, r) {
							p.errorf(nodes[i], index(rf, i), "duplicate recipient %q", x)
							continue
						}
						e.Recipients = append(e.Recipients, r)
					}
				}
			}
			s.encrypt = e
		}
	}
	if kv, ok := m["estargz"]; ok {
		s.estargzNode = p.derefQuiet(kv.v)
		f := join(field, "estargz")
		if em, ok := p.fields(kv.v, f, estargzFields...); ok {
			e := &Estargz{}
			if kv, ok := em["compression_level"]; ok {
				if v, ok := p.integer(kv.v, join(f, "compression_level")); ok {
					if v < 1 || v > 9 {
						p.errorf(p.deref(kv.v), join(f, "compression_level"), "must be between 1 and 9, got %d", v)
					} else {
						e.CompressionLevel = v
					}
				}
			}
			if kv, ok := em["prioritized_files"]; ok {
				if v, ok := p.str(kv.v, join(f, "prioritized_files")); ok {
					if v == "" {
						p.errorf(p.deref(kv.v), join(f, "prioritized_files"), "must not be empty")
					}
					e.PrioritizedFiles = resolvePath(p.dir, v)
				}
			}
			s.estargz = e
		}
	}
	if kv, ok := m["referrers"]; ok {
		p.parseReferrers(kv.v, join(field, "referrers"), &s)
	}
	if kv, ok := m["verify"]; ok {
		p.parseVerify(kv.v, join(field, "verify"), &s)
	}
	return s
}

// over returns s with the fields it does not set taken from d.
func (s settings) over(d *settings) settings {
	if s.modes == nil {
		s.modes = d.modes
	}
	if s.platforms == nil {
		s.platforms = d.platforms
	}
	if s.push == nil {
		s.push, s.pushTmpl = d.push, d.pushTmpl
	}
	if s.encrypt == nil {
		s.encrypt = d.encrypt
	}
	if s.estargz == nil {
		s.estargz = d.estargz
	}
	if !s.referrersSet {
		s.referrers = d.referrers
	}
	if s.verify == nil && !s.verifyOff {
		s.verify = d.verify
	}
	if s.modes == nil {
		s.modes = []modes.Mode{modes.Plain}
	}
	return s
}

// entry is an Image before duplicates are checked.
type entry struct {
	img     *Image
	field   string     // images[i]
	node    *yaml.Node // where a duplicate is reported
	keys    []string   // what it mirrors, for duplicates
	compose bool
}

func (p *parser) parseEntry(i int, n *yaml.Node, defaults *settings) []*entry {
	field := index("images", i)
	m, ok := p.fields(n, field, entryFields...)
	if !ok {
		return nil
	}
	n = p.derefQuiet(n)
	pos := Pos{File: p.file, Line: n.Line, Column: n.Column}
	own := p.parseSettings(m, field)
	set := own.over(defaults)

	src, hasSrc := m["source"]
	comp, hasCompose := m["compose"]
	switch {
	case hasSrc && hasCompose:
		p.errorf(comp.k, field, "source and compose are mutually exclusive")
		return nil
	case !hasSrc && !hasCompose:
		p.errorf(n, field, "an entry needs source or compose")
		return nil
	case hasCompose:
		if kv, ok := m["tags"]; ok {
			p.errorf(kv.k, join(field, "tags"), "not allowed with compose (the compose file names the tags)")
		}
		return p.composeEntry(field, n, pos, comp, &own, set, defaults)
	}

	text, ok := p.str(src.v, join(field, "source"))
	if !ok {
		return nil
	}
	srcNode := p.derefQuiet(src.v)
	if text, ok = p.expand(text, src.v, join(field, "source")); !ok {
		return nil
	}
	s, err := parseSource(text, p.dir)
	if err != nil {
		p.errorf(srcNode, join(field, "source"), "%v", err)
		return nil
	}
	img := newImage(s, set, pos)

	tkv, hasTags := m["tags"]
	switch {
	case hasTags && s.kind == registry.KindOCI:
		p.errorf(tkv.k, join(field, "tags"), "not allowed with an oci: source (write oci:DIR:TAG)")
		return nil
	case hasTags && s.kind == registry.KindDockerArchive:
		p.errorf(tkv.k, join(field, "tags"), "not allowed with a docker-archive: source")
		return nil
	case hasTags && s.tag != "":
		p.errorf(tkv.k, join(field, "tags"), "not allowed: source %q already names a tag", text)
		return nil
	case hasTags && s.digest != "":
		p.errorf(tkv.k, join(field, "tags"), "not allowed: source %q already names a digest", text)
		return nil
	case hasTags:
		t, ok := p.parseTags(tkv.v, join(field, "tags"))
		if !ok {
			return nil
		}
		img.Tags = t
	case s.kind == registry.KindRegistry && s.tag == "" && s.digest == "":
		p.errorf(srcNode, join(field, "source"), "%q names no tag or digest: add tags, or :TAG or @DIGEST to the source", text)
		return nil
	}

	e := &entry{img: img, field: field, node: srcNode}
	switch {
	case s.kind != registry.KindRegistry:
		e.keys = []string{s.kind.Prefix() + s.path + ":" + s.tag}
	case img.Tags.IsList() && len(img.Tags.List) > 0:
		for _, t := range img.Tags.List {
			e.keys = append(e.keys, img.LockSource(t))
		}
	case img.Tags.IsList():
		e.keys = []string{img.LockSource("")}
	}
	p.checkImage(field, n, img, &own, &set, defaults)
	return []*entry{e}
}

func newImage(s source, set settings, pos Pos) *Image {
	img := &Image{
		Source:     s.text,
		Kind:       s.kind,
		Registry:   s.registry,
		Repo:       s.repo,
		Repository: s.repository,
		Tag:        s.tag,
		Digest:     s.digest,
		Path:       s.path,
		Modes:      slices.Clone(set.modes),
		Platforms:  slices.Clone(set.platforms),
		Push:       slices.Clone(set.push),
		Encrypt:    cloneEncrypt(set.encrypt),
		Estargz:    cloneEstargz(set.estargz),
		Referrers:  cloneReferrers(set.referrers),
		Verify:     cloneVerify(set.verify),
		Pos:        pos,
		push:       set.pushTmpl,
	}
	if s.kind == registry.KindRegistry && s.tag != "" {
		img.Tags = TagSpec{List: []string{s.tag}}
	}
	if img.Platforms == nil {
		img.Platforms = []string{}
	}
	if img.Push == nil {
		img.Push = []string{}
	}
	return img
}

func (p *parser) parseTags(n *yaml.Node, field string) (TagSpec, bool) {
	d := p.deref(n)
	if d == nil {
		return TagSpec{}, false
	}
	switch d.Kind {
	case yaml.SequenceNode:
		list, nodes, ok := p.strs(d, field)
		if !ok {
			return TagSpec{}, false
		}
		if len(list) == 0 {
			p.errorf(d, field, "must not be empty")
			return TagSpec{}, false
		}
		for i, t := range list {
			if !registry.ValidTag(t) {
				p.errorf(nodes[i], index(field, i), "invalid tag %q", t)
				ok = false
			}
		}
		return TagSpec{List: dedup(list)}, ok
	case yaml.MappingNode:
		m, ok := p.fields(d, field, selectorFields...)
		if !ok {
			return TagSpec{}, false
		}
		if len(d.Content) == 0 {
			p.errorf(d, field, "no selector: set allow, deny, semver or latest")
			return TagSpec{}, false
		}
		var t TagSpec
		good := true
		regexps := func(key string) []string {
			kv, ok := m[key]
			if !ok {
				return nil
			}
			f := join(field, key)
			list, nodes, ok := p.strs(kv.v, f)
			if !ok {
				good = false
				return nil
			}
			if len(list) == 0 {
				p.errorf(p.deref(kv.v), f, "must not be empty")
				good = false
			}
			for i, s := range list {
				if _, err := regexp.Compile(s); err != nil {
					p.errorf(nodes[i], index(f, i), "invalid regular expression %q: %v", s, err)
					good = false
				}
			}
			return list
		}
		t.Allow = regexps("allow")
		t.Deny = regexps("deny")
		if kv, ok := m["semver"]; ok {
			f := join(field, "semver")
			if s, ok := p.str(kv.v, f); ok {
				if _, err := semver.NewConstraint(s); err != nil {
					p.errorf(p.deref(kv.v), f, "invalid semver range %q: %v", s, err)
					good = false
				}
				t.Semver = s
			} else {
				good = false
			}
		}
		if kv, ok := m["latest"]; ok {
			f := join(field, "latest")
			if v, ok := p.integer(kv.v, f); ok {
				if v < 1 {
					p.errorf(p.deref(kv.v), f, "must be at least 1, got %d", v)
					good = false
				}
				t.Latest = v
			} else {
				good = false
			}
		}
		return t, good
	}
	p.errorf(d, field, "expected a list of tags or a mapping of selectors, got %s", describe(d))
	return TagSpec{}, false
}

// checkImage checks what depends on several fields of a resolved image:
// modes against encrypt and estargz, and the push templates against the
// image.
func (p *parser) checkImage(field string, entryNode *yaml.Node, img *Image, own, set, defaults *settings) {
	modesAt := own.modesNode
	if modesAt == nil {
		modesAt = entryNode
	}
	if img.HasMode(modes.Encrypted) && img.Encrypt == nil && own.encryptNode == nil {
		p.errorf(modesAt, join(field, "modes"), "encrypted mode needs encrypt.recipients")
	}
	if own.encryptNode != nil && len(img.Modes) > 0 && !img.HasMode(modes.Encrypted) {
		p.errorf(own.encryptNode, join(field, "encrypt"), "set, but modes has no encrypted")
	}
	if own.estargzNode != nil && len(img.Modes) > 0 && !img.HasMode(modes.Estargz) {
		p.errorf(own.estargzNode, join(field, "estargz"), "set, but modes has no estargz")
	}
	p.checkSigned(field, entryNode, img, own)

	for i, t := range img.push {
		var at *yaml.Node
		var f, prefix string
		if own.pushNode == nil {
			at, f, prefix = entryNode, field, defaults.pushField[i]+": "
		} else {
			at, f, prefix = own.pushNodes[i], own.pushField[i], ""
		}
		if msg := checkTemplate(t, img); msg != "" {
			p.errorf(at, f, "%s%s", prefix, msg)
		}
	}
}

// checkTemplate executes a push template with sample data for img and
// checks the result; "" when fine.
func checkTemplate(t *template.Template, img *Image) string {
	tag := sampleTag
	manyTags := true
	switch {
	case img.Kind != registry.KindRegistry:
		tag, manyTags = img.Tag, false
	case img.Tags.IsList() && len(img.Tags.List) <= 1:
		manyTags = false
		tag = ""
		if len(img.Tags.List) == 1 {
			tag = img.Tags.List[0]
		}
	}
	digest := img.Digest
	if digest == "" {
		digest = sampleDigest
	}
	out := map[modes.Mode]string{}
	for _, m := range img.Modes {
		s, err := executePush(t, img.pushData(tag, digest, m))
		if err != nil {
			return err.Error()
		}
		for prev, ps := range out {
			if ps == s {
				a, b := prev, m
				if slices.Index(img.Modes, a) > slices.Index(img.Modes, b) {
					a, b = b, a
				}
				return fmt.Sprintf("template gives %q for both modes %s and %s: use {{.Mode}}", s, a, b)
			}
		}
		out[m] = s
	}
	if manyTags && len(img.Modes) > 0 {
		m := img.Modes[0]
		s2, err := executePush(t, img.pushData(sampleTag2, digest, m))
		if err != nil {
			return err.Error()
		}
		if s2 == out[m] {
			return fmt.Sprintf("template gives %q for every tag: use {{.Tag}}", s2)
		}
	}
	return ""
}

// dedupEntries reports entries that mirror the same image twice, merging
// images from compose files whose settings agree, and returns the images.
func (p *parser) dedupEntries(entries []*entry) []*Image {
	var out []*Image
	seen := map[string]*entry{}
next:
	for _, e := range entries {
		for _, k := range e.keys {
			first, dup := seen[k]
			if !dup {
				continue
			}
			switch {
			case e.compose && first.compose && sameSettings(first.img, e.img):
				first.img.Services = mergeSorted(first.img.Services, e.img.Services)
			case e.compose:
				p.errorf(e.node, join(e.field, "compose"), "image %s (services %s) is also mirrored by %s", k, strings.Join(e.img.Services, ", "), first.field)
			default:
				p.errorf(e.node, join(e.field, "source"), "duplicate: %s is also mirrored by %s", k, first.field)
			}
			continue next
		}
		for _, k := range e.keys {
			seen[k] = e
		}
		out = append(out, e.img)
	}
	return out
}

func sameSettings(a, b *Image) bool {
	return reflect.DeepEqual(a.Modes, b.Modes) && reflect.DeepEqual(a.Platforms, b.Platforms) &&
		reflect.DeepEqual(a.Push, b.Push) && reflect.DeepEqual(a.Encrypt, b.Encrypt) &&
		reflect.DeepEqual(a.Estargz, b.Estargz) && reflect.DeepEqual(a.Referrers, b.Referrers) &&
		reflect.DeepEqual(a.Verify, b.Verify)
}

func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func cloneEncrypt(e *Encrypt) *Encrypt {
	if e == nil {
		return nil
	}
	return &Encrypt{Recipients: slices.Clone(e.Recipients)}
}

func cloneEstargz(e *Estargz) *Estargz {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}
