package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/sigverify"
)

// The referrers of a mirrored image (issue 18). An entry with verify: is
// written only when its source digest has a valid cosign signature
// (mirror/sigverify), checked before any mode is written; a failure fails
// every mode of the tag, each keeping its previous entry. An entry with
// referrers: keeps, in its plain copy's upstream layout, the referrers of
// each document kept (the index and each kept platform's manifest) that
// the artifact_types filter wants: each referrer's manifest as one more
// index.json entry (its artifactType; a cosign tag-schema document also
// its tag as org.opencontainers.image.ref.name) and its config and layers
// under blobs/ — so the pin handle's one recursive pin keeps them, and
// serve and pull --preserve-digests find them there. They are recorded as
// the entry's referrers:. An unchanged entry's are left as they are (no
// registry request) unless it is verified.

// maxReferrerBlob bounds one blob of a referrer (an SBOM, a signature
// payload) read from the registry.
const maxReferrerBlob = 64 << 20

// refName is the OCI layout annotation that names a tag.
const refName = ocispec.AnnotationRefName

// referrerState is what a run shares for referrers: one finder (one
// registry ping and token per repository) and the keys it loaded.
type referrerState struct {
	once   sync.Once
	finder *registry.ReferrerFinder
	err    error

	mu   sync.Mutex
	keys map[string]*sigverify.Key
}

func (s *syncer) referrerFinder() (*registry.ReferrerFinder, error) {
	st := &s.refs
	st.once.Do(func() {
		st.finder, st.err = registry.NewReferrerFinder(s.o.Registry, registry.ReferrerLimits{})
	})
	return st.finder, st.err
}

func (s *syncer) cosignKey(path string) (*sigverify.Key, error) {
	st := &s.refs
	st.mu.Lock()
	defer st.mu.Unlock()
	if k, ok := st.keys[path]; ok {
		return k, nil
	}
	k, err := sigverify.LoadKey(path)
	if err != nil {
		return nil, err
	}
	if st.keys == nil {
		st.keys = map[string]*sigverify.Key{}
	}
	st.keys[path] = k
	return k, nil
}

// tagReferrers are the referrers found for one image × tag, by subject,
// shared by its verification and its modes.
type tagReferrers struct {
	repo  name.Repository
	mu    sync.Mutex
	found map[v1.Hash][]registry.Referrer
}

func newTagReferrers(ref registry.Ref) *tagReferrers {
	if ref.Kind != registry.KindRegistry {
		return nil
	}
	return &tagReferrers{repo: ref.Ref.Context(), found: map[v1.Hash][]registry.Referrer{}}
}

// referrersOf lists the referrers of subject (every type), once per tag.
func (s *syncer) referrersOf(ctx context.Context, t *tagReferrers, subject v1.Hash) ([]registry.Referrer, error) {
	t.mu.Lock()
	rs, ok := t.found[subject]
	t.mu.Unlock()
	if ok {
		return rs, nil
	}
	f, err := s.referrerFinder()
	if err != nil {
		return nil, err
	}
	rs, err = f.Find(ctx, t.repo, subject, nil)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.found[subject] = rs
	t.mu.Unlock()
	return rs, nil
}

