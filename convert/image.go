package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Close releases what a converted image or index holds (its temporary files).
// It is a no-op for values that hold nothing (any v1.Image or v1.ImageIndex
// not made by this package). Images returned by ToEstargz, Encrypt, Decrypt,
// ConvertIndex and the functions of ForMode all implement io.Closer: call
// Close once the result has been written (or abandoned); using it afterwards
// fails with ErrClosed.
func Close(v any) error {
	if c, ok := v.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// convertedLayer is one layer of a converted image: its descriptor (what the
// manifest says), its diff ID and how to stream it.
type convertedLayer struct {
	desc         v1.Descriptor
	diffID       v1.Hash
	compressed   func() (io.ReadCloser, error)
	uncompressed func() (io.ReadCloser, error)
}

var _ v1.Layer = (*convertedLayer)(nil)

func (l *convertedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *convertedLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *convertedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *convertedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *convertedLayer) Compressed() (io.ReadCloser, error)  { return l.compressed() }
func (l *convertedLayer) Uncompressed() (io.ReadCloser, error) {
	return l.uncompressed()
}

// Descriptor returns the layer's descriptor with its annotations (the
// go-containerregistry partial.Describable interface).
func (l *convertedLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	d.Annotations = maps.Clone(l.desc.Annotations)
	return &d, nil
}

// passthrough wraps a source layer unchanged (but for Docker→OCI media type
// mapping); its stream is verified against the digest.
func passthrough(src v1.Layer, desc v1.Descriptor, diffID v1.Hash) *convertedLayer {
	d := desc
	d.MediaType = ociLayerType(desc.MediaType)
	d.Annotations = maps.Clone(desc.Annotations)
	return &convertedLayer{
		desc:   d,
		diffID: diffID,
		compressed: func() (io.ReadCloser, error) {
			rc, err := src.Compressed()
			if err != nil {
				return nil, err
			}
			vr, err := verified(rc, desc)
			if err != nil {
				rc.Close()
				return nil, err
			}
			return vr, nil // its Close closes rc
		},
		uncompressed: src.Uncompressed,
	}
}

// layerFunc converts the i-th layer of an image. desc is the source manifest
// descriptor and diffID the source config's diff ID for it.
type layerFunc func(ctx context.Context, s *scratch, i int, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (*convertedLayer, error)

// image is a converted image: the source with each layer replaced by what
// convert returns, an OCI manifest and (when rewriteDiffIDs) a config whose
// rootfs.diff_ids follow the new layers. Everything is computed on first use.
type image struct {
	ctx            context.Context
	src            v1.Image
	scratch        *scratch
	convert        layerFunc
	rewriteDiffIDs bool
	what           string // "estargz", "encrypt", "decrypt": error context

	mu          sync.Mutex
	done        bool
	err         error
	layers      []*convertedLayer
	rawConfig   []byte
	rawManifest []byte
	manifest    *v1.Manifest
}

var _ v1.Image = (*image)(nil)

func (img *image) compute() error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.scratch.isClosed() {
		return ErrClosed
	}
	if img.done {
		return img.err
	}
	img.err = img.doCompute()
	img.done = true
	return img.err
}

func (img *image) doCompute() error {
	ctx := img.ctx
	m, err := img.src.Manifest()
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	rawCfg, err := img.src.RawConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	diffIDs, err := configDiffIDs(rawCfg)
	if err != nil {
		return err
	}
	srcLayers, err := img.src.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	if len(srcLayers) != len(m.Layers) {
		return fmt.Errorf("image has %d layers but its manifest lists %d", len(srcLayers), len(m.Layers))
	}
	done := map[v1.Hash]*convertedLayer{} // the same blob twice is converted once
	newDiffIDs := make([]v1.Hash, len(diffIDs))
	copy(newDiffIDs, diffIDs)
	changed := false
	for i, l := range srcLayers {
		if err := ctx.Err(); err != nil {
			return err
		}
		desc := m.Layers[i]
		var diffID v1.Hash
		if i < len(diffIDs) {
			diffID = diffIDs[i]
		}
		cl, ok := done[desc.Digest]
		if !ok {
			cl, err = img.convert(ctx, img.scratch, i, l, desc, diffID)
			if err != nil {
				return fmt.Errorf("%s: layer %d (%s): %w", img.what, i, desc.Digest, err)
			}
			done[desc.Digest] = cl
		}
		img.layers = append(img.layers, cl)
		if i < len(newDiffIDs) && cl.diffID != newDiffIDs[i] {
			newDiffIDs[i] = cl.diffID
			changed = true
		}
	}
	img.rawConfig = rawCfg
	if img.rewriteDiffIDs && changed {
		if img.rawConfig, err = rewriteRootFS(rawCfg, newDiffIDs); err != nil {
			return err
		}
	}

	cfgDesc := m.Config
	cfgDesc.MediaType = ociConfigType(m.Config.MediaType)
	cfgDesc.Size = int64(len(img.rawConfig))
	cfgDesc.Digest = sha256Hash(img.rawConfig)
	cfgDesc.Data = nil
	om := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: m.ArtifactType,
		Config:       toOCIDescriptor(cfgDesc),
		Annotations:  m.Annotations,
	}
	for _, cl := range img.layers {
		om.Layers = append(om.Layers, toOCIDescriptor(cl.desc))
	}
	if m.Subject != nil {
		s := toOCIDescriptor(*m.Subject)
		om.Subject = &s
	}
	if img.rawManifest, err = json.Marshal(om); err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	if img.manifest, err = v1.ParseManifest(bytes.NewReader(img.rawManifest)); err != nil {
		return fmt.Errorf("decoding manifest: %w", err)
	}
	return nil
}

