package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/convert"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// PullOptions configure Pull.
type PullOptions struct {
	Registry registry.Options
	// Platforms to keep; empty keeps all (docker-archive: picks the host's
	// platform when the image has several).
	Platforms []v1.Platform
	// Transform, when set, rewrites every image (e.g. decrypt).
	Transform manifests.ImageConverter
	// Jobs bounds parallel blob copies to a registry (< 1 means 4).
	Jobs int
	// URLs is "keep" (the IPFS-enabled documents byte for byte, digests as
	// on IPFS), "strip" (the url-free rewrite: same blobs, ipfs:// URLs
	// removed, new manifest digests) or "" for the destination's default:
	// strip for a registry (CNCF distribution refuses urls on ordinary
	// layers, containers/image skips them), keep for oci: and
	// docker-archive:.
	URLs string
	// OnEvent receives each layer's progress (BlobStart, BlobProgress,
	// BlobDone: added, or exists when a registry had it) and ImageDone;
	// may be nil.
	OnEvent func(manifests.Event)
	// Overwrite replaces an existing docker-archive: file (without it, as
	// skopeo, Pull refuses: an archive holds one image).
	Overwrite bool
}

// URL handling of Pull.
const (
	URLsKeep  = "keep"
	URLsStrip = "strip"
)

// PullResult tells what Pull wrote.
type PullResult struct {
	Root   cid.Cid
	Dest   string
	Digest v1.Hash
	// Referrers are the referrer manifests PullUpstream wrote beside the
	// image (referrers.go).
	Referrers []v1.Hash
}

// Pull writes the IPFS-enabled image root names to DEST (oci:DIR[:TAG],
// docker-archive:FILE[:NAME:TAG] or a registry reference). Every blob is
// verified while it streams; a mismatch leaves DEST as it was (layouts and
// archives are staged and renamed; a registry gets its manifest last).
func Pull(ctx context.Context, store ipfs.Store, root cid.Cid, dest string, o PullOptions) (*PullResult, error) {
	ref, err := registry.ParseRef(dest, o.Registry)
	if err != nil {
		return nil, err
	}
	if err := CheckPullDest(dest, ref, o.Overwrite); err != nil {
		return nil, err
	}
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return nil, err
	}
	top, err := tree.Top(ctx)
	if err != nil {
		return nil, err
	}
	node, err := selectPlatforms(top, o.Platforms)
	if err != nil {
		return nil, err
	}
	if o.Transform != nil {
		if node, err = transform(ctx, node, o.Transform); err != nil {
			return nil, err
		}
		// A transformed image may own temporary files (decrypted layers).
		defer convert.Close(node)
	}
	urls := o.URLs
	if urls == "" {
		urls = URLsKeep
		if ref.Kind == registry.KindRegistry {
			urls = URLsStrip
		}
	}
	switch urls {
	case URLsKeep:
	case URLsStrip:
		if node, err = manifests.StripURLsContext(ctx, node); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: urls %q: want keep or strip", registry.ErrBadReference, urls)
	}
	if ref.Kind == registry.KindDockerArchive && ref.Tag == "" {
		ref.Tag = "localhost:5050/ipfs/" + root.String() + ":latest"
	}
	return write(ctx, root, node, ref, o)
}

// write writes node, read from the tree under root, to ref, reporting
// its blobs through o.OnEvent.
func write(ctx context.Context, root cid.Cid, node manifests.Node, ref registry.Ref, o PullOptions) (*PullResult, error) {
	res := &PullResult{Root: root, Dest: ref.String()}
	obs := newPullObserver(o.OnEvent, "ipfs://"+root.String())
	node = obs.wrap(node)
	var err error
	switch ref.Kind {
	case registry.KindOCI:
		res.Digest, err = writeLayout(ref, node)
	case registry.KindDockerArchive:
		res.Digest, err = writeArchive(ref, node, o.Platforms)
	case registry.KindRegistry:
		res.Digest, err = writeRegistry(ctx, ref, node, o)
	}
	if err != nil {
		return nil, err
	}
	obs.finish(node, res.Digest)
	return res, nil
}

