package config

import (
	"mime"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// Referrers is an entry's referrers: setting (issue 18): mirror the OCI 1.1
// referrers of each mirrored manifest — signatures, attestations, SBOMs —
// found through the referrers API, the referrers tag schema and cosign's
// tag schema.
type Referrers struct {
	// ArtifactTypes keeps only referrers of these artifact types; empty
	// means every referrer.
	ArtifactTypes []string `json:",omitempty"`
}

// Wants reports whether a referrer of artifactType is kept.
func (r *Referrers) Wants(artifactType string) bool {
	return r != nil && (len(r.ArtifactTypes) == 0 || slices.Contains(r.ArtifactTypes, artifactType))
}

// Verify is an entry's verify: setting: what an image must carry before it
// is mirrored.
type Verify struct {
	// Cosign requires a valid cosign signature of the image's manifest
	// digest made with a key.
	Cosign *CosignVerify
}

// CosignVerify is verify.cosign: keyed, offline cosign verification.
type CosignVerify struct {
	// Key is the path of the public key (a PEM file, as cosign.pub),
	// resolved against the list's directory. It is not opened when the
	// list is loaded.
	Key string
}

var (
	referrersFields    = []string{"artifact_types"}
	verifyFields       = []string{"cosign"}
	cosignVerifyFields = []string{"key"}
)

// parseReferrers reads referrers: true | false | {artifact_types: […]}
// into s (s.referrersSet; s.referrers nil for false).
func (p *parser) parseReferrers(n *yaml.Node, field string, s *settings) {
	d := p.deref(n)
	if d == nil {
		return
	}
	s.referrersNode = d
	if d.Kind == yaml.ScalarNode {
		if on, ok := p.boolean(d, field); ok {
			s.referrersSet = true
			if on {
				s.referrers = &Referrers{}
			}
		}
		return
	}
	if d.Kind != yaml.MappingNode {
		p.errorf(d, field, "expected a boolean or a mapping, got %s", describe(d))
		return
	}
	m, ok := p.fields(d, field, referrersFields...)
	if !ok {
		return
	}
	r := &Referrers{}
	good := true
	if kv, ok := m["artifact_types"]; ok {
		f := join(field, "artifact_types")
		list, nodes, ok := p.strs(kv.v, f)
		if !ok {
			return
		}
		if len(list) == 0 {
			p.errorf(p.deref(kv.v), f, "must not be empty (leave artifact_types out to keep every referrer)")
			return
		}
		for i, x := range list {
			switch {
			case !validMediaType(x):
				p.errorf(nodes[i], index(f, i), "invalid artifact type %q: want a media type, type/subtype", x)
				good = false
			case slices.Contains(r.ArtifactTypes, x):
				p.errorf(nodes[i], index(f, i), "duplicate artifact type %q", x)
				good = false
			default:
				r.ArtifactTypes = append(r.ArtifactTypes, x)
			}
		}
	}
	if good {
		s.referrersSet, s.referrers = true, r
	}
}

// validMediaType: type/subtype without parameters, as artifactType is.
func validMediaType(s string) bool {
	mt, params, err := mime.ParseMediaType(s)
	return err == nil && len(params) == 0 && mt == strings.ToLower(s) && strings.Count(mt, "/") == 1
}

// parseVerify reads verify: {cosign: {key: FILE}}, or verify: false (an
// entry opting out of defaults.verify).
func (p *parser) parseVerify(n *yaml.Node, field string, s *settings) {
	if d := p.derefQuiet(n); d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!bool" {
		if on, ok := p.boolean(d, field); ok {
			if on {
				p.errorf(d, field, "true says not how: write verify: {cosign: {key: FILE}} (false turns defaults.verify off)")
				return
			}
			s.verifyNode, s.verifyOff = d, true
		}
		return
	}
	m, ok := p.fields(n, field, verifyFields...)
	if !ok {
		return
	}
	at := p.derefQuiet(n)
	ckv, ok := m["cosign"]
	if !ok {
		p.errorf(at, join(field, "cosign"), "required field is missing (the one kind of verification: cosign: {key: FILE})")
		return
	}
	cf := join(field, "cosign")
	cm, ok := p.fields(ckv.v, cf, cosignVerifyFields...)
	if !ok {
		return
	}
	kkv, ok := cm["key"]
	if !ok {
		p.errorf(p.derefQuiet(ckv.v), join(cf, "key"), "required field is missing (a public key file, as cosign.pub)")
		return
	}
	kf := join(cf, "key")
	key, ok := p.str(kkv.v, kf)
	if !ok {
		return
	}
	if key, ok = p.expand(key, kkv.v, kf); !ok {
		return
	}
	if key == "" {
		p.errorf(p.derefQuiet(kkv.v), kf, "must not be empty")
		return
	}
	s.verify = &Verify{Cosign: &CosignVerify{Key: resolvePath(p.dir, key)}}
	s.verifyNode = at
}

// checkSigned: referrers and verify are about registry sources, where
// signatures and referrers live. Set on an oci: or docker-archive: entry
// they are errors; defaults.referrers does not apply to one, and
// defaults.verify is an error there (an image required to be signed is
// never mirrored unchecked).
func (p *parser) checkSigned(field string, entryNode *yaml.Node, img *Image, own *settings) {
	if img.Kind == registry.KindRegistry {
		return
	}
	what := img.Kind.Prefix() + " sources"
	if own.referrersNode != nil && own.referrers != nil {
		p.errorf(own.referrersNode, join(field, "referrers"), "not allowed with %s (referrers are found on a registry)", what)
	}
	img.Referrers = nil
	switch {
	case own.verify != nil:
		p.errorf(own.verifyNode, join(field, "verify"), "not allowed with %s (signatures are found on a registry)", what)
	case img.Verify != nil:
		p.errorf(entryNode, field, "defaults.verify: not allowed with %s (signatures are found on a registry): set verify: false on this entry", what)
	}
	img.Verify = nil
}

func cloneReferrers(r *Referrers) *Referrers {
	if r == nil {
		return nil
	}
	return &Referrers{ArtifactTypes: slices.Clone(r.ArtifactTypes)}
}

func cloneVerify(v *Verify) *Verify {
	if v == nil {
		return nil
	}
	c := &Verify{}
	if v.Cosign != nil {
		cv := *v.Cosign
		c.Cosign = &cv
	}
	return c
}
