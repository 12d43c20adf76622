package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Blob is one blob of a written tree.
type Blob struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
	CID       cid.Cid
}

// Result is what Write produced.
type Result struct {
	// Root is the CID of the root descriptor: the image's name on IPFS.
	Root cid.Cid
	// RootDescriptor is the JSON the root CID names.
	RootDescriptor []byte
	// Target is the root descriptor: the top index (or manifest), with its URL.
	Target ocispec.Descriptor
	// Blobs lists every blob of the tree once (index, manifests, configs,
	// layers), sorted by digest.
	Blobs []Blob
	// Platforms are the platforms of the manifests kept, as os/arch[/variant].
	Platforms []string
}

// EventType tells what an Event reports.
type EventType int

const (
	// BlobStart: a blob starts streaming into the store.
	BlobStart EventType = iota
	// BlobProgress: Done bytes of the blob have been streamed.
	BlobProgress
	// BlobDone: the blob is stored; State says how.
	BlobDone
	// ImageDone: every blob of Image is stored (CID is its root).
	ImageDone
)

// BlobState is how a BlobDone blob got to its destination.
type BlobState string

// Blob states.
const (
	// StateAdded: the blob was streamed to the destination.
	StateAdded BlobState = "added"
	// StateCached: an earlier transfer in this process already stored it;
	// nothing was read.
	StateCached BlobState = "cached"
	// StateExists: the destination already held it; nothing was sent.
	StateExists BlobState = "exists"
)

// Event reports progress. Callbacks must be quick and safe for concurrent
// use. Image is the label of the image the blob is written for (Options.Image).
type Event struct {
	Type      EventType
	Image     string
	Digest    digest.Digest
	MediaType string
	Size      int64
	Done      int64
	CID       cid.Cid
	// Cached is State == StateCached (kept for older callers).
	Cached bool
	State  BlobState
}

// ImageConverter is the one image→image function: it transforms each
// platform image before it is written (the eStargz and encryption modes of
// push and sync, decryption on pull; convert.ForMode returns one). It must
// be safe for concurrent use.
type ImageConverter func(ctx context.Context, img v1.Image) (v1.Image, error)

// Options tune one Write.
type Options struct {
	// Platforms keeps only the index's manifests that match one of these;
	// empty keeps every platform (nerdctl push --all-platforms).
	Platforms []v1.Platform
	// Convert, when set, transforms every image manifest's image.
	Convert ImageConverter
	// Image labels this Write's events (e.g. the source's name).
	Image string
}

// Writer writes images into a Store. One Writer may serve many images at
// once: blobs are added once per digest for the Writer's life, and Jobs
// bounds the blob transfers of all of them together.
type Writer struct {
	store   ipfs.Store
	sem     *semaphore.Weighted
	onEvent func(Event)

	mu    sync.Mutex
	blobs map[digest.Digest]*blobEntry
}

type blobEntry struct {
	done chan struct{}
	b    Blob
	err  error
}

