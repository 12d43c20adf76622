package convert

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Annotations the stargz snapshotter reads on eStargz layer descriptors.
const (
	AnnotationTOCDigest        = estargz.TOCJSONDigestAnnotation         // containerd.io/snapshot/stargz/toc.digest
	AnnotationUncompressedSize = estargz.StoreUncompressedSizeAnnotation // io.containers.estargz.uncompressed-size
)

// DefaultEstargzParallelism is the number of parts a layer is split into and
// compressed concurrently when EstargzOptions.Parallelism is 0. It is fixed
// (not the CPU count, which nerdctl uses) because it decides the gzip member
// boundaries: a fixed value makes the output, hence the digests and CIDs, the
// same on every machine.
const DefaultEstargzParallelism = 4

// EstargzOptions tunes ToEstargz. The zero value gives the nerdctl /
// ctr-remote defaults.
type EstargzOptions struct {
	// CompressionLevel is the gzip level; 0 means gzip.BestCompression (9),
	// the default of nerdctl --estargz-compression-level and ctr-remote.
	CompressionLevel int
	// ChunkSize splits regular files into chunks of this many bytes; 0 means
	// the estargz default (4 MiB).
	ChunkSize int
	// PrioritizedFiles are paths (absolute or relative to /) put first in
	// every layer that holds them, followed by the prefetch landmark: what
	// the stargz snapshotter prefetches. Paths absent from a layer are
	// ignored, as with nerdctl --estargz-record-in. See LoadPrioritizedFiles.
	PrioritizedFiles []string
	// Parallelism: see DefaultEstargzParallelism. Negative is an error.
	Parallelism int
	// TempDir holds the temporary files (source spool, result); empty means
	// os.TempDir(). estargz.Build itself also writes its per-part files to
	// os.TempDir() (set TMPDIR to move them).
	TempDir string
}

func (o EstargzOptions) buildOptions(ctx context.Context) ([]estargz.Option, error) {
	level := o.CompressionLevel
	if level == 0 {
		level = gzip.BestCompression
	}
	if level < gzip.HuffmanOnly || level > gzip.BestCompression {
		return nil, fmt.Errorf("estargz: compression level %d out of range (1..9)", o.CompressionLevel)
	}
	if o.ChunkSize < 0 {
		return nil, fmt.Errorf("estargz: negative chunk size %d", o.ChunkSize)
	}
	par := o.Parallelism
	if par < 0 {
		return nil, fmt.Errorf("estargz: negative parallelism %d", o.Parallelism)
	}
	if par == 0 {
		par = DefaultEstargzParallelism
	}
	opts := []estargz.Option{
		estargz.WithCompression(newPooledGzip(level)),
		estargz.WithChunkSize(o.ChunkSize),
		estargz.WithParallelism(par),
		estargz.WithContext(ctx),
	}
	if len(o.PrioritizedFiles) > 0 {
		opts = append(opts, estargz.WithPrioritizedFiles(o.PrioritizedFiles))
	}
	return opts, nil
}

// ToEstargz returns img with every filesystem layer rebuilt as eStargz
// (gzip, zstd and uncompressed sources), as `nerdctl push --estargz` and
// `ctr-remote image convert --estargz --oci` do:
//
//   - layers become application/vnd.oci.image.layer.v1.tar+gzip with the
//     annotations containerd.io/snapshot/stargz/toc.digest and
//     io.containers.estargz.uncompressed-size (source annotations are kept);
//   - the config's rootfs.diff_ids follow the new layers, everything else in
//     the config (history included) is kept byte for byte;
//   - the manifest is OCI (Docker media types are mapped to OCI ones).
//
// Layers that already are eStargz (toc.digest annotation, and the blob opens
// with estargz.Open and its TOC matches the annotation) are passed through
// byte-identical; one that carries the annotation but does not open fails
// with ErrInvalidEstargz. Non-filesystem blobs (artifacts) and foreign layers
// pass through. Encrypted layers fail with ErrExclusiveModes, unknown layer
// media types with ErrUnsupportedMediaType (both checked before returning).
//
// The work is done on first use of the result (ctx is kept for it), one layer
// at a time: the source layer is streamed (and verified against its digest)
// into an uncompressed temporary file, built, and the result kept in a
// temporary file that the returned layer's Compressed() streams. Memory stays
// bounded whatever the layer size. Close the result (see Close) to remove the
// temporary files.
func ToEstargz(ctx context.Context, img v1.Image, opts EstargzOptions) (v1.Image, error) {
	if _, err := opts.buildOptions(ctx); err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("estargz: reading manifest: %w", err)
	}
	for i, l := range m.Layers {
		switch classify(l.MediaType) {
		case kindEncrypted:
			return nil, fmt.Errorf("estargz: layer %d (%s) is encrypted (%s): %w", i, l.Digest, l.MediaType, ErrExclusiveModes)
		case kindUnknown:
			return nil, fmt.Errorf("estargz: layer %d (%s): %w %q", i, l.Digest, ErrUnsupportedMediaType, l.MediaType)
		}
	}
	s := newScratch(opts.TempDir)
	return &image{
		ctx:            ctx,
		src:            img,
		scratch:        s,
		rewriteDiffIDs: true,
		what:           "estargz",
		convert: func(ctx context.Context, s *scratch, _ int, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (*convertedLayer, error) {
			return estargzLayer(ctx, s, opts, src, desc, diffID)
		},
	}, nil
}

