package registry

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// CanonicalRef is the lockfile's form of a registry reference:
// docker.io/library/alpine:3.20 (":latest" when untagged, as compose does),
// REPO@DIGEST or REPO:TAG@DIGEST.
func CanonicalRef(s string) (string, error) {
	base, dgst, hasDigest := strings.Cut(s, "@")
	tag, err := name.NewTag(base)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadReference, s, err)
	}
	reg := tag.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + tag.Context().RepositoryStr()
	if !hasDigest {
		return repo + ":" + tag.TagStr(), nil
	}
	d, err := name.NewDigest(repo + "@" + dgst)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadReference, s, err)
	}
	if strings.Contains(base[strings.LastIndex(base, "/")+1:], ":") {
		return repo + ":" + tag.TagStr() + "@" + d.DigestStr(), nil
	}
	return repo + "@" + d.DigestStr(), nil
}
