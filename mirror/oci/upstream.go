package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// PullUpstream writes an image as its source had it — the upstream
// documents (manifests/upstream) byte for byte, and the configs and layers
// they name — to DEST, a registry reference or oci:DIR[:TAG], so that the
// manifest (or index) digest there is the upstream one and signatures made
// over it still verify. c is an upstream layout (a lockfile entry's
// upstream:) or a pin handle that links one (its pin:). Every blob is
// verified while it streams, as by Pull.
//
// When the mirror kept only some of an index's platforms, the index cannot
// be written with its digest (its missing manifests would be dangling): with
// o.Platforms naming one kept platform, that platform's manifest is written
// (under its own upstream digest); otherwise it is ErrPartialUpstream. A
// docker-archive: cannot keep manifest digests (docker save's format has
// none): that is an error too. o.Transform and o.URLs do not apply. To a
// registry, the referrers the layout keeps of what was written are pushed
// too (referrers.go).
func PullUpstream(ctx context.Context, store ipfs.Store, c cid.Cid, dest string, o PullOptions) (*PullResult, error) {
	ref, err := registry.ParseRef(dest, o.Registry)
	if err != nil {
		return nil, err
	}
	if ref.Kind == registry.KindDockerArchive {
		return nil, fmt.Errorf("%w %q: a docker archive cannot keep manifest digests; write to a registry or oci:", registry.ErrBadReference, dest)
	}
	if err := CheckPullDest(dest, ref, o.Overwrite); err != nil {
		return nil, err
	}
	up := c
	if h, err := pinhandle.UpstreamOf(ctx, store, c); err == nil {
		up = h
	} else if !errors.Is(err, pinhandle.ErrNotHandle) {
		if errors.Is(err, ipfs.ErrNotFound) {
			return nil, fmt.Errorf("%w: %v", ErrNoUpstream, err)
		}
		return nil, err
	}
	im, err := upstream.Load(ctx, store, up)
	if errors.Is(err, upstream.ErrNotUpstream) {
		return nil, fmt.Errorf("%w: %s is neither an upstream layout (a lockfile entry's upstream:) nor a pin handle linking one: %v", ErrNoUpstream, c, err)
	}
	if err != nil {
		return nil, err
	}
	u := &upstreamNode{ctx: ctx, store: store, im: im}
	top := im.Top()
	var node manifests.Node
	switch {
	case manifests.IsIndex(top.MediaType) && len(o.Platforms) > 0:
		d, err := u.pickPlatform(top, o.Platforms)
		if err != nil {
			return nil, err
		}
		if node, err = u.image(d); err != nil {
			return nil, err
		}
	case manifests.IsIndex(top.MediaType):
		if missing := im.Missing(); len(missing) > 0 {
			var ps []string
			for _, m := range missing {
				if m.Platform != nil {
					ps = append(ps, m.Platform.OS+"/"+m.Platform.Architecture+strings.TrimSuffix("/"+m.Platform.Variant, "/"))
				} else {
					ps = append(ps, m.Digest.String())
				}
			}
			return nil, fmt.Errorf("%w: the upstream index %s names %d manifests the mirror did not keep (%s); write one kept platform with --platform", ErrPartialUpstream, top.Digest, len(missing), strings.Join(ps, ", "))
		}
		node = &upstreamIndex{u: u, d: top}
	default:
		if node, err = u.image(top); err != nil {
			return nil, err
		}
	}
	res, err := write(ctx, c, node, ref, o) // docker-archive: was refused above
	if err != nil || ref.Kind != registry.KindRegistry {
		return res, err
	}
	if res.Referrers, err = u.pushReferrers(ctx, ref, node, o); err != nil { // referrers.go
		return nil, err
	}
	return res, nil
}

// upstreamNode reads an upstream layout's blobs.
type upstreamNode struct {
	ctx   context.Context
	store ipfs.Store
	im    *upstream.Image
}

// open streams a config or layer, verified against its descriptor.
func (u *upstreamNode) open(d digest.Digest, size int64) (io.ReadCloser, error) {
	c, ok := u.im.Blob(d)
	if !ok {
		return nil, fmt.Errorf("upstream layout %s lacks blob %s", u.im.CID, d)
	}
	rc, err := u.store.Cat(u.ctx, c, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("blob %s (ipfs://%s): %w", d, c, err)
	}
	vr, err := manifests.NewVerifyReader(rc, d, size, fmt.Sprintf("blob %s (ipfs://%s)", d, c))
	if err != nil {
		rc.Close()
		return nil, err
	}
	return vr, nil
}