func estargzLayer(ctx context.Context, s *scratch, opts EstargzOptions, src v1.Layer, desc v1.Descriptor, diffID v1.Hash) (*convertedLayer, error) {
	kind := classify(desc.MediaType)
	switch kind {
	case kindOther, kindForeign:
		return passthrough(src, desc, diffID), nil
	case kindEncrypted:
		return nil, fmt.Errorf("layer is encrypted: %w", ErrExclusiveModes)
	case kindUnknown:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedMediaType, desc.MediaType)
	}
	if toc, ok := desc.Annotations[AnnotationTOCDigest]; ok && kind == kindGzip {
		return existingEstargz(ctx, s, src, desc, diffID, toc)
	}

	// Spool the uncompressed tar: estargz.Build wants an io.SectionReader,
	// and given a compressed one it would decompress it to a temp file anyway.
	tarPath, tarSize, err := spool(ctx, s, src, desc, true, "mirror-estargz-src-*.tar")
	if err != nil {
		return nil, err
	}
	defer s.remove(tarPath)
	tarFile, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer tarFile.Close()

	bopts, err := opts.buildOptions(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string // prioritized files absent from this layer: fine
	bopts = append(bopts, estargz.WithAllowPrioritizeNotFound(&missing))
	blob, err := estargz.Build(io.NewSectionReader(tarFile, 0, tarSize), bopts...)
	if err != nil {
		return nil, fmt.Errorf("building eStargz: %w", err)
	}
	defer func() {
		// Close removes Build's temporary files; draining then lets its
		// background goroutine (blocked on a pipe when we stop early) end:
		// its reads fail once the files are closed.
		blob.Close()
		io.Copy(io.Discard, blob)
	}()

	out, err := s.create("mirror-estargz-*.tar.gz")
	if err != nil {
		return nil, err
	}
	outPath := out.Name()
	hw := newHashWriter(out)
	bw := bufio.NewWriterSize(hw, 1<<20)
	_, err = io.Copy(bw, ipfs.ContextReader(ctx, blob))
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = blob.Close()
	}
	if err != nil {
		s.remove(outPath)
		return nil, fmt.Errorf("writing eStargz: %w", err)
	}
	usize, err := blob.UncompressedSize()
	if err != nil {
		s.remove(outPath)
		return nil, fmt.Errorf("writing eStargz: %w", err)
	}
	newDiffID, err := v1.NewHash(blob.DiffID().String())
	if err != nil {
		s.remove(outPath)
		return nil, err
	}

	d := v1.Descriptor{
		MediaType:   types.OCILayer,
		Size:        hw.n,
		Digest:      hw.digest(),
		Annotations: maps.Clone(desc.Annotations),
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[AnnotationTOCDigest] = blob.TOCDigest().String()
	d.Annotations[AnnotationUncompressedSize] = strconv.FormatInt(usize, 10)
	return fileLayer(s, outPath, d, newDiffID), nil
}

