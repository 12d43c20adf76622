package lockfile

import (
	"reflect"
	"strings"
	"testing"
)

const (
	sbomType = "application/spdx+json"
	sigType  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	ociMan   = "application/vnd.oci.image.manifest.v1+json"
)

// TestReferrersField: referrers: is written after upstream: and before
// push:, sorted (subject, artifact type, tag, digest) without repeats,
// tag only when set; it reads back the same, validates, is optional, and
// malformed items are positioned errors.
func TestReferrersField(t *testing.T) {
	sigTag := "sha256-" + strings.TrimPrefix(digA, "sha256:") + ".sig"
	f := New()
	f.Put(Entry{
		Source: "docker.io/library/alpine:3.20", Mode: "plain", Digest: digA, Platforms: []string{}, CID: cidA, Pin: pinA, Upstream: pinA,
		Referrers: []Referrer{
			{Subject: digA, Digest: digC, MediaType: ociMan, ArtifactType: sigType, Tag: sigTag},
			{Subject: digB, Digest: digD, MediaType: ociMan, ArtifactType: sigType},
			{Subject: digA, Digest: digB, MediaType: ociMan, ArtifactType: sbomType},
			{Subject: digA, Digest: digB, MediaType: ociMan, ArtifactType: sbomType},
		},
		Push: []PushTarget{{Ref: "r.example.com/a:1", Digest: digD}},
	})
	b := f.Marshal()
	want := "    upstream: " + pinA + "\n" +
		"    referrers:\n" +
		"      - subject: " + digB + "\n        digest: " + digD + "\n        mediaType: " + ociMan + "\n        artifactType: " + sigType + "\n" +
		"      - subject: " + digA + "\n        digest: " + digB + "\n        mediaType: " + ociMan + "\n        artifactType: " + sbomType + "\n" +
		"      - subject: " + digA + "\n        digest: " + digC + "\n        mediaType: " + ociMan + "\n        artifactType: " + sigType + "\n        tag: " + sigTag + "\n" +
		"    push:\n"
	if !strings.Contains(string(b), want) {
		t.Fatalf("marshalled:\n%s\nwant it to contain\n%s", b, want)
	}
	g, err := Parse("m.lock", b)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := g.Lookup("docker.io/library/alpine:3.20", "plain")
	if len(e.Referrers) != 3 || e.Referrers[2].Tag != sigTag || e.Referrers[0].Subject != digB {
		t.Errorf("read back: %+v", e.Referrers)
	}
	if string(g.Marshal()) != string(b) {
		t.Error("read and written again, the bytes differ")
	}
	if err := g.Validate(); err != nil {
		t.Error(err)
	}
	e.Referrers = nil
	if strings.Contains(string(g.Marshal()), "referrers") {
		t.Error("no referrers, still written")
	}

	for _, tc := range []struct{ from, to, want string }{
		{"subject: " + digB, "subject: sha256:abc", "m.lock:12:18: images[0].referrers[0].subject: invalid digest \"sha256:abc\": invalid checksum digest length"},
		{"artifactType: " + sbomType, "artifactType: spdx", "m.lock:19:23: images[0].referrers[1].artifactType: invalid media type \"spdx\""},
		{"tag: " + sigTag, "tag: latest", "m.lock:24:14: images[0].referrers[2].tag: invalid referrer tag \"latest\": want <algorithm>-<hex>.<suffix>"},
		{"        mediaType: " + ociMan + "\n        artifactType: " + sbomType, "        artifactType: " + sbomType, "m.lock:16:9: images[0].referrers[1].mediaType: required field is missing"},
		{"        tag: " + sigTag, "        size: 3", "m.lock:24:9: images[0].referrers[2].size: unknown field (want one of: subject, digest, mediaType, artifactType, tag)"},
	} {
		bad := strings.Replace(string(b), tc.from, tc.to, 1)
		_, err := Parse("m.lock", []byte(bad))
		if err == nil || err.Error() != tc.want {
			t.Errorf("got  %v\nwant %s", err, tc.want)
		}
	}
	if _, err := Parse("m.lock", []byte(strings.Replace(string(b), "    referrers:\n", "    referrers: {}\n    x:\n", 1))); err == nil {
		t.Error("referrers: {} accepted")
	}

	h := New()
	h.Put(Entry{Source: "a.example.com/a:1", Mode: "plain", Digest: digA, Platforms: []string{}, CID: cidA,
		Referrers: []Referrer{{Subject: digA, Digest: "sha256:x", MediaType: "text/plain; charset=utf-8", ArtifactType: sbomType, Tag: "sha256-zz.sig"}}})
	err = h.Validate()
	var es []string
	for _, e := range splitErrs(err) {
		es = append(es, e.Error())
	}
	wantErrs := []string{
		`images[0].referrers[0].digest: invalid digest "sha256:x": invalid checksum digest length`,
		`images[0].referrers[0].mediaType: invalid media type "text/plain; charset=utf-8"`,
		`images[0].referrers[0].tag: invalid referrer tag "sha256-zz.sig": invalid digest "sha256:zz": invalid checksum digest length`,
	}
	if !reflect.DeepEqual(es, wantErrs) {
		t.Errorf("Validate:\n%s\nwant\n%s", strings.Join(es, "\n"), strings.Join(wantErrs, "\n"))
	}
}

func splitErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
