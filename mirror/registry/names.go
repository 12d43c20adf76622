package registry

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	godigest "github.com/opencontainers/go-digest"
)

// The grammar of registry names, in one place: the mirrors list, the
// compose rewrite and mirror serve all parse and compare names with it.
var (
	// hostRE is a registry host: a DNS name or a bracketed IPv6 address,
	// with an optional port.
	hostRE = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:[0-9]+)?$`)
	// tagRE is an image tag (OCI distribution spec).
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// componentRE is one component of a repository path (docker's
	// reference grammar).
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
)

// DockerHub is the host Docker Hub names are written with.
const DockerHub = "docker.io"

// ValidHost reports whether s is a registry host (a DNS name or a
// bracketed IPv6 address, with an optional port).
func ValidHost(s string) bool { return hostRE.MatchString(s) }

// ValidTag reports whether s is an image tag.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// ValidComponent reports whether s is one component of a repository path.
func ValidComponent(s string) bool { return componentRE.MatchString(s) }

// Name is a parsed registry reference: a repository, with a tag, a digest,
// both or neither.
type Name struct {
	// Registry is the host (with its port, if any); Docker Hub is
	// docker.io, never index.docker.io.
	Registry string
	// Repo is the repository path in the registry, Docker Hub's official
	// images under library/ (library/alpine).
	Repo string
	// Tag and Digest are as written; "" when absent (a missing tag is not
	// defaulted).
	Tag    string
	Digest string
}

// Repository is the registry and the repository path joined
// (docker.io/library/alpine).
func (n Name) Repository() string { return n.Registry + "/" + n.Repo }

// String is the canonical reference, the lockfile's form of it:
// Repository:TAG, Repository@DIGEST or Repository:TAG@DIGEST; an absent tag
// is :latest unless a digest is given (as compose does).
func (n Name) String() string {
	out := n.Repository()
	if n.Tag != "" {
		out += ":" + n.Tag
	} else if n.Digest == "" {
		out += ":latest"
	}
	if n.Digest != "" {
		out += "@" + n.Digest
	}
	return out
}

// badName is a reference that does not parse; errors.Is(err,
// ErrBadReference) holds for it.
type badName struct{ msg string }

func (e *badName) Error() string        { return e.msg }
func (e *badName) Is(target error) bool { return target == ErrBadReference }

func badNamef(format string, args ...any) error {
	return &badName{fmt.Sprintf(format, args...)}
}

// ParseName parses a registry reference (no docker:// prefix: a scheme is
// an error). Its errors name the part at fault: `invalid reference "…":
// invalid registry host "…"`, and match ErrBadReference.
func ParseName(s string) (Name, error) {
	if scheme, _, ok := strings.Cut(s, "://"); ok && !strings.ContainsAny(scheme, "/:@") {
		return Name{}, badNamef("invalid reference %q: remove the %s:// scheme", s, scheme)
	}
	base, digest, hasDigest := strings.Cut(s, "@")
	if _, err := name.ParseReference(s); err != nil {
		// ParseReference says only "could not parse reference": find
		// the part at fault for a better message.
		detail := err
		if _, terr := name.NewTag(base); terr != nil {
			detail = terr
		} else if hasDigest {
			if _, derr := godigest.Parse(digest); derr != nil {
				detail = fmt.Errorf("invalid digest %q: %v", digest, derr)
			} else if _, derr := name.NewDigest(s); derr != nil {
				detail = derr
			}
		}
		return Name{}, badNamef("invalid reference %q: %v", s, detail)
	}
	t, err := name.NewTag(base, name.WithDefaultTag(""))
	if err != nil {
		return Name{}, badNamef("invalid reference %q: %v", s, err)
	}
	if tag := t.TagStr(); tag != "" && !ValidTag(tag) {
		return Name{}, badNamef("invalid reference %q: invalid tag %q", s, tag)
	}
	repo := t.Context()
	reg := repo.RegistryStr()
	if !ValidHost(reg) {
		return Name{}, badNamef("invalid reference %q: invalid registry host %q", s, reg)
	}
	if reg == name.DefaultRegistry {
		reg = DockerHub
	}
	return Name{Registry: reg, Repo: repo.RepositoryStr(), Tag: t.TagStr(), Digest: digest}, nil
}

