package config

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// PushData is what a push template sees.
type PushData struct {
	Registry string     // registry of the source, e.g. docker.io; empty for oci:/docker-archive:
	Repo     string     // repository path without the registry, e.g. library/alpine; for oci:/docker-archive: the base name of the path
	Tag      string     // the tag being mirrored
	Digest   string     // the source digest, e.g. sha256:…
	Mode     modes.Mode // plain, estargz or encrypted
}

// sample values to check templates at load time.
const (
	sampleTag    = "1.0.0"
	sampleTag2   = "1.0.1"
	sampleDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

func parseTemplate(text string) (*template.Template, error) {
	return template.New("push").Option("missingkey=error").Parse(text)
}

// pushData returns the template data of img for tag, digest and mode.
func (img *Image) pushData(tag, digest string, mode modes.Mode) PushData {
	d := PushData{Registry: img.Registry, Repo: img.Repo, Tag: tag, Digest: digest, Mode: mode}
	if img.Kind != registry.KindRegistry {
		base := strings.TrimRight(img.Path, `/\`)
		if i := strings.LastIndexAny(base, `/\`); i >= 0 {
			base = base[i+1:]
		}
		if img.Kind == registry.KindDockerArchive {
			base = strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".tar")
		}
		d.Repo = base
	}
	return d
}

// executePush runs t and checks that the result names a tag.
func executePush(t *template.Template, d PushData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	s := strings.TrimSpace(b.String())
	if err := checkPushRef(s); err != nil {
		return s, err
	}
	return s, nil
}

// checkPushRef checks that s is a registry reference with an explicit tag.
func checkPushRef(s string) error {
	if strings.Contains(s, "@") {
		return fmt.Errorf("template gives %q: push targets must name a tag, not a digest", s)
	}
	t, err := name.NewTag(s, name.WithDefaultTag(""))
	if err != nil {
		return fmt.Errorf("template gives invalid reference %q: %v", s, err)
	}
	if reg := t.Context().RegistryStr(); !registry.ValidHost(reg) {
		return fmt.Errorf("template gives %q: invalid registry host %q", s, reg)
	}
	if t.TagStr() == "" {
		return fmt.Errorf("template gives %q, which names no tag", s)
	}
	if !registry.ValidTag(t.TagStr()) {
		return fmt.Errorf("template gives %q: invalid tag %q", s, t.TagStr())
	}
	return nil
}

// PushTargets returns the registry references the image converted in mode
// is pushed to for tag (the tag being mirrored; "" for a source named by
// digest) and digest (the source digest), one per push template, in order.
func (img *Image) PushTargets(tag, digest, mode string) ([]string, error) {
	if len(img.Push) == 0 {
		return nil, nil
	}
	tmpls := img.push
	if len(tmpls) != len(img.Push) {
		tmpls = make([]*template.Template, len(img.Push))
		for i, text := range img.Push {
			t, err := parseTemplate(text)
			if err != nil {
				return nil, fmt.Errorf("push[%d]: invalid template: %w", i, err)
			}
			tmpls[i] = t
		}
	}
	d := img.pushData(tag, digest, modes.Mode(mode))
	out := make([]string, 0, len(tmpls))
	for i, t := range tmpls {
		s, err := executePush(t, d)
		if err != nil {
			return nil, fmt.Errorf("push[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}
