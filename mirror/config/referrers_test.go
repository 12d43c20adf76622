package config

import (
	"reflect"
	"strings"
	"testing"
)

// referrersErrors are malformed referrers: and verify: settings and the
// exact error each gives (issue 18).
var referrersErrors = []struct{ name, in, want string }{
	{"referrers a string", v + "images:\n  - source: a:1\n    referrers: \"yes\"\n", "mirrors.yaml:4:16: images[0].referrers: expected a boolean, got a string"},
	{"referrers a list", v + "images:\n  - source: a:1\n    referrers: [sig]\n", "mirrors.yaml:4:16: images[0].referrers: expected a boolean or a mapping, got a sequence"},
	{"referrers unknown field", v + "images:\n  - source: a:1\n    referrers: {artifactTypes: [application/spdx+json]}\n", "mirrors.yaml:4:17: images[0].referrers.artifactTypes: unknown field (want one of: artifact_types)"},
	{"artifact types empty", v + "images:\n  - source: a:1\n    referrers: {artifact_types: []}\n", "mirrors.yaml:4:33: images[0].referrers.artifact_types: must not be empty (leave artifact_types out to keep every referrer)"},
	{"artifact type not a media type", v + "images:\n  - source: a:1\n    referrers: {artifact_types: [spdx]}\n", "mirrors.yaml:4:34: images[0].referrers.artifact_types[0]: invalid artifact type \"spdx\": want a media type, type/subtype"},
	{"artifact type with parameters", v + "defaults:\n  referrers: {artifact_types: [\"text/plain; charset=utf-8\"]}\nimages:\n  - source: a:1\n", "mirrors.yaml:3:32: defaults.referrers.artifact_types[0]: invalid artifact type \"text/plain; charset=utf-8\": want a media type, type/subtype"},
	{"artifact type repeated", v + "images:\n  - source: a:1\n    referrers: {artifact_types: [application/spdx+json, application/spdx+json]}\n", "mirrors.yaml:4:57: images[0].referrers.artifact_types[1]: duplicate artifact type \"application/spdx+json\""},
	{"referrers on oci", v + "images:\n  - source: oci:layout:v1\n    referrers: true\n", "mirrors.yaml:4:16: images[0].referrers: not allowed with oci: sources (referrers are found on a registry)"},
	{"verify without cosign", v + "images:\n  - source: a:1\n    verify: {}\n", "mirrors.yaml:4:13: images[0].verify.cosign: required field is missing (the one kind of verification: cosign: {key: FILE})"},
	{"verify unknown kind", v + "images:\n  - source: a:1\n    verify: {notation: {}}\n", "mirrors.yaml:4:13: images[0].verify.cosign: required field is missing (the one kind of verification: cosign: {key: FILE})\n" +
		"mirrors.yaml:4:14: images[0].verify.notation: unknown field (want one of: cosign)"},
	{"verify without key", v + "images:\n  - source: a:1\n    verify: {cosign: {}}\n", "mirrors.yaml:4:22: images[0].verify.cosign.key: required field is missing (a public key file, as cosign.pub)"},
	{"verify keyless", v + "images:\n  - source: a:1\n    verify: {cosign: {identity: me}}\n", "mirrors.yaml:4:22: images[0].verify.cosign.key: required field is missing (a public key file, as cosign.pub)\n" +
		"mirrors.yaml:4:23: images[0].verify.cosign.identity: unknown field (want one of: key)"},
	{"verify empty key", v + "images:\n  - source: a:1\n    verify: {cosign: {key: \"\"}}\n", "mirrors.yaml:4:28: images[0].verify.cosign.key: must not be empty"},
	{"verify key unset variable", v + "images:\n  - source: a:1\n    verify: {cosign: {key: \"${NOPE}/k.pub\"}}\n", "mirrors.yaml:4:28: images[0].verify.cosign.key: environment variable \"NOPE\" is not set"},
	{"verify a string", v + "images:\n  - source: a:1\n    verify: cosign.pub\n", "mirrors.yaml:4:13: images[0].verify: expected a mapping, got a string"},
	{"verify on docker-archive", v + "images:\n  - source: docker-archive:a.tar\n    verify: {cosign: {key: k.pub}}\n", "mirrors.yaml:4:13: images[0].verify: not allowed with docker-archive: sources (signatures are found on a registry)"},
	{"defaults verify on oci", v + "defaults: {verify: {cosign: {key: k.pub}}}\nimages:\n  - source: a:1\n  - source: oci:layout:v1\n", "mirrors.yaml:5:5: images[1]: defaults.verify: not allowed with oci: sources (signatures are found on a registry): set verify: false on this entry"},
	{"verify true", v + "images:\n  - source: a:1\n    verify: true\n", "mirrors.yaml:4:13: images[0].verify: true says not how: write verify: {cosign: {key: FILE}} (false turns defaults.verify off)"},
	{"verify false on docker-archive", v + "images:\n  - source: docker-archive:a.tar\n    verify: false\n    referrers: {artifact_types: [a/b]}\n", "mirrors.yaml:5:16: images[0].referrers: not allowed with docker-archive: sources (referrers are found on a registry)"},
}

