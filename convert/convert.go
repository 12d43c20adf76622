// Package convert turns images into the forms mirror publishes: plain (as is),
// eStargz (lazily pullable, nerdctl push --estargz) and encrypted (ocicrypt,
// nerdctl image encrypt), and decrypts encrypted ones.
//
// Every conversion is a function v1.Image → v1.Image over go-containerregistry
// types. Results are lazy (the work happens on first use, under a lock) and
// consistent: layer digests, sizes, media types and annotations, the
// RawManifest (an OCI manifest, json.Marshal of the image-spec Go types) and
// the RawConfigFile agree, so a writer can stream each layer's Compressed()
// as is. Layer blobs are streamed and verified against their digests; where a
// format needs the whole blob (eStargz, encryption) it is spooled to a
// temporary file, never held in memory. Results that own temporary files
// implement io.Closer: call Close (or the package-level Close) when done.
//
// The package never prints; errors wrap the sentinels of errors.go.
package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
)

// Options gathers the options of every mode; ForMode uses the part its mode
// needs, so one Options can serve all the modes of an image.
type Options struct {
	Estargz EstargzOptions
	Encrypt EncryptOptions
}

// ForMode returns the conversion of a mode: plain (the image as is),
// estargz (ToEstargz) or encrypted (Encrypt). A combination of eStargz and
// encryption ("estargz+encrypted", "encrypted,estargz", ...) is refused
// with ErrExclusiveModes, as nerdctl refuses it: an encrypted blob cannot be
// lazily pulled. Anything else is ErrUnknownMode. For encrypted the
// recipients are checked now (ErrNoRecipients, ErrUnsupportedRecipient, ...).
func ForMode(mode modes.Mode, opts Options) (manifests.ImageConverter, error) {
	parts := strings.FieldsFunc(string(mode), func(r rune) bool { return r == '+' || r == ',' || r == ' ' })
	has := map[modes.Mode]bool{}
	for _, p := range parts {
		if m := modes.Mode(p); m.Valid() {
			has[m] = true
		} else {
			return nil, fmt.Errorf("%w %q (want %s)", ErrUnknownMode, mode, modes.Want())
		}
	}
	switch {
	case has[modes.Estargz] && has[modes.Encrypted]:
		return nil, fmt.Errorf("mode %q: %w", mode, ErrExclusiveModes)
	case len(has) != 1:
		return nil, fmt.Errorf("%w %q (want %s)", ErrUnknownMode, mode, modes.Want())
	case has[modes.Plain]:
		return func(_ context.Context, img v1.Image) (v1.Image, error) { return img, nil }, nil
	case has[modes.Estargz]:
		if _, err := opts.Estargz.buildOptions(context.Background()); err != nil {
			return nil, err
		}
		eo := opts.Estargz
		return func(ctx context.Context, img v1.Image) (v1.Image, error) { return ToEstargz(ctx, img, eo) }, nil
	default:
		eo := opts.Encrypt
		if len(eo.Recipients) == 0 {
			return nil, fmt.Errorf("mode %q: %w", mode, ErrNoRecipients)
		}
		for _, r := range eo.Recipients {
			if _, err := ParseRecipient(r); err != nil {
				return nil, err
			}
		}
		return func(ctx context.Context, img v1.Image) (v1.Image, error) { return Encrypt(ctx, img, eo) }, nil
	}
}

// Annotations of index entries that point at another entry (buildx
// attestation manifests): their target is renamed when it is converted.
const annotationRefDigest = "vnd.docker.reference.digest"

// ConvertIndex applies f to every image of idx (nested indexes too) and
// returns the index of the results: platforms, annotations and the order of
// the entries are kept; at every level each rewritten child's entry gets
// its new media type, digest and size, and loses the source's urls (they
// locate the source's document); a Docker manifest list becomes an OCI
// index, as does an index document without a mediaType field; an index
// none of whose children changed is the source's document byte for byte
// (its media type still the OCI index's). Entries that are neither
// images nor indexes are kept as they are (and cannot be fetched from the
// result). Like the image conversions it is lazy: f runs on first use of the
// result, child after child. The result implements io.Closer; Close closes
// every converted child.
func ConvertIndex(ctx context.Context, idx v1.ImageIndex, f manifests.ImageConverter) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	return &index{ctx: ctx, src: idx, srcManifest: im, f: f}, nil
}

type index struct {
	ctx         context.Context
	src         v1.ImageIndex
	srcManifest *v1.IndexManifest
	f           manifests.ImageConverter

	mu       sync.Mutex
	done     bool
	closed   bool
	err      error
	images   map[v1.Hash]v1.Image
	indexes  map[v1.Hash]v1.ImageIndex
	closers  []any
	raw      []byte
	manifest *v1.IndexManifest
}

var _ v1.ImageIndex = (*index)(nil)

func (ix *index) compute() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	if !ix.done {
		ix.err = ix.doCompute()
		ix.done = true
	}
	return ix.err
}

