package config

import (
	"path/filepath"
	"slices"

	"gopkg.in/yaml.v3"
)

// composeRef is one service's image in a compose file.
type composeRef struct {
	service string
	image   string // as written, variables expanded
	src     source
	node    *yaml.Node
}

// composeFile reads the services.<name>.image values of a compose file.
// Other keys are not looked at. Errors are recorded against the compose
// file. A service without image (build only) is skipped.
func (p *parser) composeFile(data []byte) ([]composeRef, bool) {
	root := p.document(data)
	if root == nil {
		return nil, false
	}
	top, ok := p.mapping(root, "")
	if !ok {
		return nil, false
	}
	var services *yaml.Node
	for _, kv := range top {
		if kv.key == "services" {
			services = kv.v
		}
	}
	if services == nil {
		p.errorf(p.deref(root), "services", "required field is missing")
		return nil, false
	}
	svcs, ok := p.mapping(services, "services")
	if !ok {
		return nil, false
	}
	slices.SortFunc(svcs, func(a, b pair) int {
		if a.key < b.key {
			return -1
		}
		if a.key > b.key {
			return 1
		}
		return 0
	})
	var refs []composeRef
	good := true
	for _, svc := range svcs {
		field := "services." + svc.key
		d := p.deref(svc.v)
		if d == nil {
			good = false
			continue
		}
		if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
			continue // an empty service: nothing to mirror
		}
		kvs, ok := p.mapping(d, field)
		if !ok {
			good = false
			continue
		}
		for _, kv := range kvs {
			if kv.key != "image" {
				continue
			}
			f := field + ".image"
			s, ok := p.str(kv.v, f)
			if !ok {
				good = false
				break
			}
			if s, ok = p.expand(s, kv.v, f); !ok {
				good = false
				break
			}
			src, err := parseRegistryRef(s)
			if err != nil {
				p.errorf(p.deref(kv.v), f, "%v", err)
				good = false
				break
			}
			refs = append(refs, composeRef{service: svc.key, image: s, src: src, node: p.derefQuiet(kv.v)})
		}
	}
	return refs, good
}

// composeEntry expands an entry with compose: into one entry per distinct
// image of the compose file.
func (p *parser) composeEntry(field string, n *yaml.Node, pos Pos, comp pair, own *settings, set settings, defaults *settings) []*entry {
	f := join(field, "compose")
	rel, ok := p.str(comp.v, f)
	if !ok {
		return nil
	}
	at := p.derefQuiet(comp.v)
	if rel == "" {
		p.errorf(at, f, "must not be empty")
		return nil
	}
	path := resolvePath(p.dir, rel)
	data, err := p.o.readFile(path)
	if err != nil {
		p.errorf(at, f, "reading compose file: %v", err)
		return nil
	}
	sub := &parser{file: path, dir: filepath.Dir(path), o: p.o, errs: p.errs, sub: true, anchorPos: pos}
	refs, ok := sub.composeFile(data)
	p.aliasErr = p.aliasErr || sub.aliasErr
	if !ok {
		return nil
	}
	if len(refs) == 0 {
		p.errorf(at, f, "compose file %s names no image (services.*.image)", rel)
		return nil
	}

	byRef := map[string]*entry{}
	var order []string
	for _, r := range refs {
		key := r.src.canonical()
		if e, ok := byRef[key]; ok {
			e.img.Services = append(e.img.Services, r.service)
			continue
		}
		s := r.src
		if s.tag == "" && s.digest == "" {
			s.tag = "latest" // as compose does
		}
		s.text = key
		img := newImage(s, set, pos)
		img.Compose = path
		img.Services = []string{r.service}
		img.ComposePos = Pos{File: path, Line: r.node.Line, Column: r.node.Column}
		byRef[key] = &entry{img: img, field: field, node: at, keys: []string{key}, compose: true}
		order = append(order, key)
	}
	slices.Sort(order)
	out := make([]*entry, 0, len(order))
	for _, key := range order {
		e := byRef[key]
		p.checkImage(field, n, e.img, own, &set, defaults)
		out = append(out, e)
	}
	return out
}

// ComposeImages returns the image each service of a compose file names
// (services.<name>.image, variables expanded), by service name. Services
// without image are left out. Errors are *Errors, as from Parse.
func ComposeImages(path string, opts ...ParseOption) (map[string]string, error) {
	o := makeOptions(opts)
	data, err := o.readFile(path)
	if err != nil {
		return nil, err
	}
	p := &parser{file: path, dir: filepath.Dir(path), o: o, errs: &errorList{}}
	refs, _ := p.composeFile(data)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(refs))
	for _, r := range refs {
		out[r.service] = r.image
	}
	return out, nil
}
