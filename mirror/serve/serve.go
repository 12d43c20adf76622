// Package serve is a read-only OCI distribution registry backed by IPFS: a
// compatible superset of nerdctl's `nerdctl ipfs registry serve`.
//
// It answers GET and HEAD on
//
//	/v2/
//	/v2/ipfs/<CID>/manifests/<latest|digest>    latest: the root descriptor's target
//	/v2/ipfs/<CID>/blobs/<digest>               Range requests answer 206
//	/v2/ipfs/<CID>/tags/list                    ["latest"]
//	/v2/ipfs-nourls/<CID>/…                     the url-free rewrite (see below)
//	/v2/ipns/<name>/…                           only with Options.AllowIPNS
//	/v2/<repo>/manifests/<tag|digest>           names from lockfiles (Options.Locks):
//	                                            the upstream documents when the entry has them (upstream.go)
//	/v2/<repo>/blobs/<digest>
//	/v2/<repo>/referrers/<digest>               the OCI 1.1 referrers API, and the tag
//	                                            schemas' sha256-<hex>[.sig] tags (referrers.go)
//	/v2/<repo>/tags/list, /v2/_catalog
//
// where CID is the root CID of an IPFS-enabled image (CIDv1 or CIDv0).
// Everything it serves is verified: indexes and manifests against their
// digests before the first byte, small blobs (Options.SmallBlob) likewise,
// larger blobs while they stream — a blob that turns out not to match its
// digest is cut short (the connection is dropped before its last byte), so
// no client ever receives a complete wrong blob; a Range covering a whole
// blob takes the same path, and files of the disk cache are checked
// unchanged since they were verified (else hashed again) before they are
// served. Ranges of part of a larger blob read from IPFS cannot be checked
// against a whole-blob digest: they are served as IPFS returns them (kubo
// checks every block against its CID), unless the blob was verified whole
// before (from that CID) or Options.VerifyRanges is set.
//
// Resolved trees are cached by root CID (IPFS content never changes) in a
// bounded LRU, and concurrent requests for the same tree, or the same small
// blob, share one read from IPFS.
//
// Layers that carry urls are skipped by containers/image (skopeo, podman)
// when copying to oci: or docker: destinations (and fetched from those
// URLs), and CNCF distribution refuses such manifests; the url-free rewrite
// (manifests.StripURLs: the same blobs, every URL removed but a foreign
// layer's http(s) ones, new index and manifest digests) is served under
// ipfs-nourls/, or under every name with Options.StripURLs.
//
// Nothing a client or IPFS content does may stop the server: a descriptor's
// size is checked (0 to 1 TiB) before any use, every tree walk is bounded
// and stops when no request waits for it, and a panic in a handler or in a
// goroutine the server started is recovered, logged and answered 500 with
// the error JSON.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// stallResumes is how many times one transfer that stalls after making
// progress is resumed at the offset it reached, whatever ReadRetries says:
// a bitswap session that stopped asking its peers (measured by the p2p
// benchmark on loopback swarms) is replaced by a new one, while a CID that
// never answers still fails after ReadRetries.
const stallResumes = 3

