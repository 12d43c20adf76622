package serve

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
)

// The referrers of a lockfile name (issue 18). A plain entry that mirrored
// referrers (lockfile referrers:) keeps each one's manifest as one more
// index.json entry of its upstream layout, and its config and layers under
// blobs/ (mirror/syncer's referrers.go). Under the entry's name they are
// served as the source served them:
//
//	GET /v2/<name>/referrers/<digest>[?artifactType=T]
//	    the OCI 1.1 referrers API: an OCI index of the descriptors of the
//	    manifests whose subject is digest (artifactType and annotations
//	    from the manifest), filtered by artifactType when asked (with
//	    OCI-Filters-Applied: artifactType); an empty index when there are
//	    none
//	GET /v2/<name>/manifests/sha256-<hex>.sig (.att, .sbom)
//	    cosign's tag schema: the document found on that tag
//	GET /v2/<name>/manifests/sha256-<hex>
//	    the referrers tag schema: the same index as the API's, unfiltered
//	    (404 when there are none, as a registry without them)
//	GET /v2/<name>/manifests/<digest>, /v2/<name>/blobs/<digest>
//	    a referrer's manifest (upstream.go's upstreamByDigest) and its
//	    blobs, verified as every blob is
//
// so that cosign verify, cosign verify-attestation and oras discover work
// against serve as against the source. A name's real tags win over the tag
// schema's. /v2/ipfs/<CID> and ipns names have no referrers API (404
// UNSUPPORTED, as before: a client then tries the tag schema, and finds
// none).

// referrerDoc is one referrer of a loaded upstream layout.
type referrerDoc struct {
	entry lockEntry
	im    *upstream.Image
	desc  ocispec.Descriptor // as index.json lists it
	doc   upstream.Doc
	m     ocispec.Manifest
}

// maxReferrersListed bounds one answer of the referrers API.
const maxReferrersListed = 4096

// referrerDocs visits the referrers of every upstream layout of repo, each
// layout once; a layout that cannot be read is an error (the caller maps
// it), unless ctx is still alive and others answer (it is logged then).
func (s *Server) referrerDocs(r *http.Request, t target, each func(referrerDoc) bool) *regError {
	for _, e := range s.locks.current().upstreamEntries(t.repo) {
		im, err := s.upstreamImage(r.Context(), e.upstream)
		if err != nil {
			if r.Context().Err() != nil {
				return s.ipfsError(err, t, CodeManifestUnknown)
			}
			s.log.Warn("upstream documents cannot be read; their referrers are not served", "name", t.repo, "source", e.source, "upstream", e.upstream.String(), "err", err)
			continue
		}
		if len(im.Index) < 2 {
			continue
		}
		for _, d := range im.Index[1:] {
			x, ok := im.Doc(d.Digest)
			if !ok || !manifests.IsManifest(x.MediaType) {
				continue
			}
			rd := referrerDoc{entry: e, im: im, desc: d, doc: x}
			if json.Unmarshal(x.Bytes, &rd.m) != nil {
				continue
			}
			if each(rd) {
				return nil
			}
		}
	}
	return nil
}

// referrersIndex is the referrers index of subject d under t: the
// descriptors of the manifests that name d as their subject (artifactType
// only when set), by artifact type then digest, each once.
func (s *Server) referrersIndex(w *recorder, r *http.Request, t target, d digest.Digest, artifactType string) ([]byte, int, *regError) {
	var list []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	rerr := s.referrerDocs(r, t, func(rd referrerDoc) bool {
		if rd.m.Subject == nil || rd.m.Subject.Digest != d || seen[rd.doc.Digest] {
			return false
		}
		at := rd.desc.ArtifactType
		if at == "" {
			at = rd.m.ArtifactType
		}
		if at == "" {
			at = rd.m.Config.MediaType
		}
		if artifactType != "" && at != artifactType {
			return false
		}
		seen[rd.doc.Digest] = true
		if w.root == cid.Undef {
			w.root = rd.entry.root
		}
		list = append(list, ocispec.Descriptor{MediaType: rd.doc.MediaType, Digest: rd.doc.Digest, Size: int64(len(rd.doc.Bytes)), ArtifactType: at, Annotations: rd.m.Annotations})
		return len(list) >= maxReferrersListed
	})
	if rerr != nil {
		return nil, 0, rerr
	}
	slices.SortFunc(list, func(a, b ocispec.Descriptor) int {
		if c := strings.Compare(a.ArtifactType, b.ArtifactType); c != 0 {
			return c
		}
		return strings.Compare(string(a.Digest), string(b.Digest))
	})
	if list == nil {
		list = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: list})
	if err != nil {
		return nil, 0, newError(http.StatusInternalServerError, CodeUnknown, "%v", err)
	}
	return b, len(list), nil
}