func selectPlatforms(top manifests.Node, ps []v1.Platform) (manifests.Node, error) {
	idx, ok := top.(v1.ImageIndex)
	if !ok || len(ps) == 0 {
		return top, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var drop []v1.Hash
	kept := 0
	for _, m := range im.Manifests {
		if m.Platform == nil || platformIn(*m.Platform, ps) {
			kept++
			continue
		}
		drop = append(drop, m.Digest)
	}
	if kept == 0 {
		return nil, fmt.Errorf("%w %v", ErrNoMatchingPlatform, ps)
	}
	if len(drop) == 0 {
		return idx, nil
	}
	return mutate.RemoveManifests(idx, match.Digests(drop...)), nil
}

func platformIn(p v1.Platform, ps []v1.Platform) bool {
	op := &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	for _, want := range ps {
		if manifests.PlatformMatches(want, op) {
			return true
		}
	}
	return false
}

// transform applies f to the image, or to every image of the index at
// every level (convert.ConvertIndex: each rewritten child gets its new
// descriptor, an index without a mediaType field becomes an OCI index).
func transform(ctx context.Context, node manifests.Node, f manifests.ImageConverter) (manifests.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch n := node.(type) {
	case v1.Image:
		return f(ctx, n)
	case v1.ImageIndex:
		return convert.ConvertIndex(ctx, n, f)
	}
	return nil, fmt.Errorf("cannot transform %T", node)
}

// CheckPullDest refuses, before any content is read, a destination a pull
// cannot or should not write: a path given without oci: or
// docker-archive: (it would parse as a docker.io name), an existing oci:
// path that is not a layout, an existing docker-archive: file unless
// overwrite.
func CheckPullDest(dest string, ref registry.Ref, overwrite bool) error {
	switch ref.Kind {
	case registry.KindRegistry:
		if looksLikePath(dest) {
			return fmt.Errorf("%w %q: a path, not a registry reference: write oci:%s (an OCI layout) or docker-archive:%s (a docker archive)", registry.ErrBadReference, dest, dest, dest)
		}
	case registry.KindOCI:
		dir := filepath.Clean(ref.Path)
		fi, err := os.Stat(dir)
		if err != nil {
			return nil
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: oci:%s exists and is not a directory", registry.ErrBadReference, ref.Path)
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("%w: oci:%s exists and is not an OCI layout (no oci-layout file): name a new or empty directory, or a layout", registry.ErrBadReference, ref.Path)
		}
	case registry.KindDockerArchive:
		fi, err := os.Stat(filepath.Clean(ref.Path))
		switch {
		case err != nil:
		case fi.IsDir():
			return fmt.Errorf("%w: docker-archive:%s is a directory", registry.ErrBadReference, ref.Path)
		case fi.Size() > 0 && !overwrite:
			return fmt.Errorf("%w: docker-archive:%s (an archive holds one image; pass --force to replace it)", ErrDestinationExists, ref.Path)
		}
	}
	return nil
}

// looksLikePath says a destination without a transport was meant as a
// path: ./x, ../x, /x, ~/x, x.tar, or something that exists here.
func looksLikePath(s string) bool {
	for _, p := range []string{"./", "../", "/", "~/", "."} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	if strings.HasSuffix(s, ".tar") {
		return true
	}
	_, err := os.Stat(s)
	return err == nil
}

// writeLayout stages a fresh layout next to DIR and renames it into place;
// into an existing layout it moves the verified blobs in, then appends the
// image to index.json.
func writeLayout(ref registry.Ref, node manifests.Node) (v1.Hash, error) {
	dgst, err := node.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	dir := filepath.Clean(ref.Path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return v1.Hash{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(tmp)
	stage, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	var opts []layout.Option
	if ref.Tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref.Tag}))
	}
	switch n := node.(type) {
	case v1.Image:
		err = stage.AppendImage(n, opts...)
	case v1.ImageIndex:
		err = stage.AppendIndex(n, opts...)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing oci:%s: %w", ref.Path, err)
	}
	// Fresh destination: one rename.
	if entries, err := os.ReadDir(dir); errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		if err == nil {
			if err := os.Remove(dir); err != nil {
				return v1.Hash{}, err
			}
		}
		if err := os.Rename(tmp, dir); err != nil {
			return v1.Hash{}, err
		}
		return dgst, nil
	}
	// Existing layout: move blobs in (content-addressed, already verified),
	// then append the descriptor.
	dst, err := layout.FromPath(dir)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("oci:%s exists and is not an OCI layout: %w", ref.Path, err)
	}
	blobs := filepath.Join(tmp, "blobs")
	err = filepath.WalkDir(blobs, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		target := filepath.Join(dir, rel)
		if _, err := os.Stat(target); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.Rename(p, target)
	})
	if err != nil {
		return v1.Hash{}, err
	}
	sidx, err := stage.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	sim, err := sidx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	// The new image replaces the entry of its name, or, untagged, every
	// untagged entry: one image per name, so that `oci:DIR` (no tag) stays
	// unambiguous to skopeo after a second pull.
	if ref.Tag != "" {
		err = dst.RemoveDescriptors(match.Annotation(ocispec.AnnotationRefName, ref.Tag))
	} else {
		err = dst.RemoveDescriptors(func(d v1.Descriptor) bool { return d.Annotations[ocispec.AnnotationRefName] == "" })
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("oci:%s: %w", ref.Path, err)
	}
	for _, d := range sim.Manifests {
		if err := dst.AppendDescriptor(d); err != nil {
			return v1.Hash{}, err
		}
	}
	return dgst, nil
}