// existingEstargz checks a layer that claims to be eStargz and passes it
// through byte-identical (served from the spooled copy).
func existingEstargz(ctx context.Context, s *scratch, src v1.Layer, desc v1.Descriptor, diffID v1.Hash, toc string) (*convertedLayer, error) {
	tocDigest, err := digest.Parse(toc)
	if err != nil {
		return nil, fmt.Errorf("annotation %s=%q: %v: %w", AnnotationTOCDigest, toc, err, ErrInvalidEstargz)
	}
	path, size, err := spool(ctx, s, src, desc, false, "mirror-estargz-*.tar.gz")
	if err != nil {
		return nil, err
	}
	if err := checkEstargz(path, size, tocDigest); err != nil {
		s.remove(path)
		return nil, err
	}
	d := desc
	d.MediaType = ociLayerType(desc.MediaType)
	d.Annotations = maps.Clone(desc.Annotations)
	return fileLayer(s, path, d, diffID), nil
}

// checkEstargz opens an eStargz blob and checks its TOC against tocDigest.
func checkEstargz(path string, size int64, tocDigest digest.Digest) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := estargz.Open(io.NewSectionReader(f, 0, size))
	if err != nil {
		return fmt.Errorf("layer carries %s but does not open as eStargz: %v: %w", AnnotationTOCDigest, err, ErrInvalidEstargz)
	}
	if _, err := r.VerifyTOC(tocDigest); err != nil {
		return fmt.Errorf("TOC does not match %s: %v: %w", AnnotationTOCDigest, err, ErrInvalidEstargz)
	}
	return nil
}

// spool copies a layer's blob to a registered temporary file, verifying it
// against desc.Digest, decompressed (gzip/zstd sniffed) when uncompress is set.
func spool(ctx context.Context, s *scratch, src v1.Layer, desc v1.Descriptor, uncompress bool, pattern string) (path string, size int64, err error) {
	rc, err := src.Compressed()
	if err != nil {
		return "", 0, fmt.Errorf("fetching layer: %w", err)
	}
	defer rc.Close()
	vr, err := verified(ipfs.ContextReader(ctx, rc), desc)
	if err != nil {
		return "", 0, err
	}
	f, err := s.create(pattern)
	if err != nil {
		return "", 0, err
	}
	name := f.Name()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			s.remove(name)
		}
	}()
	var r io.Reader = vr
	if uncompress {
		dr, err := decompress(vr)
		if err != nil {
			return "", 0, err
		}
		defer dr.Close()
		// Drain what follows the compressed stream so the digest is checked
		// on the whole blob.
		r = io.MultiReader(dr, readerFunc(func(p []byte) (int, error) {
			if _, err := io.Copy(io.Discard, vr); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}))
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	size, err = io.Copy(bw, r)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return "", 0, fmt.Errorf("reading layer: %w", err)
	}
	return name, size, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// fileLayer is a layer whose blob is a registered temporary file.
func fileLayer(s *scratch, path string, d v1.Descriptor, diffID v1.Hash) *convertedLayer {
	open := func() (io.ReadCloser, error) {
		f, err := s.open(path)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return &convertedLayer{
		desc:       d,
		diffID:     diffID,
		compressed: open,
		uncompressed: func() (io.ReadCloser, error) {
			f, err := open()
			if err != nil {
				return nil, err
			}
			dr, err := decompress(f)
			if err != nil {
				f.Close()
				return nil, err
			}
			return &readCloser{Reader: dr, closers: []io.Closer{dr, f}}, nil
		},
	}
}

// LoadPrioritizedFiles reads the list of files to put first in eStargz
// layers (EstargzOptions.PrioritizedFiles). Two formats are accepted:
//
//   - the record file of `ctr-remote image optimize --record-out` (what
//     `nerdctl image convert --estargz-record-in` reads): a stream of JSON
//     objects with a "path" field;
//   - plain text, one path per line; blank lines and lines starting with #
//     are skipped.
//
// Duplicates are dropped, the first occurrence keeps its place.
func LoadPrioritizedFiles(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading prioritized files: %w", err)
	}
	var paths []string
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		for n := 1; dec.More(); n++ {
			var e struct {
				Path *string `json:"path"`
			}
			if err := dec.Decode(&e); err != nil {
				return nil, fmt.Errorf("%s: record %d: %w", path, n, err)
			}
			if e.Path == nil {
				return nil, fmt.Errorf("%s: record %d has no \"path\"", path, n)
			}
			add(*e.Path)
		}
		return paths, nil
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		add(line)
	}
	return paths, nil
}
