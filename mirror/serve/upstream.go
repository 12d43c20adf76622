package serve

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// The upstream view of a lockfile name. An entry with upstream documents
// (lockfile upstream:, manifests/upstream) is served under its name as its
// source serves it: by tag and by the upstream digests, the source's index
// and manifests byte for byte (Content-Type their own media type,
// Docker-Content-Digest the upstream digest); the configs and layers, the
// same in both views, come from the IPFS-enabled tree as before. A manifest
// of a platform the entry did not keep is named by the upstream index but
// not held: 404. The IPFS-enabled documents still answer by their own
// digests under the name, and /v2/ipfs/<CID>/… is unchanged. Entries
// without upstream documents (other modes, older lockfiles, oci: sources)
// are served as before.

// upstreams caches loaded upstream layouts by CID (their content never
// changes), bounded as the tree cache.
type upstreams struct {
	images  *lru[cid.Cid, *upstream.Image]
	loading flight[cid.Cid, *upstream.Image]
}

func newUpstreams(o Options) *upstreams {
	return &upstreams{images: newLRU[cid.Cid, *upstream.Image](o.CacheImages, o.CacheBytes)}
}

// upstreamImage returns the upstream layout c, from the cache or read once
// for every concurrent asker.
func (s *Server) upstreamImage(ctx context.Context, c cid.Cid) (*upstream.Image, error) {
	key := ipfs.V1(c)
	if im, ok := s.ups.images.get(key); ok {
		s.stats.imageHits.Add(1)
		return im, nil
	}
	im, _, err := s.ups.loading.do(ctx, key, func(ctx context.Context) (*upstream.Image, error) {
		if im, ok := s.ups.images.get(key); ok {
			return im, nil
		}
		st, err := s.blockStore()
		if err != nil {
			return nil, err
		}
		s.stats.resolves.Add(1)
		im, err := upstream.Load(ctx, st, c)
		if err != nil {
			return nil, err
		}
		s.ups.images.add(key, im, 2*im.Size()+1024)
		return im, nil
	})
	return im, err
}

// upstreamTop answers a tag of an entry with upstream documents: the
// source's top document.
func (s *Server) upstreamTop(w *recorder, r *http.Request, t target, e lockEntry) {
	w.root = e.root
	im, err := s.upstreamImage(r.Context(), e.upstream)
	if err != nil {
		writeError(w, r, s.ipfsError(fmt.Errorf("the upstream documents %s of %s: %w", e.upstream, e.source, err), t, CodeManifestUnknown))
		return
	}
	top := im.Top()
	w.cid, _ = im.Blob(top.Digest)
	s.writeDoc(w, r, top.Digest, doc{mediaType: top.MediaType, raw: top.Bytes}, false)
}

// upstreamByDigest answers a digest of a lockfile name from the upstream
// documents of its entries, and reports whether it did. A layout that
// cannot be read is logged and skipped (the IPFS-enabled documents may
// still answer).
func (s *Server) upstreamByDigest(w *recorder, r *http.Request, t target, d digest.Digest) bool {
	for _, e := range s.locks.current().upstreamEntries(t.repo) {
		im, err := s.upstreamImage(r.Context(), e.upstream)
		if err != nil {
			if r.Context().Err() != nil {
				writeError(w, r, s.ipfsError(err, t, CodeManifestUnknown))
				return true
			}
			s.log.Warn("upstream documents cannot be read; answering from the IPFS-enabled image", "name", t.repo, "source", e.source, "upstream", e.upstream.String(), "err", err)
			continue
		}
		x, ok := im.Doc(d)
		if !ok {
			continue
		}
		w.root = e.root
		w.cid, _ = im.Blob(d)
		s.writeDoc(w, r, d, doc{mediaType: x.MediaType, raw: x.Bytes}, true)
		return true
	}
	return false
}

// blockStore is the store upstream.Load reads through: the server's
// store, whose blocks are bounded by the read timeout as its reads are
// (ipfs.Patient).
func (s *Server) blockStore() (ipfs.Store, error) {
	if _, ok := s.store.(ipfs.BlockGetter); !ok {
		return nil, fmt.Errorf("%s cannot read blocks: the upstream view needs a node", ipfs.Describe(s.store))
	}
	return s.store, nil
}

// upstreamEntries are the entries of repo that have upstream documents, in
// tag order, each layout once.
func (t *nameTable) upstreamEntries(repo string) []lockEntry {
	tags := t.tags(repo)
	var out []lockEntry
	for _, tag := range tags {
		e := t.repos[repo][tag]
		if e.upstream.Defined() && !slices.ContainsFunc(out, func(o lockEntry) bool { return o.upstream == e.upstream }) {
			out = append(out, e)
		}
	}
	return out
}
