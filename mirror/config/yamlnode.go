package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ipfs-mirror/mirror/internal/yamlpos"
)

// maxAliases bounds how many aliases and merge keys one file may make the
// parser follow, so that a small file cannot expand into a huge one.
const maxAliases = 10000

// maxMergeDepth bounds nested merge keys (and breaks alias cycles).
const maxMergeDepth = 32

// parser walks the yaml.v3 node tree of one file, recording errors.
type parser struct {
	file string // for errors
	dir  string // relative paths resolve against it
	o    *options
	errs *errorList

	aliases   int
	aliasErr  bool
	sub       bool // a compose file named by an entry of the mirrors list
	anchorPos Pos  // that entry
}

// pair is one key and value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	if p.sub {
		e.sub = true
		e.anchorLine, e.anchorCol = p.anchorPos.Line, p.anchorPos.Column
	}
	p.errs.add(e)
}

// document parses data as a single YAML document and returns its top
// node, or nil after recording why not.
func (p *parser) document(data []byte) *yaml.Node {
	root, err := yamlpos.Document(data)
	var syntax *yamlpos.SyntaxError
	var extra *yamlpos.ExtraDocumentError
	switch {
	case err == nil:
		return root
	case errors.As(err, &syntax):
		p.errs.add(p.at(syntax.Line, 0, "", syntax.Error()))
	case errors.As(err, &extra):
		p.errorf(extra.Node, "", "a second YAML document; the file must hold one")
	default: // yamlpos.ErrEmpty
		p.errs.add(p.at(1, 1, "", err.Error()))
	}
	return nil
}

func (p *parser) at(line, col int, field, msg string) *Error {
	e := &Error{File: p.file, Line: line, Column: col, Field: field, Msg: msg}
	if p.sub {
		e.sub = true
		e.anchorLine, e.anchorCol = p.anchorPos.Line, p.anchorPos.Column
	}
	return e
}

// deref follows aliases; nil when the alias budget is spent.
func (p *parser) deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		p.aliases++
		if p.aliases > maxAliases {
			if !p.aliasErr {
				p.aliasErr = true
				p.errorf(n, "", "too many aliases (more than %d)", maxAliases)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

// describe names the kind of a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		switch t := n.ShortTag(); t {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!str":
			return "a string"
		case "!!timestamp":
			return "a timestamp"
		case "!!binary":
			return "binary data"
		default:
			return "a value tagged " + t
		}
	}
	return "nothing"
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// mapping returns the pairs of a mapping, merge keys (<<) expanded: keys
// written in the mapping win over merged ones, earlier merged mappings over
// later ones. It records an error and returns false when n is not a
// mapping.
func (p *parser) mapping(n *yaml.Node, field string) ([]pair, bool) {
	n = p.deref(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "expected a mapping, got %s", describe(n))
		return nil, false
	}
	return p.pairs(n, field, 0), true
}

func (p *parser) pairs(n *yaml.Node, field string, depth int) []pair {
	var own, merged []pair
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, p.merge(v, field, depth)...)
			continue
		}
		k = p.deref(k)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, field, "mapping keys must be strings, got %s", describe(k))
			continue
		}
		if f, dup := first[k.Value]; dup {
			p.errorf(k, join(field, k.Value), "duplicate key (first at line %d)", f.Line)
			continue
		}
		first[k.Value] = k
		own = append(own, pair{k.Value, k, v})
	}
	for _, m := range merged {
		if _, ok := first[m.key]; !ok {
			first[m.key] = m.k
			own = append(own, m)
		}
	}
	return own
}

func (p *parser) merge(v *yaml.Node, field string, depth int) []pair {
	if depth >= maxMergeDepth {
		p.errorf(v, field, "merge keys (<<) nested too deeply")
		return nil
	}
	v = p.deref(v)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return p.pairs(v, field, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			item = p.deref(item)
			if item == nil {
				continue
			}
			if item.Kind != yaml.MappingNode {
				p.errorf(item, field, "a merge key (<<) takes mappings, got %s", describe(item))
				continue
			}
			out = append(out, p.pairs(item, field, depth+1)...)
		}
		return out
	}
	p.errorf(v, field, "a merge key (<<) takes mappings, got %s", describe(v))
	return nil
}

// fields returns the pairs of a mapping by key, recording an error for each
// key not in known.
func (p *parser) fields(n *yaml.Node, field string, known ...string) (map[string]pair, bool) {
	pairs, ok := p.mapping(n, field)
	if !ok {
		return nil, false
	}
	m := make(map[string]pair, len(pairs))
	for _, kv := range pairs {
		if !slices.Contains(known, kv.key) {
			p.errorf(kv.k, join(field, kv.key), "unknown field (want one of: %s)", strings.Join(known, ", "))
			continue
		}
		m[kv.key] = kv
	}
	return m, true
}

// str returns a scalar as a string. Numbers and timestamps are fine (their
// text as written: tags 3.20 and 2024-01-01 are strings to us); null,
// booleans and collections are not.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	n = p.deref(n)
	if n == nil {
		return "", false
	}
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!timestamp":
			return n.Value, true
		}
	}
	p.errorf(n, field, "expected a string, got %s", describe(n))
	return "", false
}

// strs returns a sequence of strings with the node of each, recording an
// error for each item that is not a string (and leaving it out).
func (p *parser) strs(n *yaml.Node, field string) ([]string, []*yaml.Node, bool) {
	n = p.deref(n)
	if n == nil {
		return nil, nil, false
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "expected a sequence, got %s", describe(n))
		return nil, nil, false
	}
	ok := true
	out, nodes := []string{}, []*yaml.Node{}
	for i, item := range n.Content {
		s, good := p.str(item, index(field, i))
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
		nodes = append(nodes, p.derefQuiet(item))
	}
	return out, nodes, ok
}

func (p *parser) integer(n *yaml.Node, field string) (int, bool) {
	n = p.deref(n)
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		var v int
		if err := n.Decode(&v); err == nil {
			return v, true
		}
		p.errorf(n, field, "integer %s out of range", n.Value)
		return 0, false
	}
	p.errorf(n, field, "expected an integer, got %s", describe(n))
	return 0, false
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, bool) {
	n = p.deref(n)
	if n == nil {
		return false, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var v bool
		if err := n.Decode(&v); err == nil {
			return v, true
		}
	}
	p.errorf(n, field, "expected a boolean, got %s", describe(n))
	return false, false
}

// expand expands variables in a string value, recording an error.
func (p *parser) expand(s string, n *yaml.Node, field string) (string, bool) {
	out, err := expand(s, p.o.lookupEnv)
	if err != nil {
		p.errorf(p.derefQuiet(n), field, "%v", err)
		return "", false
	}
	return out, true
}

// derefQuiet follows aliases without spending the budget (for positions).
func (p *parser) derefQuiet(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxMergeDepth; i++ {
		n = n.Alias
	}
	return n
}
