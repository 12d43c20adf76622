package config

import (
	"reflect"
	"testing"
)

func TestSelect(t *testing.T) {
	nginx := []string{
		"latest", "stable", "alpine", "mainline",
		"1.26", "1.26.2", "1.26.2-alpine", "1.27", "1.27.0", "1.27.1", "1.27.2", "1.27.3",
		"1.27.3-alpine", "1.27.3-alpine-slim", "1.27.3-perl", "1.28.0-rc1", "v1.27.4", "1.27.2",
	}
	for _, tc := range []struct {
		name string
		spec TagSpec
		in   []string
		want []string
	}{
		{"list keeps order, drops repeats, ignores available", TagSpec{List: []string{"3.20", "3.19", "3.20"}}, []string{"edge"}, []string{"3.20", "3.19"}},
		{"empty", TagSpec{}, nginx, nil},
		{"allow, sorted by name", TagSpec{Allow: []string{`^1\.27\.3`}}, nginx, []string{"1.27.3", "1.27.3-alpine", "1.27.3-alpine-slim", "1.27.3-perl"}},
		{"allow is unanchored", TagSpec{Allow: []string{`alpine`}}, nginx, []string{"1.26.2-alpine", "1.27.3-alpine", "1.27.3-alpine-slim", "alpine"}},
		{"several allows are or-ed", TagSpec{Allow: []string{`^latest$`, `^stable$`}}, nginx, []string{"latest", "stable"}},
		{"deny only", TagSpec{Deny: []string{`\d`}}, nginx, []string{"alpine", "latest", "mainline", "stable"}},
		{"allow and deny", TagSpec{Allow: []string{`^1\.27`}, Deny: []string{`-`}}, nginx, []string{"1.27", "1.27.0", "1.27.1", "1.27.2", "1.27.3"}},
		{"semver excludes prereleases and non-versions, newest first",
			TagSpec{Semver: ">=1.27 <1.28"}, nginx, []string{"v1.27.4", "1.27.3", "1.27.2", "1.27.1", "1.27", "1.27.0"}},
		{"semver range naming a prerelease", TagSpec{Semver: ">=1.28.0-rc0"}, nginx, []string{"1.28.0-rc1"}},
		{"latest alone keeps prereleases", TagSpec{Latest: 2}, nginx, []string{"1.28.0-rc1", "v1.27.4"}},
		{"latest after deny", TagSpec{Deny: []string{`-`}, Latest: 3}, nginx, []string{"v1.27.4", "1.27.3", "1.27.2"}},
		{"the brief's example", TagSpec{Allow: []string{`^1\.27`}, Deny: []string{`-alpine$`}, Semver: ">=1.27 <1.28", Latest: 3}, nginx, []string{"1.27.3", "1.27.2", "1.27.1"}},
		{"latest of alpine variants", TagSpec{Allow: []string{`-alpine$`}, Latest: 1}, nginx, []string{"1.27.3-alpine"}},
		{"latest larger than what is there", TagSpec{Semver: "^1.26", Latest: 10, Deny: []string{`^1\.27`, `^v`}}, nginx, []string{"1.26.2", "1.26"}},
		{"nothing matches", TagSpec{Semver: ">=2"}, nginx, []string{}},
		{"no tags available", TagSpec{Latest: 1}, nil, []string{}},
		{"date tags are versions too", TagSpec{Allow: []string{`^\d{8}$`}, Latest: 1}, []string{"20240101", "20240315", "edge"}, []string{"20240315"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.spec.Select(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Select = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	for _, tc := range []struct {
		spec TagSpec
		want string
	}{
		{TagSpec{Allow: []string{"("}}, "allow: invalid regular expression \"(\": error parsing regexp: missing closing ): `(`"},
		{TagSpec{Deny: []string{"[z-a]"}}, "deny: invalid regular expression \"[z-a]\": error parsing regexp: invalid character class range: `z-a`"},
		{TagSpec{Semver: ">=x.y.z.w"}, `semver: invalid range ">=x.y.z.w": improper constraint: ">=x.y.z.w"`},
		{TagSpec{Latest: -1}, "latest: must be at least 1, got -1"},
	} {
		if _, err := tc.spec.Select([]string{"1"}); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: err = %v, want %s", tc.spec, err, tc.want)
		}
	}
}

func TestIsList(t *testing.T) {
	if !(TagSpec{List: []string{"1"}}).IsList() || !(TagSpec{}).IsList() {
		t.Error("a list (or nothing) is a list")
	}
	for _, s := range []TagSpec{{Allow: []string{"a"}}, {Deny: []string{"a"}}, {Semver: "^1"}, {Latest: 1}} {
		if s.IsList() {
			t.Errorf("%+v is not a list", s)
		}
	}
}