// verifySigned checks img's verify: for subject, the source digest.
func (s *syncer) verifySigned(ctx context.Context, img *config.Image, t *tagReferrers, subject string) error {
	if img.Verify == nil || img.Verify.Cosign == nil {
		return nil
	}
	if t == nil {
		return fmt.Errorf("verify: %s is not a registry source", img.Source)
	}
	h, err := v1.NewHash(subject)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	k, err := s.cosignKey(img.Verify.Cosign.Key)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	rs, err := s.referrersOf(ctx, t, h)
	if err != nil {
		return fmt.Errorf("verify: finding the signatures: %w", err)
	}
	f, err := s.referrerFinder()
	if err != nil {
		return err
	}
	if _, err := k.Verify(ctx, h, rs, func(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
		return f.Blob(ctx, t.repo, d, max)
	}); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// keptReferrers are the referrers an image keeps: what its upstream
// layout gains, and what its lock entry records.
type keptReferrers struct {
	index []ocispec.Descriptor
	docs  []upstream.Doc
	blobs []ocidir.Blob
	lock  []lockfile.Referrer
}

// list is what the lock entry records (nil for none).
func (k *keptReferrers) list() []lockfile.Referrer {
	if k == nil {
		return nil
	}
	return k.lock
}

// addTo adds the referrers to an upstream layout's input.
func (k *keptReferrers) addTo(in *upstream.Input) {
	if k == nil {
		return
	}
	in.Index = append(in.Index, k.index...)
	in.Docs = append(in.Docs, k.docs...)
	in.Blobs = append(in.Blobs, k.blobs...)
}

// wantedReferrers finds the referrers of each subject that img wants: what
// the lock entry would record, and the documents, once each.
func (s *syncer) wantedReferrers(ctx context.Context, img *config.Image, t *tagReferrers, subjects []digest.Digest) ([]lockfile.Referrer, []registry.Referrer, error) {
	if img.Referrers == nil || t == nil {
		return nil, nil, nil
	}
	var lock []lockfile.Referrer
	var docs []registry.Referrer
	seen := map[v1.Hash]bool{}
	for _, sd := range subjects {
		subject, err := v1.NewHash(sd.String())
		if err != nil {
			return nil, nil, err
		}
		rs, err := s.referrersOf(ctx, t, subject)
		if err != nil {
			return nil, nil, fmt.Errorf("referrers: %w", err)
		}
		for _, r := range rs {
			if !img.Referrers.Wants(r.ArtifactType) {
				continue
			}
			lock = append(lock, lockfile.Referrer{Subject: subject.String(), Digest: r.Digest.String(), MediaType: string(r.MediaType), ArtifactType: r.ArtifactType, Tag: r.Tag})
			if !seen[r.Digest] { // one document referring to two subjects is kept once
				seen[r.Digest] = true
				docs = append(docs, r)
			}
		}
	}
	return lockfile.NormalizedReferrers(lock), docs, nil
}

// keepReferrers finds the referrers of each subject that img wants and
// adds their blobs to the store; nil when img wants none.
func (s *syncer) keepReferrers(ctx context.Context, img *config.Image, t *tagReferrers, subjects []digest.Digest) (*keptReferrers, error) {
	lock, docs, err := s.wantedReferrers(ctx, img, t, subjects)
	if err != nil || lock == nil {
		return nil, err
	}
	f, err := s.referrerFinder()
	if err != nil {
		return nil, err
	}
	k := &keptReferrers{lock: lock}
	added := map[digest.Digest]bool{}
	for _, r := range docs {
		desc := ocispec.Descriptor{MediaType: string(r.MediaType), Digest: digest.Digest(r.Digest.String()), Size: r.Size, ArtifactType: r.ArtifactType, Annotations: maps.Clone(r.Annotations)}
		if r.Tag != "" {
			if desc.Annotations == nil {
				desc.Annotations = map[string]string{}
			}
			desc.Annotations[refName] = r.Tag
		}
		k.index = append(k.index, desc)
		k.docs = append(k.docs, upstream.Doc{MediaType: string(r.MediaType), Digest: desc.Digest, Bytes: r.Manifest})
		for _, b := range append([]v1.Descriptor{r.Parsed.Config}, r.Parsed.Layers...) {
			d := digest.Digest(b.Digest.String())
			if added[d] {
				continue
			}
			ob, err := s.referrerBlob(ctx, f, t.repo, b)
			if err != nil {
				return nil, fmt.Errorf("referrer %s: %w", r.Digest, err)
			}
			added[d] = true
			k.blobs = append(k.blobs, ob)
		}
	}
	return k, nil
}

// refreshReferrers brings an unchanged entry's referrers up to date (new
// signatures since it was written, a changed artifact_types, referrers
// turned on or off): when what img wants differs from what the entry
// records, its upstream layout is rebuilt from the stored one (IPFS reads)
// with the referrers now wanted, and with it the pin handle and the CAR;
// r is recorded. An entry without upstream documents is left as it is.
// The registry is asked for the referrers' listings (and the blobs of new
// ones) only; reports whether the entry changed.
func (s *syncer) refreshReferrers(ctx context.Context, img *config.Image, t *tagReferrers, r *ImageReport) (bool, error) {
	if r.Upstream == "" || t == nil || (img.Referrers == nil && len(r.Referrers) == 0) {
		return false, nil
	}
	up, err := upstreamCID(r.Upstream)
	if err != nil {
		return false, err
	}
	im, err := upstream.Load(ctx, s.store, up)
	if err != nil {
		return false, fmt.Errorf("reading the upstream documents %s: %w", up, err)
	}
	old := map[digest.Digest]bool{}
	for _, d := range im.Index[1:] {
		old[d.Digest] = true
	}
	in := upstream.Input{Index: im.Index[:1]}
	named := map[digest.Digest]bool{}
	for _, d := range im.Docs() {
		if old[d.Digest] {
			continue
		}
		in.Docs = append(in.Docs, d)
		if manifests.IsManifest(d.MediaType) {
			var m ocispec.Manifest
			if err := json.Unmarshal(d.Bytes, &m); err != nil {
				return false, fmt.Errorf("upstream manifest %s: %w", d.Digest, err)
			}
			for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if c, ok := im.Blob(b.Digest); ok && !named[b.Digest] {
					named[b.Digest] = true
					in.Blobs = append(in.Blobs, ocidir.Blob{Digest: b.Digest, Size: b.Size, CID: c})
				}
			}
		}
	}
	want, _, err := s.wantedReferrers(ctx, img, t, subjectsOf(in))
	if err != nil {
		return false, err
	}
	if slices.Equal(want, lockfile.NormalizedReferrers(r.Referrers)) {
		return false, nil
	}
	kept, err := s.keepReferrers(ctx, img, t, subjectsOf(in))
	if err != nil {
		return false, err
	}
	kept.addTo(&in)
	n, err := upstream.Build(ctx, s.store, in)
	if err != nil {
		return false, fmt.Errorf("keeping the upstream documents: %w", err)
	}
	r.Upstream, r.Referrers = n.CID.String(), kept.list()
	if s.o.PinHandle != nil {
		root, err := ipfs.ParseCID(r.CID)
		if err != nil {
			return false, err
		}
		h, err := PinHandleOf(ctx, s.store, root, n.CID, "")
		if err != nil {
			return false, fmt.Errorf("building the pin handle: %w", err)
		}
		r.Pin = h.String()
	}
	if err := s.exportCAR(ctx, r); err != nil {
		return false, err
	}
	s.record(r)
	return true, nil
}

