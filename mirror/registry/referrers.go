package registry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

// The referrers of a manifest (issue 18): the documents that refer to it —
// signatures, attestations, SBOMs — as a registry lists them through the
// OCI 1.1 referrers API, or without it through the referrers tag schema
// (an index tagged sha256-<hex>), and cosign's own documents on its tag
// schema (sha256-<hex>.sig, .att, .sbom).

// CosignSuffixes are the suffixes of cosign's tag schema, in the order
// they are looked up: signature, attestation, SBOM.
var CosignSuffixes = []string{"sig", "att", "sbom"}

// CosignArtifactType is the artifact type of a cosign tag-schema document
// of suffix ("sig", "att", "sbom"): the artifactType cosign itself gives
// such a document when it stores it as an OCI 1.1 referrer
// (application/vnd.dev.cosign.artifact.sig.v1+json). The documents on the
// tags carry no type of their own.
func CosignArtifactType(suffix string) string {
	return "application/vnd.dev.cosign.artifact." + suffix + ".v1+json"
}

// ReferrersTag is the referrers tag schema's tag of subject: sha256-<hex>.
func ReferrersTag(subject v1.Hash) string { return subject.Algorithm + "-" + subject.Hex }

// CosignTag is cosign's tag of subject for suffix: sha256-<hex>.sig.
func CosignTag(subject v1.Hash, suffix string) string { return ReferrersTag(subject) + "." + suffix }

// ArtifactType is the artifact type of an image manifest as the OCI image
// spec defines it: its artifactType, else its config's media type.
func ArtifactType(m *v1.Manifest) string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	return string(m.Config.MediaType)
}

// Referrer is one document found to refer to a subject manifest.
type Referrer struct {
	// Digest, MediaType and Size describe the referrer's manifest.
	Digest    v1.Hash
	MediaType types.MediaType
	Size      int64
	// ArtifactType is the manifest's (ArtifactType), or for a document
	// found only on cosign's tag schema, CosignArtifactType of its suffix.
	ArtifactType string
	// Tag is the cosign tag-schema tag it was found on
	// (sha256-<hex>.sig); "" for a referrer found only as an OCI 1.1
	// referrer (its manifest names the subject).
	Tag string
	// Annotations are the manifest's annotations.
	Annotations map[string]string
	// Manifest is the manifest's exact bytes, checked against Digest.
	Manifest []byte
	// Parsed is Manifest parsed; Blobs are its config (unless the config
	// is inline data only) and layers, in that order: what mirroring the
	// referrer copies besides the manifest.
	Parsed v1.Manifest
	Blobs  []v1.Descriptor
}

// Descriptor is the referrer as an entry of a referrers index: media
// type, digest, size, artifact type and annotations.
func (r *Referrer) Descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size, ArtifactType: r.ArtifactType, Annotations: r.Annotations}
}

// ReferrerLimits bound what one subject's referrers may make a
// ReferrerFinder read from a registry, which is untrusted.
type ReferrerLimits struct {
	// Count is the most referrers (after dedup, before filtering) of one
	// subject; more is an error (default 64).
	Count int
	// ManifestSize bounds every manifest and referrers index read
	// (default 4 MiB).
	ManifestSize int64
	// Blobs is the most blobs (config and layers) of one referrer
	// (default 64).
	Blobs int
}

// DefaultReferrerLimits are the limits a zero ReferrerLimits means.
func DefaultReferrerLimits() ReferrerLimits {
	return ReferrerLimits{Count: 64, ManifestSize: 4 << 20, Blobs: 64}
}

func (l ReferrerLimits) withDefaults() ReferrerLimits {
	d := DefaultReferrerLimits()
	if l.Count <= 0 {
		l.Count = d.Count
	}
	if l.ManifestSize <= 0 {
		l.ManifestSize = d.ManifestSize
	}
	if l.Blobs <= 0 {
		l.Blobs = d.Blobs
	}
	return l
}

// ErrReferrersLimit: a subject's referrers are over a ReferrerLimits bound.
var ErrReferrersLimit = errors.New("referrers over the limit")

