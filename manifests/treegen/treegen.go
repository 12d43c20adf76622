// Package treegen builds IPFS-enabled image trees, well-formed and hostile,
// into an ipfs.Store: for the format reader's tests, its fuzz targets and
// the end-to-end tests that add them to a real kubo. It writes the JSON by
// hand (never through the manifests package), so that it can write what
// the reader must refuse.
package treegen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// UnknownType is a media type no reader knows.
const UnknownType = "application/vnd.example.unknown.v1+json"

// MemStore is an in-memory ipfs.Store: CIDs are raw CIDv1 of the bytes'
// sha256 (not UnixFS chunked as kubo adds them; the e2e tests use kubo).
type MemStore struct {
	mu   sync.Mutex
	data map[string][]byte
	cats int
}

var _ ipfs.Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{data: map[string][]byte{}} }

// Add stores what r holds.
func (m *MemStore) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	b, err := io.ReadAll(ipfs.ContextReader(ctx, r))
	if err != nil {
		return cid.Undef, err
	}
	return m.Put(b), nil
}

// Put stores b and returns its CID.
func (m *MemStore) Put(b []byte) cid.Cid {
	h, _ := multihash.Sum(b, multihash.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, h)
	m.mu.Lock()
	m.data[c.String()] = append([]byte(nil), b...)
	m.mu.Unlock()
	return c
}

// Replace makes the CID of orig read back as other: content that does not
// match its descriptor.
func (m *MemStore) Replace(orig, other []byte) {
	h, _ := multihash.Sum(orig, multihash.SHA2_256, -1)
	m.mu.Lock()
	m.data[cid.NewCidV1(cid.Raw, h).String()] = append([]byte(nil), other...)
	m.mu.Unlock()
}

// Cat reads c from offset (length < 0: to the end).
func (m *MemStore) Cat(ctx context.Context, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	b, ok := m.data[cid.NewCidV1(c.Type(), c.Hash()).String()]
	m.cats++
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("cat %s: %w", c, ipfs.ErrNotFound)
	}
	if off < 0 || off > int64(len(b)) {
		off = int64(len(b))
	}
	b = b[off:]
	if n >= 0 && n < int64(len(b)) {
		b = b[:n]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Cats is the number of Cat calls so far.
func (m *MemStore) Cats() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cats
}

// Pin does nothing.
func (m *MemStore) Pin(context.Context, cid.Cid) error { return nil }

// PutBlock stores data as a raw block.
func (m *MemStore) PutBlock(_ context.Context, _ uint64, data []byte) (cid.Cid, error) {
	return m.Put(data), nil
}

// Close does nothing.
func (m *MemStore) Close() error { return nil }

// Builder adds blobs and documents to a store.
type Builder struct {
	Ctx   context.Context
	Store ipfs.Store
	// Bytes counts the bytes of every document added.
	Bytes int64
}

// Blob adds data and returns its descriptor (with its ipfs:// URL).
func (b *Builder) Blob(data []byte, mediaType string) (ocispec.Descriptor, error) {
	c, err := b.Store.Add(b.Ctx, bytes.NewReader(data))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data)), URLs: []string{ipfs.URL(c)}}, nil
}

// Doc marshals v, adds it and returns its descriptor.
func (b *Builder) Doc(v any, mediaType string) (ocispec.Descriptor, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	b.Bytes += int64(len(raw))
	return b.Blob(raw, mediaType)
}

// Root adds the root descriptor of target and returns the image's CID.
func (b *Builder) Root(target ocispec.Descriptor) (cid.Cid, error) {
	raw, err := json.Marshal(target)
	if err != nil {
		return cid.Undef, err
	}
	return b.Store.Add(b.Ctx, bytes.NewReader(raw))
}

