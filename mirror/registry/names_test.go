package registry

import (
	"strings"
	"testing"
)

func TestCanonicalRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"alpine":                         "docker.io/library/alpine:latest",
		"alpine:3.20":                    "docker.io/library/alpine:3.20",
		"docker.io/library/nginx:1.27":   "docker.io/library/nginx:1.27",
		"ghcr.io/acme/app:1.2.3":         "ghcr.io/acme/app:1.2.3",
		"localhost:5000/x":               "localhost:5000/x:latest",
		"alpine@" + d:                    "docker.io/library/alpine@" + d,
		"alpine:3.20@" + d:               "docker.io/library/alpine:3.20@" + d,
		"index.docker.io/library/alpine": "docker.io/library/alpine:latest",
	} {
		got, err := CanonicalRef(in)
		if err != nil || got != want {
			t.Errorf("CanonicalRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := CanonicalRef("UPPER::bad"); err == nil {
		t.Error("bad reference accepted")
	}
}