// ReferrerFinder finds the referrers of manifests. It keeps one
// go-containerregistry puller (one ping and token per repository) whose
// responses are bounded by ManifestSize. Safe for concurrent use.
type ReferrerFinder struct {
	o      Options
	l      ReferrerLimits
	rt     http.RoundTripper
	puller *remote.Puller
	blobs  *BlobFetcher
}

// NewReferrerFinder returns a finder with o's credentials and transport.
func NewReferrerFinder(o Options, l ReferrerLimits) (*ReferrerFinder, error) {
	f := &ReferrerFinder{o: o, l: l.withDefaults()}
	f.o.Puller = nil
	base := o.Transport
	if base == nil {
		base = o.BaseTransport()
	}
	f.rt = &limitedBodies{base: base, max: f.l.ManifestSize}
	p, err := remote.NewPuller(f.remote(context.Background())...)
	if err != nil {
		return nil, fmt.Errorf("referrers: %w", err)
	}
	f.puller = p
	f.blobs = o.Blobs
	if f.blobs == nil {
		f.blobs = NewBlobFetcher(o)
	}
	return f, nil
}

func (f *ReferrerFinder) remote(ctx context.Context) []remote.Option {
	opts := append(f.o.Remote(ctx), remote.WithTransport(f.rt))
	if f.puller != nil {
		opts = append(opts, remote.Reuse(f.puller))
	}
	return opts
}

// Find lists the referrers of subject in repo: the OCI 1.1 referrers API
// (go-containerregistry's remote.Referrers, which falls back to the
// referrers tag schema's sha256-<hex> index when the registry has no API),
// then cosign's sha256-<hex>.sig, .att and .sbom tags. Each referrer's
// manifest is read (by digest, checked) and must be an image manifest; one
// listed as a referrer must name subject as its subject. Referrers that
// are not image manifests (an index listed as a referrer) are left out.
// With artifactTypes, only referrers of those types are returned.
//
// The result has no repeats (one document found both ways is one
// Referrer, with its Tag) and is sorted by artifact type, then tag, then
// digest.
func (f *ReferrerFinder) Find(ctx context.Context, repo name.Repository, subject v1.Hash, artifactTypes []string) ([]Referrer, error) {
	opts := f.remote(ctx)
	idx, err := remote.Referrers(repo.Digest(subject.String()), opts...)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, subject, err)
	}
	var out []Referrer
	seen := map[v1.Hash]int{}
	for _, d := range im.Manifests {
		if _, dup := seen[d.Digest]; dup {
			continue
		}
		if len(seen) >= f.l.Count {
			return nil, fmt.Errorf("referrers of %s@%s: %w: more than %d", repo, subject, ErrReferrersLimit, f.l.Count)
		}
		seen[d.Digest] = -1
		if !isImageManifest(d.MediaType) {
			continue
		}
		r, err := f.manifest(ctx, repo, repo.Digest(d.Digest.String()), &d)
		if err != nil {
			return nil, fmt.Errorf("referrer %s of %s@%s: %w", d.Digest, repo, subject, err)
		}
		if r.Parsed.Subject == nil || r.Parsed.Subject.Digest != subject {
			got := "none"
			if r.Parsed.Subject != nil {
				got = r.Parsed.Subject.Digest.String()
			}
			return nil, fmt.Errorf("referrer %s of %s@%s: %w: its subject is %s", d.Digest, repo, subject, manifests.ErrDigestMismatch, got)
		}
		seen[d.Digest] = len(out)
		out = append(out, *r)
	}
	for _, sfx := range CosignSuffixes {
		tag := CosignTag(subject, sfx)
		r, err := f.manifest(ctx, repo, repo.Tag(tag), nil)
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
		}
		if i, ok := seen[r.Digest]; ok {
			if i >= 0 && out[i].Tag == "" {
				out[i].Tag = tag
			}
			continue
		}
		if len(seen) >= f.l.Count {
			return nil, fmt.Errorf("referrers of %s@%s: %w: more than %d", repo, subject, ErrReferrersLimit, f.l.Count)
		}
		r.Tag = tag
		r.ArtifactType = CosignArtifactType(sfx)
		seen[r.Digest] = len(out)
		out = append(out, *r)
	}
	if len(artifactTypes) > 0 {
		out = slices.DeleteFunc(out, func(r Referrer) bool { return !slices.Contains(artifactTypes, r.ArtifactType) })
	}
	slices.SortFunc(out, func(a, b Referrer) int {
		return cmp.Or(cmp.Compare(a.ArtifactType, b.ArtifactType), cmp.Compare(a.Tag, b.Tag), cmp.Compare(a.Digest.String(), b.Digest.String()))
	})
	return out, nil
}