// referrers answers GET /v2/<name>/referrers/<digest>.
func (s *Server) referrers(w *recorder, r *http.Request, t target, ref string) {
	d, err := digest.Parse(ref)
	if err != nil {
		writeError(w, r, newError(http.StatusBadRequest, CodeDigestInvalid, "%q is not a valid digest", ref))
		return
	}
	w.digest = d
	artifactType := r.URL.Query().Get("artifactType")
	body, _, rerr := s.referrersIndex(w, r, t, d, artifactType)
	if rerr != nil {
		writeError(w, r, rerr)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ocispec.MediaTypeImageIndex)
	if artifactType != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	if br, ok := s.preamble(w, r, digest.FromBytes(body), int64(len(body))); ok {
		sendBytes(w, r, br, body)
	}
}

// referrerTag answers a tag of the referrers tag schema (sha256-<hex>) or
// of cosign's (sha256-<hex>.sig, .att, .sbom) under a lockfile name, and
// reports whether it did.
func (s *Server) referrerTag(w *recorder, r *http.Request, t target, tag string) bool {
	alg, rest, ok := strings.Cut(tag, "-")
	if !ok {
		return false
	}
	hex, suffix, hasSuffix := strings.Cut(rest, ".")
	subject := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if subject.Validate() != nil {
		return false
	}
	if !hasSuffix {
		body, n, rerr := s.referrersIndex(w, r, t, subject, "")
		if rerr != nil {
			writeError(w, r, rerr)
			return true
		}
		if n == 0 {
			return false
		}
		s.writeDoc(w, r, digest.FromBytes(body), doc{mediaType: ocispec.MediaTypeImageIndex, raw: body}, false)
		return true
	}
	if suffix == "" {
		return false
	}
	var found *referrerDoc
	rerr := s.referrerDocs(r, t, func(rd referrerDoc) bool {
		if rd.desc.Annotations[ocispec.AnnotationRefName] == tag {
			found = &rd
			return true
		}
		return false
	})
	if rerr != nil {
		writeError(w, r, rerr)
		return true
	}
	if found == nil {
		return false
	}
	w.root = found.entry.root
	s.writeDoc(w, r, found.doc.Digest, doc{mediaType: found.doc.MediaType, raw: found.doc.Bytes}, false)
	return true
}

// referrerBlob finds a blob of a referrer (a config or layer its manifest
// names) among the upstream layouts of a lockfile name: the file's CID and
// the descriptor naming it.
func (s *Server) referrerBlob(w *recorder, r *http.Request, t target, d digest.Digest) (ocispec.Descriptor, cid.Cid, bool) {
	var desc ocispec.Descriptor
	var c cid.Cid
	_ = s.referrerDocs(r, t, func(rd referrerDoc) bool {
		for _, b := range append([]ocispec.Descriptor{rd.m.Config}, rd.m.Layers...) {
			if b.Digest != d {
				continue
			}
			if fc, ok := rd.im.Blob(d); ok {
				desc, c = b, fc
				w.root = rd.entry.root
				return true
			}
		}
		return false
	})
	return desc, c, c.Defined()
}