func writeArchive(ref registry.Ref, node manifests.Node, ps []v1.Platform) (v1.Hash, error) {
	img, ok := node.(v1.Image)
	if !ok {
		var err error
		if img, err = pickImage(node.(v1.ImageIndex), ps); err != nil {
			return v1.Hash{}, err
		}
	}
	tag, err := name.NewTag(ref.Tag, name.WeakValidation)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%w: %v", registry.ErrBadReference, err)
	}
	path := filepath.Clean(ref.Path)
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.Remove(f.Name())
	if err := tarball.Write(tag, img, f); err != nil {
		f.Close()
		return v1.Hash{}, fmt.Errorf("writing docker-archive:%s: %w", ref.Path, err)
	}
	if err := f.Close(); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// pickImage chooses one image of an index for a single-image destination:
// the only one, or the one matching the platforms (default: the host's).
func pickImage(idx v1.ImageIndex, ps []v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var imgs []v1.Descriptor
	for _, m := range im.Manifests {
		if m.MediaType.IsImage() && (m.Platform == nil || m.Platform.OS != "unknown") {
			imgs = append(imgs, m)
		}
	}
	if len(imgs) == 1 {
		return idx.Image(imgs[0].Digest)
	}
	want := ps
	if len(want) == 0 {
		want = []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}
	}
	var names []string
	for _, m := range imgs {
		if m.Platform != nil && platformIn(*m.Platform, want) {
			return idx.Image(m.Digest)
		}
		if m.Platform != nil {
			names = append(names, m.Platform.String())
		}
	}
	return nil, fmt.Errorf("%w %v: a docker archive holds one image; choose with --platform (have %s)", ErrNoMatchingPlatform, want, strings.Join(names, ", "))
}

func writeRegistry(ctx context.Context, ref registry.Ref, node manifests.Node, o PullOptions) (v1.Hash, error) {
	jobs := o.Jobs
	if jobs < 1 {
		jobs = 4
	}
	ropts := append(o.Registry.Remote(ctx), remote.WithJobs(jobs))
	var err error
	switch n := node.(type) {
	case v1.Image:
		err = remote.Write(ref.Ref, n, ropts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref.Ref, n, ropts...)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing to %s: %w", ref.Ref, err)
	}
	return node.Digest()
}
