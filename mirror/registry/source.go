package registry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ipfs-mirror/mirror/manifests"
)

// Kind is the transport of a SOURCE or DEST (and of a mirrors list's
// source): a registry, an OCI layout or a docker archive.
type Kind string

// The kinds, as their prefixes name them (oci:DIR, docker-archive:FILE).
const (
	KindRegistry      Kind = "registry"
	KindOCI           Kind = "oci"
	KindDockerArchive Kind = "docker-archive"
)

// KindOf is the kind s names by its prefix: oci:, docker-archive:, else a
// registry reference.
func KindOf(s string) Kind {
	for _, k := range []Kind{KindOCI, KindDockerArchive} {
		if strings.HasPrefix(s, k.Prefix()) {
			return k
		}
	}
	return KindRegistry
}

// Prefix is the prefix of the kind's names ("oci:", "docker-archive:"; ""
// for a registry).
func (k Kind) Prefix() string {
	if k == KindRegistry {
		return ""
	}
	return string(k) + ":"
}

// Ref is a parsed SOURCE or DEST: a registry reference, "oci:DIR[:TAG]" or
// "docker-archive:FILE[:NAME:TAG]".
type Ref struct {
	Kind Kind
	// Registry reference (KindRegistry).
	Ref name.Reference
	// Path of the layout or archive, and the tag inside it (may be empty).
	Path string
	Tag  string
}

func (r Ref) String() string {
	switch r.Kind {
	case KindRegistry:
		return r.Ref.String()
	case KindOCI, KindDockerArchive:
		if r.Tag != "" {
			return r.Kind.Prefix() + r.Path + ":" + r.Tag
		}
		return r.Kind.Prefix() + r.Path
	}
	return "?"
}

// Options configure registry access.
type Options struct {
	// Insecure allows plain HTTP and unverified TLS for the registry.
	Insecure bool
	// Keychain resolves credentials (default: the docker config and its
	// credential helpers).
	Keychain authn.Keychain
	// Transport overrides the HTTP transport (tests, retries, counting).
	Transport http.RoundTripper
	// UserAgent is sent to registries.
	UserAgent string
	// Puller, when set, is reused by every request (remote.Reuse): the
	// registry ping and token exchange happen once per repository, not once
	// per request.
	Puller *remote.Puller
	// Blobs, when set, is shared by every source opened with these
	// options (one transport per repository); otherwise each source
	// makes its own.
	Blobs *BlobFetcher
}

func (o Options) NameOptions() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// keychain is o.Keychain or the default one.
func (o Options) keychain() authn.Keychain {
	if o.Keychain == nil {
		return authn.DefaultKeychain
	}
	return o.Keychain
}

// userAgent is o.UserAgent or "mirror".
func (o Options) userAgent() string {
	if o.UserAgent == "" {
		return "mirror"
	}
	return o.UserAgent
}

// baseTransport is go-containerregistry's default transport, with TLS
// verification off when o.Insecure.
func (o Options) BaseTransport() *http.Transport {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if o.Insecure {
		t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the user asked for --insecure
	}
	return t
}

// Remote returns go-containerregistry remote options for ctx.
func (o Options) Remote(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain())}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
		if _, ok := o.Transport.(*RetryTransport); ok {
			// Ours retries (honouring Retry-After): switch go-containerregistry's off.
			opts = append(opts, remote.WithRetryBackoff(remote.Backoff{Steps: 1}), remote.WithRetryStatusCodes())
		}
	} else if o.Insecure {
		opts = append(opts, remote.WithTransport(o.BaseTransport()))
	}
	opts = append(opts, remote.WithUserAgent(o.userAgent()))
	if o.Puller != nil {
		opts = append(opts, remote.Reuse(o.Puller))
	}
	return opts
}