// Image adds a config and one layer per element of layers and the
// manifest that lists them; edit, when set, may change the layer
// descriptors before the manifest is written.
func (b *Builder) Image(layers [][]byte, edit func(layers []ocispec.Descriptor)) (ocispec.Descriptor, error) {
	var ls []ocispec.Descriptor
	var diffIDs []string
	for _, l := range layers {
		d, err := b.Blob(l, ocispec.MediaTypeImageLayer)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		ls = append(ls, d)
		diffIDs = append(diffIDs, d.Digest.String())
	}
	if diffIDs == nil {
		diffIDs = []string{}
	}
	cfg, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}, "config": map[string]any{}})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cd, err := b.Blob(cfg, ocispec.MediaTypeImageConfig)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if edit != nil {
		edit(ls)
	}
	if ls == nil {
		ls = []ocispec.Descriptor{}
	}
	return b.Doc(ocispec.Manifest{Versioned: versioned, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: ls}, ocispec.MediaTypeImageManifest)
}

// Index adds an index listing children.
func (b *Builder) Index(children []ocispec.Descriptor) (ocispec.Descriptor, error) {
	if children == nil {
		children = []ocispec.Descriptor{}
	}
	return b.Doc(ocispec.Index{Versioned: versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: children}, ocispec.MediaTypeImageIndex)
}

var versioned = specs.Versioned{SchemaVersion: 2}

// Repeated is the shape that costs a naive walker width^depth: depth
// levels of indexes, each listing the level below width times, over one
// image. Every document is small and read once; about 230 bytes per entry,
// so width 750 and depth 6 are about 1 MiB of JSON in all.
func Repeated(b *Builder, width, depth int) (cid.Cid, error) {
	d, err := b.Image([][]byte{[]byte("one small layer")}, nil)
	if err != nil {
		return cid.Undef, err
	}
	d.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	for range depth {
		kids := make([]ocispec.Descriptor, width)
		for i := range kids {
			kids[i] = d
		}
		if d, err = b.Index(kids); err != nil {
			return cid.Undef, err
		}
	}
	return b.Root(d)
}

// Nested is an index nested depth levels deep over one image: the depth
// limit's shape.
func Nested(b *Builder, depth int) (cid.Cid, error) {
	return Repeated(b, 1, depth)
}

// NegativeSize is an image whose only layer claims size -1 (inIndex: the
// manifest under an index).
func NegativeSize(b *Builder, inIndex bool) (cid.Cid, error) {
	d, err := b.Image([][]byte{[]byte("a layer")}, func(ls []ocispec.Descriptor) { ls[0].Size = -1 })
	if err != nil {
		return cid.Undef, err
	}
	if inIndex {
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
		if d, err = b.Index([]ocispec.Descriptor{d}); err != nil {
			return cid.Undef, err
		}
	}
	return b.Root(d)
}

// UnknownChild is an index of one image and one child blob of an unknown
// media type (unknown is its content).
func UnknownChild(b *Builder, unknown []byte) (cid.Cid, error) {
	img, err := b.Image([][]byte{[]byte("the image's layer")}, nil)
	if err != nil {
		return cid.Undef, err
	}
	img.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	other, err := b.Blob(unknown, UnknownType)
	if err != nil {
		return cid.Undef, err
	}
	idx, err := b.Index([]ocispec.Descriptor{img, other})
	if err != nil {
		return cid.Undef, err
	}
	return b.Root(idx)
}

// Shape builds one tree from fuzz input: shape picks a hostile shape of
// its own (with parameters from data) or, by default, FromBytes.
func Shape(b *Builder, shape byte, data []byte) (cid.Cid, error) {
	r := &reader{data: data}
	switch shape % 8 {
	case 1:
		return Repeated(b, 1+r.n(1000), r.n(10))
	case 2:
		return Nested(b, r.n(12))
	case 3:
		return NegativeSize(b, r.n(2) == 1)
	case 4:
		return UnknownChild(b, data)
	}
	return FromBytes(b, data)
}

