package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// TagSpec says which tags of a repository to mirror: either a List of tags,
// or selectors (Allow, Deny, Semver, Latest) applied to the tags the
// registry lists.
type TagSpec struct {
	// List is a plain list of tags, in the order written, without repeats.
	List []string

	// Allow keeps only the tags that match at least one of these regular
	// expressions (Go syntax, unanchored: write ^ and $ yourself); Deny
	// drops the tags that match any of them.
	Allow []string
	Deny  []string
	// Semver keeps only the tags that are semantic versions (a leading "v"
	// and a missing minor or patch are fine: v1.27, 3.20) within this range
	// (github.com/Masterminds/semver/v3 syntax, e.g. ">=1.27 <1.28").
	Semver string
	// Latest keeps the newest N tags by semantic version among those the
	// other selectors kept; tags that are not versions are dropped.
	Latest int
}

// IsList reports whether t is a plain list of tags (or empty): Select then
// needs no tag listing from the registry and returns t.List.
func (t TagSpec) IsList() bool {
	return len(t.Allow) == 0 && len(t.Deny) == 0 && t.Semver == "" && t.Latest == 0
}

// Select returns the tags of available that t selects.
//
// For a list it returns the list itself (in the order written, without
// repeats) and ignores available. For selectors it keeps the tags matching
// an Allow expression (all tags when Allow is empty) and no Deny expression;
// then, when Semver or Latest is set, only the tags that parse as semantic
// versions, within the Semver range, the newest Latest of them, newest
// first (equal versions such as 1.2 and 1.2.0 ordered by name). Without
// Semver and Latest the result is sorted by name. Repeats in available are
// ignored.
//
// Prerelease versions (1.0.0-rc1, 1.27.3-alpine) follow Masterminds' rule
// under a Semver range: they are kept only when the range itself names a
// prerelease. Latest alone keeps them; add a Deny to drop them.
func (t TagSpec) Select(available []string) ([]string, error) {
	if t.IsList() {
		return dedup(t.List), nil
	}
	allow, err := compileAll(t.Allow)
	if err != nil {
		return nil, fmt.Errorf("allow: %w", err)
	}
	deny, err := compileAll(t.Deny)
	if err != nil {
		return nil, fmt.Errorf("deny: %w", err)
	}
	var constraint *semver.Constraints
	if t.Semver != "" {
		constraint, err = semver.NewConstraint(t.Semver)
		if err != nil {
			return nil, fmt.Errorf("semver: invalid range %q: %w", t.Semver, err)
		}
	}
	if t.Latest < 0 {
		return nil, fmt.Errorf("latest: must be at least 1, got %d", t.Latest)
	}

	var kept []string
	for _, tag := range dedup(available) {
		if len(allow) > 0 && !matchAny(allow, tag) {
			continue
		}
		if matchAny(deny, tag) {
			continue
		}
		kept = append(kept, tag)
	}
	if constraint == nil && t.Latest == 0 {
		slices.Sort(kept)
		return kept, nil
	}

	type version struct {
		tag string
		v   *semver.Version
	}
	var vs []version
	for _, tag := range kept {
		v, err := parseVersion(tag)
		if err != nil {
			continue
		}
		if constraint != nil && !constraint.Check(v) {
			continue
		}
		vs = append(vs, version{tag, v})
	}
	slices.SortFunc(vs, func(a, b version) int {
		if c := b.v.Compare(a.v); c != 0 {
			return c
		}
		return strings.Compare(a.tag, b.tag)
	})
	if t.Latest > 0 && len(vs) > t.Latest {
		vs = vs[:t.Latest]
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.tag
	}
	return out, nil
}

// parseVersion parses a tag as a semantic version, leniently (v1, 1.2,
// v1.2.3-rc1) but refusing what is not a version at all.
func parseVersion(tag string) (*semver.Version, error) {
	s := strings.TrimPrefix(tag, "v")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return nil, fmt.Errorf("not a version: %q", tag)
	}
	return semver.NewVersion(tag)
}

func compileAll(exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q: %w", e, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// dedup returns a copy of ss without repeats, keeping the first of each.
func dedup(ss []string) []string {
	if ss == nil {
		return nil
	}
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
