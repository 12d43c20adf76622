package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipfs-mirror/mirror/internal/redact"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// source is a parsed source string.
type source struct {
	kind       registry.Kind
	text       string // as written, "docker://" removed
	registry   string
	repo       string
	repository string
	tag        string
	digest     string
	path       string
}

// parseSource parses the value of source: (variables already expanded);
// dir is the list's directory.
func parseSource(s, dir string) (source, error) {
	switch kind := registry.KindOf(s); {
	case s == "":
		return source{}, fmt.Errorf("must not be empty")
	case kind == registry.KindOCI:
		rest := s[len(kind.Prefix()):]
		path, tag := rest, ""
		if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.ContainsAny(rest[i+1:], `/\`) {
			path, tag = rest[:i], rest[i+1:]
			if !registry.ValidTag(tag) {
				return source{}, fmt.Errorf("invalid tag %q in %q", tag, s)
			}
		}
		if path == "" {
			return source{}, fmt.Errorf("%q names no directory (want oci:DIR[:TAG])", s)
		}
		return source{kind: registry.KindOCI, text: s, tag: tag, path: resolvePath(dir, path)}, nil
	case kind == registry.KindDockerArchive:
		path := s[len(kind.Prefix()):]
		if path == "" {
			return source{}, fmt.Errorf("%q names no file (want docker-archive:FILE)", s)
		}
		return source{kind: registry.KindDockerArchive, text: s, path: resolvePath(dir, path)}, nil
	}
	return parseRegistryRef(strings.TrimPrefix(s, "docker://"))
}

// parseRegistryRef parses a registry reference: a repository, or one with
// a :tag, an @digest or both. A missing tag is not defaulted.
func parseRegistryRef(s string) (source, error) {
	n, err := registry.ParseName(s)
	if err != nil {
		return source{}, err
	}
	return source{
		kind:       registry.KindRegistry,
		text:       s,
		registry:   n.Registry,
		repo:       n.Repo,
		repository: n.Repository(),
		tag:        n.Tag,
		digest:     n.Digest,
	}, nil
}

// canonical returns the reference with the registry and namespace spelled
// out, e.g. docker.io/library/redis:7; an absent tag is :latest unless a
// digest is given.
func (s source) canonical() string {
	return registry.Name{Registry: s.registry, Repo: s.repo, Tag: s.tag, Digest: s.digest}.String()
}

// resolvePath resolves a relative path against the list's directory.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Operating systems and architectures of OCI image platforms (the GOOS and
// GOARCH values images use).
var (
	knownOS = set("aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
		"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos")
	knownArch = set("386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64",
		"mips64le", "ppc64", "ppc64le", "riscv64", "s390x", "sparc64", "wasm")
	variantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.]*$`)
)

func set(ss ...string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// checkPlatform checks an os/arch[/variant] string.
func checkPlatform(p string) error {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("invalid platform %q: want os/arch[/variant]", p)
	}
	if !knownOS[parts[0]] {
		return fmt.Errorf("invalid platform %q: unknown OS %q", p, parts[0])
	}
	if !knownArch[parts[1]] {
		return fmt.Errorf("invalid platform %q: unknown architecture %q", p, parts[1])
	}
	if len(parts) == 3 && !variantRE.MatchString(parts[2]) {
		return fmt.Errorf("invalid platform %q: invalid variant %q", p, parts[2])
	}
	return nil
}

// checkAPI checks an IPFS API address.
func checkAPI(s string) error {
	if strings.HasPrefix(s, "/") {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("invalid multiaddr %q: %v", s, err)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid API address %q: want a multiaddr (/ip4/127.0.0.1/tcp/5001) or an http(s) URL", redact.URLs(s))
	}
	return nil
}

// resolveRecipient checks an ocicrypt recipient and resolves the key file
// of jwe: and pkcs7: against the list's directory.
func resolveRecipient(r, dir string) (string, error) {
	scheme, value, ok := strings.Cut(r, ":")
	if !ok || (scheme != "jwe" && scheme != "pkcs7" && scheme != "pgp") {
		return "", fmt.Errorf("invalid recipient %q: want jwe:PUBKEY, pkcs7:CERT or pgp:EMAIL", r)
	}
	if value == "" {
		return "", fmt.Errorf("invalid recipient %q: names no key", r)
	}
	if scheme == "pgp" {
		return r, nil
	}
	return scheme + ":" + resolvePath(dir, value), nil
}