func (ix *index) doCompute() error {
	ix.images = map[v1.Hash]v1.Image{}
	ix.indexes = map[v1.Hash]v1.ImageIndex{}
	renamed := map[string]string{}
	// A Docker manifest list always becomes an OCI index; an index whose
	// children are all unchanged is kept byte for byte.
	changed := ix.srcManifest.MediaType == types.DockerManifestList
	var descs []v1.Descriptor
	for _, d := range ix.srcManifest.Manifests {
		if err := ix.ctx.Err(); err != nil {
			return err
		}
		nd := d
		nd.Annotations = maps.Clone(d.Annotations)
		var child interface {
			RawManifest() ([]byte, error)
			MediaType() (types.MediaType, error)
		}
		var convImg v1.Image
		var convIdx v1.ImageIndex
		switch {
		case d.MediaType.IsImage():
			img, err := ix.src.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("reading manifest %s: %w", d.Digest, err)
			}
			out, err := ix.f(ix.ctx, img)
			if err != nil {
				return fmt.Errorf("converting manifest %s (%s): %w", d.Digest, platformString(d.Platform), err)
			}
			ix.closers = append(ix.closers, out)
			child, convImg = out, out
		case d.MediaType.IsIndex():
			sub, err := ix.src.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("reading index %s: %w", d.Digest, err)
			}
			out, err := ConvertIndex(ix.ctx, sub, ix.f)
			if err != nil {
				return err
			}
			ix.closers = append(ix.closers, out)
			child, convIdx = out, out
		}
		if child != nil {
			raw, err := child.RawManifest()
			if err != nil {
				return fmt.Errorf("converting manifest %s (%s): %w", d.Digest, platformString(d.Platform), err)
			}
			mt, err := child.MediaType()
			if err != nil {
				return err
			}
			nd.MediaType, nd.Digest, nd.Size = mt, sha256Hash(raw), int64(len(raw))
			nd.Data = nil
			if nd.Digest != d.Digest || nd.MediaType != d.MediaType {
				changed = true
			}
			if nd.Digest != d.Digest {
				renamed[d.Digest.String()] = nd.Digest.String()
				// The source's urls locate the source's document.
				nd.URLs = nil
			}
			if convImg != nil {
				ix.images[nd.Digest] = convImg
			} else {
				ix.indexes[nd.Digest] = convIdx
			}
		}
		descs = append(descs, nd)
	}
	for i := range descs {
		if to, ok := renamed[descs[i].Annotations[annotationRefDigest]]; ok {
			descs[i].Annotations[annotationRefDigest] = to
		}
	}
	if !changed {
		raw, err := ix.src.RawManifest()
		if err != nil {
			return fmt.Errorf("reading index: %w", err)
		}
		ix.raw, ix.manifest = raw, ix.srcManifest
		return nil
	}
	oi := ocispec.Index{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageIndex,
		ArtifactType: ix.srcManifest.ArtifactType,
		Annotations:  ix.srcManifest.Annotations,
	}
	for _, d := range descs {
		oi.Manifests = append(oi.Manifests, toOCIDescriptor(d))
	}
	if oi.Manifests == nil {
		oi.Manifests = []ocispec.Descriptor{}
	}
	if s := ix.srcManifest.Subject; s != nil {
		sd := toOCIDescriptor(*s)
		oi.Subject = &sd
	}
	var err error
	if ix.raw, err = json.Marshal(oi); err != nil {
		return fmt.Errorf("encoding index: %w", err)
	}
	ix.manifest, err = v1.ParseIndexManifest(bytes.NewReader(ix.raw))
	return err
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "no platform"
	}
	return p.String()
}

// MediaType is the OCI index's, whatever the source said (a Docker list
// becomes an OCI index; an index document without a mediaType field is an
// OCI index).
func (ix *index) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

func (ix *index) RawManifest() ([]byte, error) {
	if err := ix.compute(); err != nil {
		return nil, err
	}
	return ix.raw, nil
}

func (ix *index) IndexManifest() (*v1.IndexManifest, error) {
	if err := ix.compute(); err != nil {
		return nil, err
	}
	return ix.manifest.DeepCopy(), nil
}

func (ix *index) Digest() (v1.Hash, error) {
	b, err := ix.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	return sha256Hash(b), nil
}

func (ix *index) Size() (int64, error) {
	b, err := ix.RawManifest()
	return int64(len(b)), err
}

func (ix *index) Image(h v1.Hash) (v1.Image, error) {
	if err := ix.compute(); err != nil {
		return nil, err
	}
	if img, ok := ix.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %s not found in converted index", h)
}

func (ix *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	if err := ix.compute(); err != nil {
		return nil, err
	}
	if idx, ok := ix.indexes[h]; ok {
		return idx, nil
	}
	return nil, fmt.Errorf("index %s not found in converted index", h)
}

// Layer returns an index entry that is neither an image nor an index (an
// artifact, a blob of an unknown type): the conversion keeps those as they
// are, so they are read (and verified, where the source verifies) through
// the source index. go-containerregistry's writers look for this method.
func (ix *index) Layer(h v1.Hash) (v1.Layer, error) {
	if err := ix.compute(); err != nil {
		return nil, err
	}
	wl, ok := ix.src.(interface {
		Layer(v1.Hash) (v1.Layer, error)
	})
	if !ok {
		return nil, fmt.Errorf("index entry %s: the source index cannot read it", h)
	}
	return wl.Layer(h)
}

// Close closes every converted child (removing their temporary files).
func (ix *index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.closed = true
	var errs []error
	for _, c := range ix.closers {
		if err := Close(c); err != nil {
			errs = append(errs, err)
		}
	}
	ix.closers = nil
	return errors.Join(errs...)
}

var _ io.Closer = (*index)(nil)