func (u *upstreamNode) doc(d digest.Digest) (upstream.Doc, error) {
	x, ok := u.im.Doc(d)
	if !ok {
		return upstream.Doc{}, fmt.Errorf("%w: %s is not among the upstream documents of %s (a platform the mirror did not keep)", ErrPartialUpstream, d, u.im.CID)
	}
	return x, nil
}

func (u *upstreamNode) image(d upstream.Doc) (v1.Image, error) {
	if !manifests.IsManifest(d.MediaType) {
		return nil, fmt.Errorf("%s is a %s, not an image manifest", d.Digest, d.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(d.Bytes))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	return partial.CompressedToImage(&upstreamImage{u: u, d: d, m: m})
}

// pickPlatform is the one kept manifest of index top that matches ps.
func (u *upstreamNode) pickPlatform(top upstream.Doc, ps []v1.Platform) (upstream.Doc, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(top.Bytes))
	if err != nil {
		return upstream.Doc{}, fmt.Errorf("index %s: %w", top.Digest, err)
	}
	var picked []upstream.Doc
	for _, m := range im.Manifests {
		if m.Platform == nil || !platformIn(*m.Platform, ps) || !m.MediaType.IsImage() {
			continue
		}
		if x, ok := u.im.Doc(digest.Digest(m.Digest.String())); ok {
			picked = append(picked, x)
		}
	}
	switch len(picked) {
	case 1:
		return picked[0], nil
	case 0:
		return upstream.Doc{}, fmt.Errorf("%w %v among the kept manifests of %s", ErrNoMatchingPlatform, ps, top.Digest)
	}
	return upstream.Doc{}, fmt.Errorf("%w: %v matches %d kept manifests of %s; name one platform", ErrNoMatchingPlatform, ps, len(picked), top.Digest)
}

// upstreamImage is a partial.CompressedImageCore over an upstream manifest.
type upstreamImage struct {
	u *upstreamNode
	d upstream.Doc
	m *v1.Manifest
}

func (i *upstreamImage) RawManifest() ([]byte, error) { return i.d.Bytes, nil }
func (i *upstreamImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.d.MediaType), nil
}
func (i *upstreamImage) RawConfigFile() ([]byte, error) {
	c := i.m.Config
	if c.Size > manifests.MaxManifestSize || c.Size < 0 {
		return nil, fmt.Errorf("config %s: %w: %d bytes", c.Digest, manifests.ErrLimit, c.Size)
	}
	rc, err := i.u.open(digest.Digest(c.Digest.String()), c.Size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (i *upstreamImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &upstreamLayer{u: i.u, d: i.m.Config}, nil
	}
	for _, l := range i.m.Layers {
		if l.Digest == h {
			return &upstreamLayer{u: i.u, d: l}, nil
		}
	}
	return nil, fmt.Errorf("manifest %s has no layer %s", i.d.Digest, h)
}

// upstreamLayer is a config or layer read from IPFS, verified.
type upstreamLayer struct {
	u *upstreamNode
	d v1.Descriptor
}

func (l *upstreamLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *upstreamLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *upstreamLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *upstreamLayer) Descriptor() (*v1.Descriptor, error) { d := l.d; return &d, nil }
func (l *upstreamLayer) Compressed() (io.ReadCloser, error) {
	return l.u.open(digest.Digest(l.d.Digest.String()), l.d.Size)
}

// upstreamIndex is a v1.ImageIndex over an upstream index, every child
// held (PullUpstream checks).
type upstreamIndex struct {
	u *upstreamNode
	d upstream.Doc
}

func (x *upstreamIndex) MediaType() (types.MediaType, error) {
	return types.MediaType(x.d.MediaType), nil
}
func (x *upstreamIndex) Digest() (v1.Hash, error)     { return v1.NewHash(x.d.Digest.String()) }
func (x *upstreamIndex) Size() (int64, error)         { return int64(len(x.d.Bytes)), nil }
func (x *upstreamIndex) RawManifest() ([]byte, error) { return x.d.Bytes, nil }
func (x *upstreamIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.d.Bytes))
}

func (x *upstreamIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.u.doc(digest.Digest(h.String()))
	if err != nil {
		return nil, err
	}
	return x.u.image(d)
}

func (x *upstreamIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.u.doc(digest.Digest(h.String()))
	if err != nil {
		return nil, err
	}
	if !manifests.IsIndex(d.MediaType) {
		return nil, fmt.Errorf("%s is a %s, not an index", d.Digest, d.MediaType)
	}
	return &upstreamIndex{u: x.u, d: d}, nil
}