// referrerBlob adds one blob of a referrer to the store: its inline data
// when the descriptor carries it (an empty config), else streamed from the
// registry and checked against its digest and size as it is added.
func (s *syncer) referrerBlob(ctx context.Context, f *registry.ReferrerFinder, repo name.Repository, b v1.Descriptor) (ocidir.Blob, error) {
	d := digest.Digest(b.Digest.String())
	if b.Size > maxReferrerBlob {
		return ocidir.Blob{}, fmt.Errorf("blob %s: %w: %d bytes, the limit %d", d, registry.ErrReferrersLimit, b.Size, maxReferrerBlob)
	}
	data := b.Data
	if int64(len(data)) != b.Size || digest.FromBytes(data) != d {
		var err error
		if data, err = f.Blob(ctx, repo, b, maxReferrerBlob); err != nil {
			return ocidir.Blob{}, err
		}
	}
	n, err := ocidir.PutFile(ctx, s.store, data)
	if err != nil {
		return ocidir.Blob{}, fmt.Errorf("adding blob %s: %w", d, err)
	}
	return ocidir.Blob{Digest: d, Size: b.Size, CID: n.CID}, nil
}

// subjectsOf are the digests of the documents an upstream input holds: the
// top document and the kept manifests, referrers of which are looked for.
func subjectsOf(in upstream.Input) []digest.Digest {
	out := make([]digest.Digest, 0, len(in.Docs))
	for _, d := range in.Docs {
		if manifests.IsIndex(d.MediaType) || manifests.IsManifest(d.MediaType) {
			out = append(out, d.Digest)
		}
	}
	slices.Sort(out)
	return out
}