func TestReferrersErrors(t *testing.T) {
	for _, tc := range referrersErrors {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseTest(tc.in)
			if err == nil {
				t.Fatalf("no error (got %d images); want %s", len(f.Images), tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			checkErrors(t, err)
		})
	}
}

// TestReferrersResolved: defaults apply unless an entry sets its own
// (referrers: false included), key paths resolve against the list's
// directory, and an oci: source gets neither.
func TestReferrersResolved(t *testing.T) {
	f, err := Parse("lists/mirrors.yaml", []byte(v+`defaults:
  referrers: {artifact_types: [application/spdx+json]}
  verify: {cosign: {key: keys/cosign.pub}}
images:
  - source: ghcr.io/acme/a:1
  - source: ghcr.io/acme/b:1
    referrers: true
    verify: {cosign: {key: /etc/keys/b.pub}}
  - source: ghcr.io/acme/c:1
    referrers: false
  - source: oci:layout:v1
    verify: false
  - source: ghcr.io/acme/d:1
    verify: false
`), WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, o := f.Images[0], f.Images[1], f.Images[2], f.Images[3]
	if !reflect.DeepEqual(a.Referrers, &Referrers{ArtifactTypes: []string{"application/spdx+json"}}) || a.Verify.Cosign.Key != "lists/keys/cosign.pub" {
		t.Errorf("defaults not applied: %+v %+v", a.Referrers, a.Verify)
	}
	if !reflect.DeepEqual(b.Referrers, &Referrers{}) || b.Verify.Cosign.Key != "/etc/keys/b.pub" {
		t.Errorf("own settings: %+v %+v", b.Referrers, b.Verify)
	}
	if c.Referrers != nil || c.Verify == nil {
		t.Errorf("referrers: false: %+v %+v", c.Referrers, c.Verify)
	}
	if o.Referrers != nil || o.Verify != nil {
		t.Errorf("oci: source: %+v %+v", o.Referrers, o.Verify)
	}
	if d := f.Images[4]; d.Verify != nil || d.Referrers == nil {
		t.Errorf("verify: false: %+v %+v", d.Referrers, d.Verify)
	}
	if !a.Referrers.Wants("application/spdx+json") || a.Referrers.Wants("application/vnd.dev.cosign.artifact.sig.v1+json") ||
		!b.Referrers.Wants("anything/at-all") || c.Referrers.Wants("application/spdx+json") {
		t.Error("Wants")
	}
}

// TestReferrersCompose: compose images take the entry's referrers and
// verify, and two compose entries naming one image merge only when those
// agree too.
func TestReferrersCompose(t *testing.T) {
	f, err := parseTest(v + "images:\n  - compose: other/compose.yaml\n    referrers: true\n    verify: {cosign: {key: k.pub}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if img := f.Images[0]; img.Referrers == nil || img.Verify == nil || img.Verify.Cosign.Key != "k.pub" {
		t.Errorf("compose image: %+v %+v", img.Referrers, img.Verify)
	}
	_, err = parseTest(v + "images:\n  - compose: other/compose.yaml\n    referrers: true\n  - compose: other/compose.yaml\n")
	if err == nil || !strings.Contains(err.Error(), "images[1].compose: image docker.io/library/nginx:1.27 (services proxy) is also mirrored by images[0]") {
		t.Errorf("err = %v", err)
	}
}
