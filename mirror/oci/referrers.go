package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// The referrers PullUpstream writes beside the image (issue 18): the
// signatures, attestations and SBOMs mirror sync kept in the upstream
// layout (its index.json entries after the first; mirror/syncer's
// referrers.go) whose subject is a document written — the top document and
// the manifests of an index, or the one platform's manifest picked. Each
// is pushed byte for byte, its config and layers first: a cosign
// tag-schema document under its tag (org.opencontainers.image.ref.name,
// sha256-<hex>.sig), an OCI 1.1 referrer by its digest, which a registry
// with the referrers API lists; on one without it go-containerregistry's
// push also updates the referrers tag schema's sha256-<hex> index, as oras
// and cosign do. So the target answers `cosign verify` and `oras discover`
// as the source did. Only a registry DEST gets them.

// pushReferrers writes the referrers of what node wrote to ref's
// repository; it returns their digests, in index.json order.
func (u *upstreamNode) pushReferrers(ctx context.Context, ref registry.Ref, node manifests.Node, o PullOptions) ([]v1.Hash, error) {
	if len(u.im.Index) < 2 {
		return nil, nil
	}
	written, err := writtenDigests(node)
	if err != nil {
		return nil, err
	}
	repo := ref.Ref.Context()
	ropts := o.Registry.Remote(ctx)
	var out []v1.Hash
	for _, e := range u.im.Index[1:] {
		doc, err := u.doc(e.Digest)
		if err != nil {
			return nil, err
		}
		tag := e.Annotations[ocispec.AnnotationRefName]
		subject, ok := referrerSubject(doc.Bytes, tag)
		if !ok || !written[subject] {
			continue
		}
		img, err := u.image(doc)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", e.Digest, err)
		}
		to := repo.Digest(e.Digest.String()).String()
		if tag != "" {
			to = repo.Tag(tag).String()
		}
		r, err := registry.ParseRef(to, o.Registry)
		if err != nil {
			return nil, err
		}
		if err := remote.Write(r.Ref, img, ropts...); err != nil {
			return nil, fmt.Errorf("pushing referrer %s to %s: %w", e.Digest, to, err)
		}
		h, err := v1.NewHash(e.Digest.String())
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// writtenDigests are the digests of the documents node writes: its own,
// and an index's manifests.
func writtenDigests(node manifests.Node) (map[digest.Digest]bool, error) {
	d, err := node.Digest()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{digest.Digest(d.String()): true}
	if idx, ok := node.(v1.ImageIndex); ok {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			out[digest.Digest(m.Digest.String())] = true
		}
	}
	return out, nil
}

// referrerSubject is the subject a referrer manifest names, or, for a
// cosign tag-schema document (it names none), the digest its tag encodes.
func referrerSubject(raw []byte, tag string) (digest.Digest, bool) {
	var m struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(raw, &m) == nil && m.Subject != nil {
		return m.Subject.Digest, true
	}
	alg, rest, ok := strings.Cut(tag, "-")
	hex, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, d.Validate() == nil
}
