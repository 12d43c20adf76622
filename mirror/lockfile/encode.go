package lockfile

import (
	"bytes"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Marshal returns the file's bytes: Header, then version and the entries in
// their normalized order (see the package doc). Version is always written as
// the current Version. Optional fields (configs, pin, upstream, referrers,
// push) are left out when empty; platforms is always written, [] meaning all.
func (f *File) Marshal() []byte {
	images := &yaml.Node{Kind: yaml.SequenceNode}
	for _, e := range f.normalized() {
		images.Content = append(images.Content, entryNode(e))
	}
	if len(images.Content) == 0 {
		images.Style = yaml.FlowStyle
	}
	root := mapping(
		"version", scalar(strconv.Itoa(Version), "!!int"),
		"images", images,
	)
	var buf bytes.Buffer
	buf.WriteString(Header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		// Encoding a tree of plain strings cannot fail.
		panic("lockfile: encoding: " + err.Error())
	}
	if err := enc.Close(); err != nil {
		panic("lockfile: encoding: " + err.Error())
	}
	return buf.Bytes()
}

func entryNode(e Entry) *yaml.Node {
	platforms := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, p := range e.Platforms {
		platforms.Content = append(platforms.Content, str(p))
	}
	kv := []any{
		"source", str(e.Source),
		"mode", str(e.Mode),
		"digest", str(e.Digest),
		"platforms", platforms,
		"cid", str(e.CID),
	}
	if len(e.Configs) > 0 {
		configs := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range e.Configs {
			configs.Content = append(configs.Content, str(c))
		}
		kv = append(kv, "configs", configs)
	}
	if e.Pin != "" {
		kv = append(kv, "pin", str(e.Pin))
	}
	if e.Upstream != "" {
		kv = append(kv, "upstream", str(e.Upstream))
	}
	if len(e.Referrers) > 0 {
		kv = append(kv, "referrers", referrersNode(e.Referrers))
	}
	if len(e.Push) > 0 {
		push := &yaml.Node{Kind: yaml.SequenceNode}
		for _, t := range e.Push {
			push.Content = append(push.Content, mapping("ref", str(t.Ref), "digest", str(t.Digest)))
		}
		kv = append(kv, "push", push)
	}
	return mapping(kv...)
}

func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}

func scalar(v, tag string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v} }

// str is a string scalar; the encoder quotes it when it would otherwise
// read back as something else (a number, a boolean, null).
func str(s string) *yaml.Node { return scalar(s, "!!str") }