// NewWriter returns a Writer adding through store with at most jobs blob
// transfers at once (jobs < 1 means 4). onEvent may be nil.
func NewWriter(store ipfs.Store, jobs int, onEvent func(Event)) *Writer {
	if jobs < 1 {
		jobs = 4
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	return &Writer{store: store, sem: semaphore.NewWeighted(int64(jobs)), onEvent: onEvent, blobs: map[digest.Digest]*blobEntry{}}
}

// Write writes an image (v1.Image) or index (v1.ImageIndex) and its root
// descriptor, and returns the root CID. The root descriptor has mediaType,
// digest, size and urls only: no annotations of the source reach it, so
// one image has one root CID whatever it was called where it came from.
func (w *Writer) Write(ctx context.Context, src Node, opts Options) (*Result, error) {
	t := &tree{w: w, opts: opts, blobs: map[digest.Digest]Blob{}, platforms: map[string]bool{}, docs: map[digest.Digest]*docEntry{}}
	var (
		top *ocispec.Descriptor
		err error
	)
	switch s := src.(type) {
	case v1.ImageIndex:
		top, err = t.index(ctx, s)
	case v1.Image:
		top, err = t.image(ctx, s, nil)
	default:
		return nil, fmt.Errorf("manifests: cannot write a %T", src)
	}
	if err != nil {
		return nil, err
	}
	root, err := json.Marshal(ocispec.Descriptor{MediaType: top.MediaType, Digest: top.Digest, Size: top.Size, URLs: top.URLs})
	if err != nil {
		return nil, err
	}
	rc, err := w.store.Add(ctx, bytes.NewReader(root))
	if err != nil {
		return nil, fmt.Errorf("adding the root descriptor: %w", err)
	}
	res := &Result{Root: rc, RootDescriptor: root, Target: *top}
	w.onEvent(Event{Type: ImageDone, Image: opts.Image, Digest: top.Digest, MediaType: top.MediaType, Size: top.Size, CID: rc})
	for _, b := range t.blobs {
		res.Blobs = append(res.Blobs, b)
	}
	sort.Slice(res.Blobs, func(i, j int) bool { return res.Blobs[i].Digest < res.Blobs[j].Digest })
	for p := range t.platforms {
		res.Platforms = append(res.Platforms, p)
	}
	sort.Strings(res.Platforms)
	return res, nil
}

// tree is the state of one Write.
type tree struct {
	w         *Writer
	opts      Options
	mu        sync.Mutex
	blobs     map[digest.Digest]Blob
	platforms map[string]bool
	// docs holds the conversion of each source index or manifest, by
	// source digest: a child listed many times (however deep) is
	// converted once.
	docs map[digest.Digest]*docEntry
}

type docEntry struct {
	done chan struct{}
	d    *ocispec.Descriptor
	err  error
}

// once converts the document src names at most once per Write.
func (t *tree) once(ctx context.Context, src digest.Digest, convert func() (*ocispec.Descriptor, error)) (*ocispec.Descriptor, error) {
	t.mu.Lock()
	e, ok := t.docs[src]
	if !ok {
		e = &docEntry{done: make(chan struct{})}
		t.docs[src] = e
	}
	t.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.d, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.d, e.err = convert()
	close(e.done)
	return e.d, e.err
}

func (t *tree) record(b Blob) {
	t.mu.Lock()
	t.blobs[b.Digest] = b
	t.mu.Unlock()
}

// index converts an index: drops unselected platforms, converts children in
// parallel keeping their order, re-marshals it with ocispec.Index.
func (t *tree) index(ctx context.Context, idx v1.ImageIndex) (*ocispec.Descriptor, error) {
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	if mt = types.MediaType(MediaTypeOf(string(mt), raw)); !IsIndex(string(mt)) {
		return nil, fmt.Errorf("index %s: %w %q", digest.FromBytes(raw), ErrUnsupported, mt)
	}
	var doc ocispec.Index
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing index %s: %w", digest.FromBytes(raw), err)
	}
	doc.MediaType = DockerToOCI(doc.MediaType)
	kept := make([]ocispec.Descriptor, 0, len(doc.Manifests))
	for _, m := range doc.Manifests {
		if m.Platform != nil && !t.matches(m.Platform) {
			continue
		}
		kept = append(kept, m)
	}
	if len(kept) == 0 && len(doc.Manifests) > 0 {
		return nil, fmt.Errorf("no manifest of index %s matches platforms %v", digest.FromBytes(raw), t.opts.Platforms)
	}
	out := make([]ocispec.Descriptor, len(kept))
	g, gctx := errgroup.WithContext(ctx)
	for i, m := range kept {
		g.Go(func() error {
			h, err := v1.NewHash(m.Digest.String())
			if err != nil {
				return err
			}
			var nd *ocispec.Descriptor
			switch {
			case IsIndex(m.MediaType):
				nd, err = t.once(gctx, m.Digest, func() (*ocispec.Descriptor, error) {
					child, err := idx.ImageIndex(h)
					if err != nil {
						return nil, fmt.Errorf("reading index %s: %w", m.Digest, err)
					}
					return t.index(gctx, child)
				})
				if err != nil {
					return err
				}
			case IsManifest(m.MediaType):
				if m.Platform != nil {
					t.addPlatform(m.Platform)
				}
				nd, err = t.once(gctx, m.Digest, func() (*ocispec.Descriptor, error) {
					img, err := idx.Image(h)
					if err != nil {
						return nil, fmt.Errorf("reading manifest %s: %w", m.Digest, err)
					}
					return t.image(gctx, img, m.Platform)
				})
				if err != nil {
					return err
				}
			default:
				return fmt.Errorf("index entry %s: %w %q", m.Digest, ErrUnsupported, m.MediaType)
			}
			d := m
			d.MediaType = DockerToOCI(m.MediaType)
			d.Digest, d.Size, d.URLs = nd.Digest, nd.Size, nd.URLs
			out[i] = d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	doc.Manifests = out
	return t.putJSON(ctx, &doc, string(mt))
}

// image converts one image manifest: every layer and the config are added
// and get their URL, media types become OCI, the manifest is re-marshalled.
func (t *tree) image(ctx context.Context, img v1.Image, platform *ocispec.Platform) (*ocispec.Descriptor, error) {
	if t.opts.Convert != nil {
		var err error
		if img, err = t.opts.Convert(ctx, img); err != nil {
			return nil, err
		}
		// Converted images may own temporary files (spooled layers).
		if c, ok := img.(io.Closer); ok {
			defer c.Close()
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	if mt = types.MediaType(MediaTypeOf(string(mt), raw)); !IsManifest(string(mt)) {
		return nil, fmt.Errorf("manifest %s: %w %q", digest.FromBytes(raw), ErrUnsupported, mt)
	}
	var doc ocispec.Manifest
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", digest.FromBytes(raw), err)
	}
	doc.MediaType = DockerToOCI(doc.MediaType)

	g, gctx := errgroup.WithContext(ctx)
	for i := range doc.Layers {
		g.Go(func() error {
			l := &doc.Layers[i]
			h, err := v1.NewHash(l.Digest.String())
			if err != nil {
				return err
			}
			b, err := t.w.blob(gctx, t.opts.Image, l.Digest, l.Size, l.MediaType, func() (io.ReadCloser, error) {
				if bo, ok := img.(BlobOpener); ok && len(l.URLs) == 0 {
					return bo.OpenBlob(gctx, l.Digest, l.Size)
				}
				layer, err := img.LayerByDigest(h)
				if err != nil {
					return nil, err
				}
				return layer.Compressed()
			})
			if err != nil {
				return fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			t.record(b)
			l.URLs = []string{ipfs.URL(b.CID)}
			l.MediaType = DockerToOCI(l.MediaType)
			return nil
		})
	}
	// The config, alongside the layers.
	g.Go(func() error {
		c := &doc.Config
		cfg, err := img.RawConfigFile()
		if err != nil {
			return fmt.Errorf("reading config %s: %w", c.Digest, err)
		}
		b, err := t.w.blob(gctx, t.opts.Image, c.Digest, c.Size, c.MediaType, func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(cfg)), nil
		})
		if err != nil {
			return fmt.Errorf("config %s: %w", c.Digest, err)
		}
		t.record(b)
		c.URLs = []string{ipfs.URL(b.CID)}
		c.MediaType = DockerToOCI(c.MediaType)
		if platform == nil {
			var p struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			}
			if json.Unmarshal(cfg, &p) == nil && p.OS != "" {
				t.addPlatform(&ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if platform != nil {
		t.addPlatform(platform)
	}
	return t.putJSON(ctx, &doc, string(mt))
}

func (t *tree) addPlatform(p *ocispec.Platform) {
	if p.OS == "" || p.OS == "unknown" {
		return
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	t.mu.Lock()
	t.platforms[s] = true
	t.mu.Unlock()
}

// putJSON marshals doc as containerd's converter does (json.Marshal of the
// ocispec struct), adds it and returns its new descriptor.
func (t *tree) putJSON(ctx context.Context, doc any, srcMediaType string) (*ocispec.Descriptor, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	d := digest.FromBytes(b)
	mt := DockerToOCI(srcMediaType)
	blob, err := t.w.blob(ctx, t.opts.Image, d, int64(len(b)), mt, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("adding %s %s: %w", mt, d, err)
	}
	t.record(blob)
	return &ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b)), URLs: []string{ipfs.URL(blob.CID)}}, nil
}

func (t *tree) matches(p *ocispec.Platform) bool {
	if len(t.opts.Platforms) == 0 {
		return true
	}
	for _, want := range t.opts.Platforms {
		if PlatformMatches(want, p) {
			return true
		}
	}
	return false
}

// PlatformMatches reports whether p satisfies want: same OS and
// architecture, and the same variant when want names one (arm64's default
// variant is v8, arm's v7).
func PlatformMatches(want v1.Platform, p *ocispec.Platform) bool {
	if p == nil {
		return true
	}
	if want.OS != p.OS || want.Architecture != p.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	return normVariant(p.Architecture, p.Variant) == normVariant(want.Architecture, want.Variant)
}

func normVariant(arch, v string) string {
	if v != "" {
		return v
	}
	switch arch {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// BlobOpener is implemented by a source image that can hand out its blobs
// raw, unverified (such as a registry image read with plain GETs): the
// Writer, which verifies every byte it adds, then hashes each blob once
// instead of twice. Layers that carry urls (foreign layers) are still read
// through the image's own LayerByDigest.
type BlobOpener interface {
	OpenBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error)
}

// blob adds one blob at most once per Writer, verifying its digest and size
// while it streams.
func (w *Writer) blob(ctx context.Context, image string, d digest.Digest, size int64, mt string, open func() (io.ReadCloser, error)) (Blob, error) {
	w.mu.Lock()
	if e, ok := w.blobs[d]; ok {
		w.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return Blob{}, ctx.Err()
		}
		if e.err == nil {
			w.onEvent(Event{Type: BlobDone, Image: image, Digest: d, MediaType: DockerToOCI(mt), Size: size, Done: size, CID: e.b.CID, Cached: true, State: StateCached})
			b := e.b
			b.MediaType = DockerToOCI(mt)
			return b, nil
		}
		return Blob{}, e.err
	}
	e := &blobEntry{done: make(chan struct{})}
	w.blobs[d] = e
	w.mu.Unlock()

	e.b, e.err = w.add(ctx, image, d, size, mt, open)
	if e.err != nil {
		// Forget failures so that a later attempt can try again.
		w.mu.Lock()
		delete(w.blobs, d)
		w.mu.Unlock()
	}
	close(e.done)
	return e.b, e.err
}

func (w *Writer) add(ctx context.Context, image string, d digest.Digest, size int64, mt string, open func() (io.ReadCloser, error)) (Blob, error) {
	mt = DockerToOCI(mt)
	if err := w.sem.Acquire(ctx, 1); err != nil {
		return Blob{}, err
	}
	defer w.sem.Release(1)
	rc, err := open()
	if err != nil {
		return Blob{}, err
	}
	defer rc.Close()
	vr, err := NewVerifyReader(rc, d, size, "source blob "+d.String())
	if err != nil {
		return Blob{}, err
	}
	w.onEvent(Event{Type: BlobStart, Image: image, Digest: d, MediaType: mt, Size: size})
	pr := &progressReader{r: vr, report: func(n int64) {
		w.onEvent(Event{Type: BlobProgress, Image: image, Digest: d, MediaType: mt, Size: size, Done: n})
	}}
	c, err := w.store.Add(ctx, pr)
	if vr.err != nil && vr.err != io.EOF {
		// The store may have stopped reading at our error: report ours.
		return Blob{}, vr.err
	}
	if err != nil {
		return Blob{}, err
	}
	if vr.n != size {
		return Blob{}, fmt.Errorf("source blob %s: %w: the store read %d of %d bytes", d, ErrDigestMismatch, vr.n, size)
	}
	b := Blob{Digest: d, Size: size, MediaType: DockerToOCI(mt), CID: c}
	w.onEvent(Event{Type: BlobDone, Image: image, Digest: d, MediaType: mt, Size: size, Done: size, CID: c, State: StateAdded})
	return b, nil
}

type progressReader struct {
	r      io.Reader
	n      int64
	last   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.last >= 1<<20 {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}