// configDiffIDs reads rootfs.diff_ids of a config (none for artifacts).
func configDiffIDs(raw []byte) ([]v1.Hash, error) {
	var cfg struct {
		RootFS struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	return cfg.RootFS.DiffIDs, nil
}

// rewriteRootFS replaces rootfs in a config and keeps every other field as raw
// JSON, as containerd's converter does (top-level keys come out sorted).
func rewriteRootFS(raw []byte, diffIDs []v1.Hash) ([]byte, error) {
	var cfg map[string]*json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	rootfs := ocispec.RootFS{Type: "layers"}
	for _, d := range diffIDs {
		rootfs.DiffIDs = append(rootfs.DiffIDs, digest.Digest(d.String()))
	}
	b, err := json.Marshal(rootfs)
	if err != nil {
		return nil, err
	}
	rm := json.RawMessage(b)
	cfg["rootfs"] = &rm
	out, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return out, nil
}

func sha256Hash(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

func toOCIDescriptor(d v1.Descriptor) ocispec.Descriptor {
	od := ocispec.Descriptor{
		MediaType:    string(d.MediaType),
		Digest:       digest.Digest(d.Digest.String()),
		Size:         d.Size,
		URLs:         d.URLs,
		Annotations:  d.Annotations,
		Data:         d.Data,
		ArtifactType: d.ArtifactType,
	}
	if p := d.Platform; p != nil {
		od.Platform = &ocispec.Platform{
			Architecture: p.Architecture,
			OS:           p.OS,
			OSVersion:    p.OSVersion,
			OSFeatures:   p.OSFeatures,
			Variant:      p.Variant,
		}
	}
	return od
}

func (img *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (img *image) RawManifest() ([]byte, error) {
	if err := img.compute(); err != nil {
		return nil, err
	}
	return img.rawManifest, nil
}

func (img *image) Manifest() (*v1.Manifest, error) {
	if err := img.compute(); err != nil {
		return nil, err
	}
	return img.manifest.DeepCopy(), nil
}

func (img *image) Size() (int64, error) {
	b, err := img.RawManifest()
	return int64(len(b)), err
}

func (img *image) Digest() (v1.Hash, error) {
	b, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	return sha256Hash(b), nil
}

func (img *image) RawConfigFile() ([]byte, error) {
	if err := img.compute(); err != nil {
		return nil, err
	}
	return img.rawConfig, nil
}

func (img *image) ConfigFile() (*v1.ConfigFile, error) {
	b, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(b))
}

func (img *image) ConfigName() (v1.Hash, error) {
	b, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	return sha256Hash(b), nil
}

func (img *image) Layers() ([]v1.Layer, error) {
	if err := img.compute(); err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(img.layers))
	for i, l := range img.layers {
		out[i] = l
	}
	return out, nil
}

func (img *image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if err := img.compute(); err != nil {
		return nil, err
	}
	for _, l := range img.layers {
		if l.desc.Digest == h {
			return l, nil
		}
	}
	if sha256Hash(img.rawConfig) == h {
		return static.NewLayer(img.rawConfig, img.manifest.Config.MediaType), nil
	}
	return nil, fmt.Errorf("blob %s not found in converted image", h)
}

func (img *image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	if err := img.compute(); err != nil {
		return nil, err
	}
	for _, l := range img.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("diff ID %s not found in converted image", h)
}

// Close removes the image's temporary files; see the package-level Close.
func (img *image) Close() error { return img.scratch.Close() }