// manifest reads one image manifest by ref; want, when set, is the
// listing's descriptor (its size is checked first).
func (f *ReferrerFinder) manifest(ctx context.Context, repo name.Repository, ref name.Reference, want *v1.Descriptor) (*Referrer, error) {
	if want != nil && want.Size > f.l.ManifestSize {
		return nil, fmt.Errorf("%w: the manifest is %d bytes, the limit %d", ErrReferrersLimit, want.Size, f.l.ManifestSize)
	}
	desc, err := remote.Get(ref, f.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	raw := desc.Manifest
	h, n, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if want != nil && (h != want.Digest || n != want.Size) {
		return nil, fmt.Errorf("%w: the registry sent %d bytes of %s for %s (%d bytes)", manifests.ErrDigestMismatch, n, h, want.Digest, want.Size)
	}
	if !isImageManifest(desc.MediaType) {
		return nil, fmt.Errorf("%s is a %s, not an image manifest", ref, desc.MediaType)
	}
	r := &Referrer{Digest: h, MediaType: desc.MediaType, Size: n, Manifest: raw}
	if err := json.Unmarshal(raw, &r.Parsed); err != nil {
		return nil, fmt.Errorf("%s: not an image manifest: %w", ref, err)
	}
	if r.Parsed.MediaType != "" && r.Parsed.MediaType != desc.MediaType {
		return nil, fmt.Errorf("%s: served as %s, says %s", ref, desc.MediaType, r.Parsed.MediaType)
	}
	if len(r.Parsed.Layers)+1 > f.l.Blobs {
		return nil, fmt.Errorf("%s: %w: %d layers, the limit %d blobs", ref, ErrReferrersLimit, len(r.Parsed.Layers), f.l.Blobs)
	}
	for _, d := range append([]v1.Descriptor{r.Parsed.Config}, r.Parsed.Layers...) {
		if d.Size < 0 || d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
			return nil, fmt.Errorf("%s: %w: a descriptor of %d bytes, digest %q", ref, manifests.ErrDigestMismatch, d.Size, d.Digest)
		}
	}
	if c := r.Parsed.Config; c.Data == nil || int64(len(c.Data)) != c.Size {
		r.Blobs = append(r.Blobs, c)
	}
	r.Blobs = append(r.Blobs, r.Parsed.Layers...)
	r.ArtifactType = ArtifactType(&r.Parsed)
	r.Annotations = r.Parsed.Annotations
	return r, nil
}

func isImageManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// Blob reads one small blob of a referrer (a signature payload) whole,
// checked against d's digest and size; a blob over max bytes is an error
// without a request.
func (f *ReferrerFinder) Blob(ctx context.Context, repo name.Repository, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, fmt.Errorf("blob %s: %w: %d bytes, the limit %d", d.Digest, ErrReferrersLimit, d.Size, max)
	}
	dg, err := digest.Parse(d.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := f.blobs.Open(ctx, repo, dg, d.Size)
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	if h, n, _ := v1.SHA256(bytes.NewReader(b)); h != d.Digest || n != d.Size {
		return nil, fmt.Errorf("blob %s of %s: %w: got %d bytes of %s", d.Digest, repo, manifests.ErrDigestMismatch, n, h)
	}
	return b, nil
}

// limitedBodies fails a response whose body is over max bytes: the
// referrers index and manifests a ReferrerFinder reads are bounded.
type limitedBodies struct {
	base http.RoundTripper
	max  int64
}

func (t *limitedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w: a %d-byte response, the limit %d", req.Method, req.URL.Redacted(), ErrReferrersLimit, resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max, what: req.URL.Redacted()}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
	what string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly max from a longer one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%s: %w: the response is longer than the limit", b.what, ErrReferrersLimit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