// CanonicalRef is the lockfile's form of a registry reference (see
// Name.String): docker.io/library/alpine:3.20 for alpine:3.20,
// docker.io/library/alpine:latest for alpine.
func CanonicalRef(s string) (string, error) {
	n, err := ParseName(s)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// normalizeHost is the form hosts are compared in: lower case, every name
// of Docker Hub as docker.io.
func normalizeHost(h string) string {
	switch h = strings.ToLower(h); h {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return DockerHub
	}
	return h
}

// isHost reports whether the first component of a name is a registry host
// (docker's rule, go-containerregistry's too: it has a dot or a port, or is
// localhost).
func isHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

// CanonicalRepo turns a repository name into the one form names are
// compared in: host/path, the host in lower case, Docker Hub as docker.io,
// its official images under library/. A first component with a folded
// port (see FoldPort) is unfolded. ns is the registry host containerd sends
// (?ns=) when it uses a server as a mirror; then name has no host of its
// own. ok is false for a name that is not a valid repository.
func CanonicalRepo(ns, name string) (repo string, ok bool) {
	host, path := DockerHub, name
	if ns != "" {
		host = ns
	} else if first, rest, ok := strings.Cut(name, "/"); ok && unfoldPort(first) != "" {
		host, path = unfoldPort(first), rest
	} else if ok && isHost(first) {
		host, path = first, rest
	}
	if !ValidHost(host) || path == "" {
		return "", false
	}
	host = normalizeHost(host)
	parts := strings.Split(path, "/")
	for _, p := range parts {
		if !ValidComponent(p) {
			return "", false
		}
	}
	if host == DockerHub && len(parts) == 1 {
		path = "library/" + path
	}
	return host + "/" + path, true
}

// SplitSource splits a lockfile source (host/path:tag, host/path@digest,
// host/path:tag@digest, a docker:// prefix allowed) into its repository in
// the form of CanonicalRepo and its tag ("" when it names a digest only).
// ok is false for sources that are not registry references (oci:,
// docker-archive:, oci-archive:) or not valid ones.
func SplitSource(src string) (repo, tag string, ok bool) {
	src = strings.TrimPrefix(src, "docker://")
	if KindOf(src) != KindRegistry || strings.HasPrefix(src, "oci-archive:") {
		return "", "", false
	}
	n, err := ParseName(src)
	if err != nil {
		return "", "", false
	}
	repo, ok = CanonicalRepo("", n.Repository())
	return repo, n.Tag, ok
}

// foldedRE is a registry host with its port folded into a path component
// (127.0.0.1_15000, localhost_5000, registry.example_8443).
var foldedRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]*[a-z0-9])?)_([0-9]{1,5})$`)

// FoldPort turns a canonical repository whose host has a port into the
// form docker-style clients can name behind another host: the port folded
// into the first component with "_" (127.0.0.1:15000/test/hello →
// 127.0.0.1_15000/test/hello). "_" separates path components in the
// reference grammar and never appears in a host name, so the fold is
// unambiguous. Other names, and IPv6 hosts (no bracket is valid in a
// component), are returned as they are.
func FoldPort(repo string) string {
	first, rest, ok := strings.Cut(repo, "/")
	if !ok || strings.HasPrefix(first, "[") {
		return repo
	}
	h, port, ok := strings.Cut(first, ":")
	if !ok {
		return repo
	}
	return h + "_" + port + "/" + rest
}

// unfoldPort is the host:port of a folded first component, or "" when it is
// not one (the host part must look like a host: a dot, or localhost).
func unfoldPort(first string) string {
	m := foldedRE.FindStringSubmatch(first)
	if m == nil || !(strings.Contains(m[1], ".") || m[1] == "localhost") {
		return ""
	}
	return m[1] + ":" + m[3]
}