// ParseRef parses a SOURCE or DEST.
func ParseRef(s string, o Options) (Ref, error) {
	switch KindOf(s) {
	case KindOCI:
		p, tag := splitPathTag(strings.TrimPrefix(s, KindOCI.Prefix()))
		if p == "" {
			return Ref{}, fmt.Errorf("%w %q: want oci:DIR[:TAG]", ErrBadReference, s)
		}
		return Ref{Kind: KindOCI, Path: p, Tag: tag}, nil
	case KindDockerArchive:
		rest := strings.TrimPrefix(s, KindDockerArchive.Prefix())
		// FILE[:NAME:TAG] — the reference part may hold one more colon.
		p, tag := rest, ""
		if i := strings.Index(rest, ":"); i >= 0 {
			p, tag = rest[:i], rest[i+1:]
		}
		if p == "" {
			return Ref{}, fmt.Errorf("%w %q: want docker-archive:FILE[:NAME:TAG]", ErrBadReference, s)
		}
		if tag != "" {
			if _, err := name.NewTag(tag, name.WeakValidation); err != nil {
				return Ref{}, fmt.Errorf("%w %q: %v", ErrBadReference, s, err)
			}
		}
		return Ref{Kind: KindDockerArchive, Path: p, Tag: tag}, nil
	}
	if strings.HasPrefix(s, "ipfs://") {
		return Ref{}, fmt.Errorf("%w %q: an ipfs:// name is not a registry image (use mirror pull)", ErrBadReference, s)
	}
	s = strings.TrimPrefix(s, "docker://")
	r, err := name.ParseReference(s, o.NameOptions()...)
	if err != nil {
		return Ref{}, fmt.Errorf("%w %q: %v", ErrBadReference, s, err)
	}
	return Ref{Kind: KindRegistry, Ref: r}, nil
}

// splitPathTag splits "DIR:TAG" at the last colon after the last slash.
func splitPathTag(s string) (string, string) {
	slash := strings.LastIndex(s, "/")
	if i := strings.LastIndex(s, ":"); i > slash {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// Source is an opened image: an Index or an Image, and the digest the
// source gave it.
type Source struct {
	Ref    Ref
	Index  v1.ImageIndex
	Image  v1.Image
	Digest v1.Hash
}

// Node returns the index or the image.
func (s *Source) Node() manifests.Node {
	if s.Index != nil {
		return s.Index
	}
	return s.Image
}

// OpenSource opens a SOURCE lazily: only the top manifest is read here.
func OpenSource(ctx context.Context, r Ref, o Options) (*Source, error) {
	src := &Source{Ref: r}
	switch r.Kind {
	case KindRegistry:
		desc, err := remote.Get(r.Ref, o.Remote(ctx)...)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", r.Ref, err)
		}
		src.Digest = desc.Digest
		if desc.MediaType.IsIndex() {
			src.Index, err = desc.ImageIndex()
		} else {
			src.Image, err = desc.Image()
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", r.Ref, err)
		}
		// Blobs are read with plain GETs and hashed once, by the writer.
		f := o.Blobs
		if f == nil {
			f = NewBlobFetcher(o)
		}
		if src.Index != nil {
			src.Index = &rawIndex{index: src.Index, repo: r.Ref.Context(), f: f}
		} else {
			src.Image = &rawImage{Image: src.Image, repo: r.Ref.Context(), f: f}
		}
	case KindOCI:
		if _, err := os.Stat(r.Path); err != nil {
			return nil, fmt.Errorf("oci:%s: %w", r.Path, err)
		}
		lp, err := layout.FromPath(r.Path)
		if err != nil {
			return nil, fmt.Errorf("oci:%s: %w", r.Path, err)
		}
		outer, err := lp.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("oci:%s: %w", r.Path, err)
		}
		im, err := outer.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("oci:%s: %w", r.Path, err)
		}
		var pick *v1.Descriptor
		var names []string
		for i, m := range im.Manifests {
			n := m.Annotations["org.opencontainers.image.ref.name"]
			names = append(names, n)
			if r.Tag != "" && n == r.Tag {
				pick = &im.Manifests[i]
			}
		}
		switch {
		case r.Tag == "" && len(im.Manifests) == 1:
			pick = &im.Manifests[0]
		case r.Tag == "" && len(im.Manifests) == 0:
			return nil, fmt.Errorf("oci:%s: the layout holds no image", r.Path)
		case r.Tag == "":
			return nil, fmt.Errorf("oci:%s holds %d images (%s): name one as oci:%s:TAG", r.Path, len(im.Manifests), strings.Join(names, ", "), r.Path)
		case pick == nil:
			return nil, fmt.Errorf("oci:%s: no image named %q (have %s)", r.Path, r.Tag, strings.Join(names, ", "))
		}
		src.Digest = pick.Digest
		if pick.MediaType.IsIndex() {
			src.Index, err = outer.ImageIndex(pick.Digest)
		} else {
			src.Image, err = outer.Image(pick.Digest)
		}
		if err != nil {
			return nil, fmt.Errorf("oci:%s: %w", r.Path, err)
		}
	case KindDockerArchive:
		var tag *name.Tag
		if r.Tag != "" {
			t, err := name.NewTag(r.Tag, name.WeakValidation)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadReference, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(r.Path, tag)
		if err != nil {
			return nil, fmt.Errorf("docker-archive:%s: %w", r.Path, err)
		}
		src.Image = img
		if src.Digest, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("docker-archive:%s: %w", r.Path, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadReference, r.Kind)
	}
	return src, nil
}
