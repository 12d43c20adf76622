package lockfile

import (
	"cmp"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Referrer is one document mirrored beside an entry because it refers to
// one of the entry's manifests (issue 18): a signature, an attestation,
// an SBOM. Its manifest and blobs are in the entry's upstream documents.
type Referrer struct {
	// Subject is the digest of the manifest it refers to: the entry's
	// digest, or one of its platforms' manifests.
	Subject string
	// Digest and MediaType describe the referrer's manifest.
	Digest    string
	MediaType string
	// ArtifactType is its artifact type (the manifest's artifactType, else
	// its config media type; for a document of cosign's tag schema, the
	// type cosign gives such a document as an OCI 1.1 referrer).
	ArtifactType string
	// Tag is the cosign tag-schema tag it was found on
	// (sha256-<hex>.sig); empty for an OCI 1.1 referrer.
	Tag string
}

func compareReferrers(a, b Referrer) int {
	return cmp.Or(strings.Compare(a.Subject, b.Subject), strings.Compare(a.ArtifactType, b.ArtifactType),
		strings.Compare(a.Tag, b.Tag), strings.Compare(a.Digest, b.Digest), strings.Compare(a.MediaType, b.MediaType))
}

// NormalizedReferrers are rs as the lockfile writes them: sorted by
// subject, artifact type, tag and digest, without repeats (a new slice).
func NormalizedReferrers(rs []Referrer) []Referrer { return normalizeReferrers(rs) }

// normalizeReferrers sorts by subject, artifact type, tag and digest, and
// drops repeats.
func normalizeReferrers(rs []Referrer) []Referrer {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, compareReferrers)
	return slices.Compact(rs)
}

func referrersNode(rs []Referrer) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range rs {
		kv := []any{
			"subject", str(r.Subject),
			"digest", str(r.Digest),
			"mediaType", str(r.MediaType),
			"artifactType", str(r.ArtifactType),
		}
		if r.Tag != "" {
			kv = append(kv, "tag", str(r.Tag))
		}
		seq.Content = append(seq.Content, mapping(kv...))
	}
	return seq
}

var referrerFields = []string{"subject", "digest", "mediaType", "artifactType", "tag"}

func (r *reader) referrers(n *yaml.Node, field string) []Referrer {
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, field, "expected a sequence")
		return nil
	}
	var out []Referrer
	for j, x := range n.Content {
		f := field + "[" + strconv.Itoa(j) + "]"
		m, ok := r.fields(x, f, referrerFields...)
		if !ok {
			continue
		}
		out = append(out, Referrer{
			Subject:      r.str(m, x, f, "subject", true, checkDigest),
			Digest:       r.str(m, x, f, "digest", true, checkDigest),
			MediaType:    r.str(m, x, f, "mediaType", true, checkMediaType),
			ArtifactType: r.str(m, x, f, "artifactType", true, checkMediaType),
			Tag:          r.str(m, x, f, "tag", false, checkReferrerTag),
		})
	}
	return out
}

// validateReferrers checks what Validate checks of an entry's referrers.
func validateReferrers(rs []Referrer, add func(name string, err error)) {
	for j, x := range rs {
		f := "referrers[" + strconv.Itoa(j) + "]"
		add(f+".subject", checkDigest(x.Subject))
		add(f+".digest", checkDigest(x.Digest))
		add(f+".mediaType", checkMediaType(x.MediaType))
		add(f+".artifactType", checkMediaType(x.ArtifactType))
		if x.Tag != "" {
			add(f+".tag", checkReferrerTag(x.Tag))
		}
	}
}

func checkMediaType(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if mt, params, err := mime.ParseMediaType(s); err != nil || len(params) > 0 || strings.Count(mt, "/") != 1 {
		return fmt.Errorf("invalid media type %q", s)
	}
	return nil
}

// checkReferrerTag: cosign's tag schema, <algorithm>-<hex>.<suffix>.
func checkReferrerTag(s string) error {
	alg, rest, ok := strings.Cut(s, "-")
	hex, suffix, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || alg == "" || suffix == "" || strings.ContainsAny(suffix, ".:/@") {
		return fmt.Errorf("invalid referrer tag %q: want <algorithm>-<hex>.<suffix>", s)
	}
	if err := checkDigest(alg + ":" + hex); err != nil {
		return fmt.Errorf("invalid referrer tag %q: %v", s, err)
	}
	return nil
}