// Options configure a Server. The zero value serves /v2/ipfs/<CID> names
// with the defaults below.
type Options struct {
	// Locks are lockfiles (mirrors.lock) whose entries are served under
	// their registry names: docker.io/library/alpine:3.20 as
	// /v2/docker.io/library/alpine/manifests/3.20, also reachable as
	// library/alpine (and as library/alpine?ns=docker.io, as containerd
	// asks a mirror); a mode other than plain is served under the tag
	// TAG-MODE (3.20-estargz). An entry with upstream documents (lockfile
	// upstream:) serves those under its name: by tag and by the upstream
	// digests, byte for byte (upstream.go). A file that changes is re-read.
	Locks []string
	// LockCheckInterval is how often, at most, the lockfiles are checked
	// for changes (default 1s; a negative value checks on every request).
	LockCheckInterval time.Duration
	// ReadTimeout bounds each wait for IPFS: for an answer to a read, then
	// for each next bytes of it (0: no bound, as nerdctl's default).
	ReadTimeout time.Duration
	// ReadRetries is how many times a read that timed out is tried again
	// (beyond these, a transfer that had made progress and then stalls is
	// resumed up to stallResumes times: see ipfs.PatientOptions.Resumes)
	// (resumed at the offset reached).
	ReadRetries int
	// StallTimeout paces the waits within ReadTimeout, none counted
	// against ReadRetries: a transfer that was answering and stopped is
	// resumed at once, one waiting for its first bytes is asked again
	// (ipfs.PatientOptions.StallTimeout; 0: none).
	StallTimeout time.Duration
	// StripURLs serves the url-free rewrite under every name.
	StripURLs bool
	// AllowIPNS serves /v2/ipns/<name>/… (an IPNS key or a DNSLink
	// domain), resolved through Names.
	AllowIPNS bool
	// Names resolves IPNS names; nil uses the store's when it has one
	// (an ipfs.NameResolver: a kubo or an embedded store).
	Names ipfs.NameResolver
	// IPNSCacheTTL is how long an IPNS resolution is reused (default 1m).
	IPNSCacheTTL time.Duration
	// VerifyRanges reads and verifies a whole blob once before serving the
	// first Range of it (a full read for lazy pullers; off by default).
	VerifyRanges bool
	// CacheImages bounds the resolved trees kept (default 256);
	// CacheBytes bounds the bytes of their documents (default 64 MiB).
	CacheImages int
	CacheBytes  int64
	// MaxTreeBytes bounds what resolving one image may read: its root,
	// indexes and manifests together (default 32 MiB; each document is
	// also bounded by manifests.MaxManifestSize, 4 MiB).
	MaxTreeBytes int64
	// SmallBlob is the size up to which a blob is read whole and verified
	// before its first byte is sent, then cached (default 1 MiB; configs
	// and small layers). BlobCacheBytes bounds that cache (default 32 MiB).
	SmallBlob      int64
	BlobCacheBytes int64
	// BlobCacheDir, when set, keeps larger blobs on disk once they were
	// verified whole, and serves them from there (Range without
	// IPFS). BlobCacheDirBytes bounds it (default 4 GiB); files found there
	// at start are hashed again before their first use.
	BlobCacheDir      string
	BlobCacheDirBytes int64
	// ShutdownGrace is how long Serve lets requests in flight finish once
	// its context ends (default 10s).
	ShutdownGrace time.Duration
	// Logger receives one line per request and the integrity failures;
	// nil discards.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.LockCheckInterval == 0 {
		o.LockCheckInterval = time.Second
	}
	if o.IPNSCacheTTL <= 0 {
		o.IPNSCacheTTL = time.Minute
	}
	if o.CacheImages <= 0 {
		o.CacheImages = 256
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MaxTreeBytes <= 0 {
		o.MaxTreeBytes = 32 << 20
	}
	if o.SmallBlob <= 0 {
		o.SmallBlob = 1 << 20
	}
	if o.BlobCacheBytes <= 0 {
		o.BlobCacheBytes = 32 << 20
	}
	if o.BlobCacheDirBytes <= 0 {
		o.BlobCacheDirBytes = 4 << 30
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is the registry; it implements http.Handler.
type Server struct {
	store ipfs.Store
	opts  Options
	log   *slog.Logger
	locks *locks

	images    *lru[cid.Cid, *image]
	resolving flight[cid.Cid, *image]
	stripping flight[*image, *view]
	blobs     *lru[digest.Digest, []byte]
	reading   flight[blobKey, []byte]
	verified  *lru[blobKey, struct{}]
	verifying flight[blobKey, struct{}]
	disk      *diskCache // nil: no disk cache
	ipns      *lru[string, ipnsEntry]
	ipnsing   flight[string, cid.Cid]
	ups       *upstreams // the upstream view of lockfile names (upstream.go)

	stats struct {
		resolves, imageHits, blobHits, diskHits, integrity atomic.Int64
	}
}

// blobKey names a blob as read from one CID.
type blobKey struct {
	c cid.Cid
	d digest.Digest
}

// New returns a Server reading from store. It reads the lockfiles once: a
// malformed one is an error (later changes that do not parse are logged and
// the last good names stay in service).
func New(store ipfs.Store, opts Options) (*Server, error) {
	opts.defaults()
	// A read that stalls (a bitswap fetch no provider answers any more)
	// is asked again where it stopped.
	patient := ipfs.Patient(store, ipfs.PatientOptions{Timeout: opts.ReadTimeout, Retries: opts.ReadRetries, Resumes: stallResumes, StallTimeout: opts.StallTimeout,
		OnRetry: func(c cid.Cid, off int64, try int) {
			opts.Logger.Warn("no bytes from IPFS within the read timeout; asking again", "cid", c.String(), "offset", off, "try", try, "of", 1+max(opts.ReadRetries, 0)+stallResumes, "read_timeout", opts.ReadTimeout, "waited", opts.ReadTimeout.String())
		},
		OnStall: func(c cid.Cid, off int64, waited time.Duration) {
			opts.Logger.Info("no bytes from IPFS within the stall wait; asking again at the offset reached", "cid", c.String(), "offset", off, "waited", waited.String())
		}})
	s := &Server{
		store:    patient,
		opts:     opts,
		log:      opts.Logger,
		images:   newLRU[cid.Cid, *image](opts.CacheImages, opts.CacheBytes),
		blobs:    newLRU[digest.Digest, []byte](1<<16, opts.BlobCacheBytes),
		verified: newLRU[blobKey, struct{}](1<<14, 0),
		ipns:     newLRU[string, ipnsEntry](1<<10, 0),
		ups:      newUpstreams(opts),
	}
	if s.opts.Names == nil {
		if nr, ok := store.(ipfs.NameResolver); ok {
			s.opts.Names = nr
		}
	}
	interval := opts.LockCheckInterval
	if interval < 0 {
		interval = 0
	}
	l, err := newLocks(opts.Locks, interval, s.log)
	if err != nil {
		return nil, err
	}
	s.locks = l
	if opts.BlobCacheDir != "" {
		if s.disk, err = openDiskCache(opts.BlobCacheDir, opts.BlobCacheDirBytes, s.log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Stats are counters of a Server's work since New.
type Stats struct {
	// Resolves counts trees read from IPFS (root, indexes, manifests).
	Resolves int64
	// ImageHits counts requests answered from the tree cache.
	ImageHits int64
	// BlobHits counts small blobs answered from the blob cache.
	BlobHits int64
	// DiskHits counts blob requests answered from the disk cache;
	// DiskBlobs and DiskBytes are its content now.
	DiskHits  int64
	DiskBlobs int
	DiskBytes int64
	// IntegrityFailures counts content refused or cut short because it did
	// not match its digest.
	IntegrityFailures int64
	// CachedImages and CachedImageBytes are the tree cache's content now.
	CachedImages     int
	CachedImageBytes int64
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	n, b := s.images.len()
	var dn int
	var db int64
	if s.disk != nil {
		dn, db = s.disk.len()
	}
	return Stats{
		DiskHits:          s.stats.diskHits.Load(),
		DiskBlobs:         dn,
		DiskBytes:         db,
		Resolves:          s.stats.resolves.Load(),
		ImageHits:         s.stats.imageHits.Load(),
		BlobHits:          s.stats.blobHits.Load(),
		IntegrityFailures: s.stats.integrity.Load(),
		CachedImages:      n,
		CachedImageBytes:  b,
	}
}

// ServeHTTP implements http.Handler, with one access-log line per request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		p := recover()
		if p != nil && p != http.ErrAbortHandler {
			// A bug, or content that reached one: never the process's
			// end, nor a silently dropped connection when an answer can
			// still be given.
			s.log.Error("internal error: panic recovered in a handler", "path", r.URL.RequestURI(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rec.status == 0 {
				clear(rec.Header())
				rec.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
				writeError(rec, r, newError(http.StatusInternalServerError, CodeUnknown, "internal error (logged by the server)"))
				p = nil
			} else {
				rec.aborted, rec.errMsg = true, "internal error: panic"
				p = http.ErrAbortHandler
			}
		}
		s.logRequest(rec, r, start, p)
		if p != nil {
			panic(p) // http.ErrAbortHandler: net/http drops the connection quietly
		}
	}()
	rec.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	s.route(rec, r)
}

func (s *Server) route(w *recorder, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, r, newError(http.StatusMethodNotAllowed, CodeUnsupported, "%s is not supported: this registry is read-only (IPFS content is immutable)", r.Method))
		return
	}
	p := r.URL.Path
	switch {
	case p == "/v2" || p == "/v2/":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		return
	case p == "/v2/_catalog":
		s.catalog(w, r)
		return
	case !strings.HasPrefix(p, "/v2/"):
		writeError(w, r, newError(http.StatusNotFound, CodeUnsupported, "not a registry API path (want /v2/…)"))
		return
	}
	rest := p[len("/v2/"):]
	ns := r.URL.Query().Get("ns")
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		t, rerr := s.parseName(name, ns)
		if rerr != nil {
			writeError(w, r, rerr)
			return
		}
		s.tagsList(w, r, t)
		return
	}
	i := strings.LastIndexByte(rest, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(rest[:i], '/')
	}
	if i < 0 || j <= 0 {
		writeError(w, r, newError(http.StatusNotFound, CodeUnsupported, "unsupported registry API path"))
		return
	}
	name, kind, ref := rest[:j], rest[j+1:i], rest[i+1:]
	if kind != "manifests" && kind != "blobs" && kind != "referrers" {
		writeError(w, r, newError(http.StatusNotFound, CodeUnsupported, "unsupported registry API path"))
		return
	}
	t, rerr := s.parseName(name, ns)
	if rerr != nil {
		writeError(w, r, rerr)
		return
	}
	switch {
	case kind == "referrers" && t.kind != byLock:
		writeError(w, r, newError(http.StatusNotFound, CodeUnsupported, "unsupported registry API path"))
	case kind == "referrers":
		s.referrers(w, r, t, ref) // referrers.go
	case kind == "manifests":
		s.manifest(w, r, t, ref)
	default:
		s.blob(w, r, t, ref)
	}
}

// nameKind says how a repository name finds its image.
type nameKind int

const (
	byCID  nameKind = iota // ipfs/<CID>
	byIPNS                 // ipns/<name>
	byLock                 // a name from the lockfiles
)

// target is a parsed repository name.
type target struct {
	name   string // as requested
	kind   nameKind
	root   cid.Cid
	ipns   string
	repo   string // canonical lockfile name
	strip  bool
	mirror bool // asked as a mirror (?ns=): unknown content must be a 404
}

func (s *Server) parseName(name, ns string) (target, *regError) {
	t := target{name: name, strip: s.opts.StripURLs, mirror: ns != ""}
	first, rest, _ := strings.Cut(name, "/")
	switch first {
	case "ipfs", "ipfs-nourls":
		if c, err := cid.Decode(rest); err == nil && !strings.Contains(rest, "/") {
			t.kind, t.root = byCID, c
			t.strip = t.strip || first == "ipfs-nourls"
			return t, nil
		} else if !t.mirror {
			return t, newError(http.StatusBadRequest, CodeNameInvalid, "%q: %s/ must be followed by one CID (CIDv1 or CIDv0) and nothing else", name, first)
		}
	case "ipns", "ipns-nourls":
		if !t.mirror {
			if !s.opts.AllowIPNS {
				return t, newError(http.StatusForbidden, CodeDenied, "IPNS names are not served (start the server with --allow-ipns)")
			}
			if strings.Contains(rest, "/") || !registry.ValidComponent(rest) {
				return t, newError(http.StatusBadRequest, CodeNameInvalid, "%q: %s/ must be followed by one IPNS name (a key or a DNSLink domain)", name, first)
			}
			t.kind, t.ipns = byIPNS, rest
			t.strip = t.strip || first == "ipns-nourls"
			return t, nil
		}
	}
	repo, ok := registry.CanonicalRepo(ns, name)
	if !ok {
		if t.mirror {
			return t, newError(http.StatusNotFound, CodeNameUnknown, "%q (ns=%s) is not served here", name, ns)
		}
		return t, newError(http.StatusBadRequest, CodeNameInvalid, "%q is not a valid repository name", name)
	}
	if !s.locks.current().has(repo) {
		return t, newError(http.StatusNotFound, CodeNameUnknown, "%s is not served here (names come from the lockfiles; IPFS images are ipfs/<CID>)", repo)
	}
	t.kind, t.repo = byLock, repo
	return t, nil
}

// image returns the resolved image of root, from the cache or read once
// for every concurrent asker.
func (s *Server) image(ctx context.Context, root cid.Cid) (*image, error) {
	key := ipfs.V1(root)
	if im, ok := s.images.get(key); ok {
		s.stats.imageHits.Add(1)
		return im, nil
	}
	im, _, err := s.resolving.do(ctx, key, func(ctx context.Context) (*image, error) {
		if im, ok := s.images.get(key); ok {
			return im, nil
		}
		s.stats.resolves.Add(1)
		t, err := manifests.Resolve(ctx, &budgetStore{Store: s.store, limit: s.opts.MaxTreeBytes}, root)
		if err != nil {
			return nil, err
		}
		im := newImage(t)
		s.images.add(key, im, im.size)
		return im, nil
	})
	return im, err
}

// cached returns the image of root only if it is in the cache.
func (s *Server) cached(root cid.Cid) (*image, bool) {
	return s.images.get(ipfs.V1(root))
}

// images returns the candidate images of a target: the one of a CID or
// IPNS name, or every image of a lockfile repository (cached ones first).
func (s *Server) imagesOf(ctx context.Context, t target, each func(*image) bool) error {
	switch t.kind {
	case byCID:
		im, err := s.image(ctx, t.root)
		if err != nil {
			return err
		}
		each(im)
		return nil
	case byIPNS:
		c, err := s.resolveIPNS(ctx, t.ipns)
		if err != nil {
			return err
		}
		im, err := s.image(ctx, c)
		if err != nil {
			return err
		}
		each(im)
		return nil
	}
	roots := s.locks.current().roots(t.repo)
	var rest []cid.Cid
	for _, c := range roots {
		if im, ok := s.cached(c); ok {
			if each(im) {
				return nil
			}
		} else {
			rest = append(rest, c)
		}
	}
	var errs []error
	for _, c := range rest {
		im, err := s.image(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			continue
		}
		if each(im) {
			return nil
		}
	}
	return errors.Join(errs...)
}

func (s *Server) manifest(w *recorder, r *http.Request, t target, ref string) {
	ctx := r.Context()
	if strings.Contains(ref, ":") {
		d, err := digest.Parse(ref)
		if err != nil {
			writeError(w, r, newError(http.StatusBadRequest, CodeDigestInvalid, "%q is not a valid digest", ref))
			return
		}
		if t.kind == byLock && s.upstreamByDigest(w, r, t, d) {
			return
		}
		var found *doc
		var foundIn *image
		var viewErr error
		err = s.imagesOf(ctx, t, func(im *image) bool {
			v, err := s.view(ctx, im, t.strip)
			if err != nil {
				// The stored documents still answer by digest.
				viewErr, v = err, im.orig
			}
			if x, ok := im.findDoc(v, d); ok {
				found, foundIn = &x, im
				return true
			}
			return false
		})
		if found == nil {
			if err == nil {
				err = viewErr
			}
			if err != nil {
				writeError(w, r, s.ipfsError(err, t, CodeManifestUnknown))
				return
			}
			writeError(w, r, newError(http.StatusNotFound, CodeManifestUnknown, "manifest %s is not in %s", d, t.name))
			return
		}
		w.root = foundIn.root
		s.warnForeign(r, t, found.mediaType)
		s.writeDoc(w, r, d, *found, true)
		return
	}
	if !registry.ValidTag(ref) {
		writeError(w, r, newError(http.StatusBadRequest, CodeNameInvalid, "%q is neither a tag nor a digest", ref))
		return
	}
	var root cid.Cid
	switch t.kind {
	case byCID, byIPNS:
		if ref != "latest" {
			writeError(w, r, newError(http.StatusNotFound, CodeManifestUnknown, "%s has one tag, latest (or use a digest), not %q", t.name, ref))
			return
		}
		if t.kind == byCID {
			root = t.root
		} else {
			c, err := s.resolveIPNS(ctx, t.ipns)
			if err != nil {
				writeError(w, r, s.ipfsError(err, t, CodeManifestUnknown))
				return
			}
			root = c
		}
	case byLock:
		e, ok := s.locks.current().lookup(t.repo, ref)
		if !ok && s.referrerTag(w, r, t, ref) { // the tag schemas (referrers.go)
			return
		}
		if !ok {
			writeError(w, r, newError(http.StatusNotFound, CodeManifestUnknown, "%s has no tag %q", t.repo, ref))
			return
		}
		if e.upstream.Defined() {
			s.upstreamTop(w, r, t, e)
			return
		}
		root = e.root
	}
	w.root = root
	im, err := s.image(ctx, root)
	if err != nil {
		writeError(w, r, s.ipfsError(err, t, CodeManifestUnknown))
		return
	}
	v, err := s.view(ctx, im, t.strip)
	if err != nil {
		writeError(w, r, s.ipfsError(err, t, CodeManifestUnknown))
		return
	}
	x, ok := im.findDoc(v, v.target.Digest)
	if !ok {
		writeError(w, r, newError(http.StatusInternalServerError, CodeUnknown, "the target of %s is missing from its tree", root))
		return
	}
	s.warnForeign(r, t, x.mediaType)
	s.writeDoc(w, r, v.target.Digest, x, false)
}

// writeDoc answers an index or manifest (already verified, in memory).
func (s *Server) writeDoc(w *recorder, r *http.Request, d digest.Digest, x doc, immutable bool) {
	w.digest = d
	h := w.Header()
	h.Set("Content-Type", x.mediaType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	if immutable {
		h.Set("Cache-Control", "max-age=31536000, immutable")
	}
	br, ok := s.preamble(w, r, d, int64(len(x.raw)))
	if ok {
		sendBytes(w, r, br, x.raw)
	}
}

// ipfsError maps a failure to read from IPFS to an answer. Asked as a
// mirror, every such failure is a 404, so that the client falls back to
// the upstream registry rather than failing.
func (s *Server) ipfsError(err error, t target, notFound string) *regError {
	var e *regError
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		s.log.Error("internal error: panic recovered", "name", t.name, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		e = newError(http.StatusInternalServerError, CodeUnknown, "internal error (logged by the server)")
	case errors.Is(err, manifests.ErrDigestMismatch):
		s.stats.integrity.Add(1)
		s.log.Error("integrity failure: content from IPFS does not match its digest; refused", "name", t.name, "err", err)
		e = newError(http.StatusBadGateway, CodeManifestInvalid, "integrity check failed: %v", err)
	case errors.Is(err, ErrTreeTooLarge), errors.Is(err, manifests.ErrLimit), errors.Is(err, errBadTree):
		e = newError(http.StatusBadGateway, CodeManifestInvalid, "%v", err)
	case errors.Is(err, manifests.ErrNotIPFSImage), errors.Is(err, ipfs.ErrIPNS):
		e = newError(http.StatusNotFound, CodeNameUnknown, "%v", err)
	case errors.Is(err, ipfs.ErrNotFound):
		e = newError(http.StatusNotFound, notFound, "%v", err)
	case errors.Is(err, ipfs.ErrUnavailable):
		e = newError(http.StatusServiceUnavailable, CodeUnavailable, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e = newError(http.StatusServiceUnavailable, CodeUnavailable, "%v", err)
	default:
		e = newError(http.StatusBadGateway, CodeUnknown, "%v", err)
	}
	if t.mirror && e.status >= 500 {
		e.status, e.code = http.StatusNotFound, notFound
	}
	return e
}

// page applies the n and last parameters of _catalog and tags/list.
func page(w http.ResponseWriter, r *http.Request, all []string) ([]string, *regError) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			return nil, newError(http.StatusBadRequest, CodeUnsupported, "n=%q: want a count", ns)
		}
		if n < len(all) {
			all = all[:n]
			if n > 0 {
				next := url.Values{"n": {ns}, "last": {all[n-1]}}
				w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
			}
		}
	}
	if all == nil {
		all = []string{}
	}
	return all, nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func (s *Server) catalog(w *recorder, r *http.Request) {
	repos, rerr := page(w, r, s.locks.current().catalog())
	if rerr != nil {
		writeError(w, r, rerr)
		return
	}
	writeJSON(w, r, map[string][]string{"repositories": repos})
}

func (s *Server) tagsList(w *recorder, r *http.Request, t target) {
	var tags []string
	switch t.kind {
	case byLock:
		tags = s.locks.current().tags(t.repo)
	default:
		// Check that the name is an image before answering for it.
		if err := s.imagesOf(r.Context(), t, func(*image) bool { return true }); err != nil {
			writeError(w, r, s.ipfsError(err, t, CodeNameUnknown))
			return
		}
		tags = []string{"latest"}
	}
	tags, rerr := page(w, r, tags)
	if rerr != nil {
		writeError(w, r, rerr)
		return
	}
	writeJSON(w, r, map[string]any{"name": t.name, "tags": tags})
}