// FromBytes builds a tree that data describes: a few blobs, then documents
// each listing earlier ones (repeated, some very often), every descriptor
// possibly broken (a negative or wrong size, a wrong or sha512 digest, no
// URL, a URL to other bytes, an unknown or empty media type). Any data
// gives a tree; most are invalid somewhere.
func FromBytes(b *Builder, data []byte) (cid.Cid, error) {
	r := &reader{data: data}
	var blobs []ocispec.Descriptor
	for i := range 1 + r.n(4) {
		content := append([]byte{byte(i)}, bytes.Repeat([]byte{r.byte()}, r.n(64))...)
		mt := []string{ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, UnknownType, ocispec.MediaTypeImageConfig, "", "application/vnd.docker.image.rootfs.diff.tar.gzip"}[r.n(6)]
		d, err := b.Blob(content, mt)
		if err != nil {
			return cid.Undef, err
		}
		blobs = append(blobs, d)
	}
	cfg, err := b.Blob([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`), ocispec.MediaTypeImageConfig)
	if err != nil {
		return cid.Undef, err
	}
	var docs []ocispec.Descriptor
	for i := range 1 + r.n(5) {
		var d ocispec.Descriptor
		if i == 0 || r.n(3) == 0 {
			m := ocispec.Manifest{Versioned: versioned, MediaType: ocispec.MediaTypeImageManifest, Config: b.mutate(r, cfg), Layers: []ocispec.Descriptor{}}
			for range r.n(4) {
				m.Layers = append(m.Layers, b.mutate(r, blobs[r.n(len(blobs))]))
			}
			mt := ocispec.MediaTypeImageManifest
			if r.n(8) == 0 {
				m.MediaType = ocispec.MediaTypeImageIndex // the document lies about its type
			}
			if d, err = b.Doc(m, mt); err != nil {
				return cid.Undef, err
			}
			d.Platform = &ocispec.Platform{OS: "linux", Architecture: []string{"amd64", "arm64"}[r.n(2)]}
		} else {
			kids := []ocispec.Descriptor{}
			for range r.n(5) {
				var k ocispec.Descriptor
				if r.n(4) == 0 {
					k = blobs[r.n(len(blobs))]
				} else {
					k = docs[r.n(len(docs))]
				}
				reps := 1 + r.n(3)
				if r.byte() >= 0xf0 {
					reps = 200
				}
				k = b.mutate(r, k)
				for range reps {
					kids = append(kids, k)
				}
			}
			if d, err = b.Index(kids); err != nil {
				return cid.Undef, err
			}
		}
		docs = append(docs, d)
	}
	return b.Root(b.mutate(r, docs[len(docs)-1]))
}

// mutate breaks d in one of many ways, or (most often) leaves it.
func (b *Builder) mutate(r *reader, d ocispec.Descriptor) ocispec.Descriptor {
	d.URLs = append([]string(nil), d.URLs...)
	switch r.n(32) {
	case 0:
		d.Size = -1
	case 1:
		d.Size++
	case 2:
		d.Size = 1 << 40
	case 3:
		d.Digest = digest.FromString("other bytes")
	case 4:
		d.URLs = nil
	case 5:
		d.URLs = []string{"ipfs://not-a-cid"}
	case 6:
		d.MediaType = UnknownType
	case 7:
		d.MediaType = ""
	case 8:
		d.Digest = digest.Digest("sha512:" + string(bytes.Repeat([]byte("ab"), 64)))
	case 9:
		if o, err := b.Blob([]byte("other bytes"), d.MediaType); err == nil {
			d.URLs = o.URLs
		}
	case 10:
		d.Size = 1<<63 - 1
	case 11:
		d.Size = 0
	case 12:
		d.URLs = append([]string{"http://127.0.0.1:9/x"}, d.URLs...)
	case 13:
		d.MediaType = ocispec.MediaTypeImageIndex
	case 14:
		d.MediaType = ocispec.MediaTypeImageManifest
	case 15:
		d.Digest = "sha256:zz"
	}
	return d
}

// reader hands out fuzz bytes, then zeros.
type reader struct {
	data []byte
	i    int
}

func (r *reader) byte() byte {
	if r.i >= len(r.data) {
		return 0
	}
	r.i++
	return r.data[r.i-1]
}

// n returns a number in [0, n).
func (r *reader) n(n int) int {
	if n <= 1 {
		return 0
	}
	if n > 255 {
		return (int(r.byte())<<8 | int(r.byte())) % n
	}
	return int(r.byte()) % n
}
