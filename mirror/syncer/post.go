package syncer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/ocidir"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/car"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/oci"
)

// The steps after an image is written: its pin handle, the re-pushes to
// the entry's push targets, its CAR; and for an unchanged entry, what
// this run's options add to it.

// post runs the post-steps of an image just written, filling r.
func (s *syncer) post(ctx context.Context, img *config.Image, tag string, m modes.Mode, res *oci.PushResult, up ocidir.Node, r *ImageReport) error {
	if s.o.PinHandle != nil {
		pin, err := s.o.PinHandle(ctx, res.Result, up)
		if err != nil {
			return fmt.Errorf("building the pin handle: %w", err)
		}
		r.Pin = pin.String()
	}
	targets, err := img.PushTargets(tag, r.SourceDigest, string(m))
	if err != nil {
		return err
	}
	for _, t := range targets {
		pr, err := oci.Pull(ctx, s.store, res.Root, t, oci.PullOptions{Registry: s.o.Registry, Jobs: s.o.Jobs})
		if err != nil {
			return fmt.Errorf("re-pushing to %s: %w", t, err)
		}
		r.Push = append(r.Push, lockfile.PushTarget{Ref: t, Digest: pr.Digest.String()})
	}
	return s.exportCAR(ctx, r)
}

// upgrade gives an unchanged entry what this run's options add: a pin
// handle it lacks, a CAR not yet exported. Only IPFS is read. An entry
// without upstream documents (from before they were kept) does not get
// them here: that would take the source's documents, a registry GET a
// no-op run does not make; it gets them when the image next changes.
func (s *syncer) upgrade(ctx context.Context, r *ImageReport, e *lockfile.Entry) error {
	changed := len(e.Configs) == 0 && len(r.Configs) > 0
	if s.o.PinHandle != nil && r.Pin == "" {
		root, err := ipfs.ParseCID(r.CID)
		if err != nil {
			return err
		}
		up, err := upstreamCID(r.Upstream)
		if err != nil {
			return err
		}
		h, err := PinHandleOf(ctx, s.store, root, up, "")
		if err != nil {
			return fmt.Errorf("building the pin handle: %w", err)
		}
		r.Pin, changed = h.String(), true
	}
	if s.o.CARDir != "" {
		if _, err := os.Stat(filepath.Join(s.o.CARDir, CARName(r.Source, r.Mode))); err != nil {
			if err := s.exportCAR(ctx, r); err != nil {
				return err
			}
		}
	}
	if changed {
		s.record(r)
	}
	return nil
}

// exportCAR writes the entry's CAR. After a write it reads what the write
// added from the copies its tee kept (see teeStore), and from the node
// only what the write did not add itself.
func (s *syncer) exportCAR(ctx context.Context, r *ImageReport) error {
	if s.o.CARDir == "" {
		return nil
	}
	root, err := ipfs.ParseCID(r.CID)
	if err != nil {
		return err
	}
	var from ipfs.Store = s.store
	if t, _ := ctx.Value(teeKey{}).(*tee); t != nil {
		from = teeView{s.store, t}
	}
	up, err := upstreamCID(r.Upstream)
	if err != nil {
		return err
	}
	if _, err := ExportCAR(ctx, from, root, up, filepath.Join(s.o.CARDir, CARName(r.Source, r.Mode)), ""); err != nil {
		return fmt.Errorf("exporting the CAR: %w", err)
	}
	return nil
}

// A CAR is not made by reading the image back from the node (a second full
// pass over IPFS): when CARs are asked for, the writer's store is a
// teeStore, which keeps a local copy of every file a write adds, in a tee
// the write's context carries; ExportCAR then reads those copies (through
// a teeView) exactly as it would read the node, so the CAR is the same
// blocks, re-chunked and checked against their CIDs as before. A file the
// write did not add — a blob another image of the run added first (the
// writer adds each digest once) — is still read from the node. The copies
// live in a hidden directory in the CAR directory and go when the image is
// done.

type teeKey struct{}

// tee holds local copies of the files one image's write added.
type tee struct {
	dir   string
	mu    sync.Mutex
	files map[cid.Cid]string // CIDv1 → copy
}

// withTee returns ctx carrying a new tee in a hidden directory of carDir,
// and the function that removes it. When the directory cannot be made the
// context carries none (the CAR then reads the node, as without a tee).
func withTee(ctx context.Context, carDir string) (context.Context, func()) {
	if err := os.MkdirAll(carDir, 0o755); err != nil {
		return ctx, func() {}
	}
	dir, err := os.MkdirTemp(carDir, ".tee-")
	if err != nil {
		return ctx, func() {}
	}
	t := &tee{dir: dir, files: map[cid.Cid]string{}}
	return context.WithValue(ctx, teeKey{}, t), func() { _ = os.RemoveAll(dir) }
}

func (t *tee) keep(c cid.Cid, path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.files[ipfs.V1(c)]; dup {
		_ = os.Remove(path)
		return
	}
	t.files[ipfs.V1(c)] = path
}

func (t *tee) file(c cid.Cid) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.files[ipfs.V1(c)]
	return p, ok
}

// teeStore is the writer's store when CARs are made: Add under a context
// carrying a tee also copies the bytes there. A copy that fails is
// dropped; it never fails the add.
type teeStore struct{ ipfs.Store }

func (s teeStore) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	t, _ := ctx.Value(teeKey{}).(*tee)
	if t == nil {
		return s.Store.Add(ctx, r)
	}
	f, err := os.CreateTemp(t.dir, "file-")
	if err != nil {
		return s.Store.Add(ctx, r)
	}
	cw := &copyWriter{w: f}
	c, err := s.Store.Add(ctx, io.TeeReader(r, cw))
	if cerr := f.Close(); cw.err == nil {
		cw.err = cerr
	}
	if err != nil || cw.err != nil {
		_ = os.Remove(f.Name())
		return c, err
	}
	t.keep(c, f.Name())
	return c, nil
}

// copyWriter writes to w until the first error, which it keeps rather
// than returns (so the reader it tees from never sees it).
type copyWriter struct {
	w   io.Writer
	err error
}

func (c *copyWriter) Write(p []byte) (int, error) {
	if c.err == nil {
		_, c.err = c.w.Write(p)
	}
	return len(p), nil
}

// teeView reads the files a tee copied from the copies, the others from
// the store.
type teeView struct {
	ipfs.Store
	t *tee
}

func (v teeView) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	p, ok := v.t.file(c)
	if !ok {
		return v.Store.Cat(ctx, c, offset, length)
	}
	f, err := os.Open(p)
	if err != nil {
		return v.Store.Cat(ctx, c, offset, length)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading the copy of %s: %w", c, err)
		}
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// upstreamCID parses an entry's upstream field (cid.Undef when empty).
func upstreamCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, nil
	}
	c, err := ipfs.ParseCID(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("the entry's upstream: %w", err)
	}
	return c, nil
}

// PinHandleOf builds (and, on a pinning store, pins) the pin handle of the
// image root names, from the tree as stored: only its JSON documents are
// read. up, when defined, is the image's upstream documents, which the
// handle links.
func PinHandleOf(ctx context.Context, store ipfs.Store, root, up cid.Cid, refName string) (cid.Cid, error) {
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return cid.Undef, err
	}
	in, err := pinhandle.FromTree(tree, refName)
	if err != nil {
		return cid.Undef, err
	}
	in.Upstream = ocidir.Node{CID: up}
	return pinhandle.Build(ctx, store, in)
}

// ExportCAR writes every block of the image root names — root descriptor,
// documents, config and layer DAGs, its upstream documents when up is
// defined, and its pin handle — to a CAR file at path, rooted at the pin
// handle (so `ipfs dag import` or a pinning service that pins the CAR's
// root keeps the whole image). Blobs are read from store and re-chunked
// with the format's settings, the upstream layout is rebuilt from its
// verified documents; a CID that does not come out the same is an error.
// It returns the handle's CID.
func ExportCAR(ctx context.Context, store ipfs.Store, root, up cid.Cid, path, refName string) (cid.Cid, error) {
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return cid.Undef, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return cid.Undef, err
	}
	cs, err := car.New(path)
	if err != nil {
		return cid.Undef, err
	}
	defer cs.Close()
	copyOne := func(c cid.Cid, what string) error {
		rc, err := store.Cat(ctx, c, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		got, err := cs.Add(ctx, rc)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ipfs.V1(got) != ipfs.V1(c) {
			return fmt.Errorf("%s: re-chunked to %s, not %s: %w", what, got, c, manifests.ErrDigestMismatch)
		}
		return nil
	}
	if err := copyOne(root, "root descriptor"); err != nil {
		return cid.Undef, err
	}
	// In digest order, so that the same tree always gives the same CAR,
	// byte for byte (a map's order would shuffle the blocks).
	digests := make([]string, 0, len(tree.Descs))
	for dg := range tree.Descs {
		digests = append(digests, string(dg))
	}
	sort.Strings(digests)
	done := map[cid.Cid]bool{}
	for _, dg := range digests {
		d := tree.Descs[digest.Digest(dg)]
		c, err := manifests.CID(d)
		if err != nil {
			return cid.Undef, err
		}
		if done[c] {
			continue
		}
		done[c] = true
		if err := copyOne(c, "blob "+d.Digest.String()); err != nil {
			return cid.Undef, err
		}
	}
	in, err := pinhandle.FromTree(tree, refName)
	if err != nil {
		return cid.Undef, err
	}
	if up.Defined() {
		n, err := copyUpstream(ctx, store, cs, up, done, copyOne)
		if err != nil {
			return cid.Undef, fmt.Errorf("upstream documents %s: %w", up, err)
		}
		in.Upstream = n
	}
	handle, err := pinhandle.Build(ctx, cs, in)
	if err != nil {
		return cid.Undef, err
	}
	if err := cs.Finish(handle); err != nil {
		return cid.Undef, err
	}
	return handle, nil
}

// copyUpstream rebuilds the upstream layout up in the CAR store: its
// documents read back verified (upstream.Load), the configs and layers it
// links copied unless done already. The layout must come out as up.
func copyUpstream(ctx context.Context, from ipfs.Store, cs *car.Store, up cid.Cid, done map[cid.Cid]bool, copyOne func(cid.Cid, string) error) (ocidir.Node, error) {
	im, err := upstream.Load(ctx, from, up)
	if err != nil {
		return ocidir.Node{}, err
	}
	in, err := im.Input()
	if err != nil {
		return ocidir.Node{}, err
	}
	for _, b := range in.Blobs {
		if c := ipfs.V1(b.CID); !done[c] {
			done[c] = true
			if err := copyOne(c, "blob "+b.Digest.String()); err != nil {
				return ocidir.Node{}, err
			}
		}
	}
	n, err := upstream.Build(ctx, cs, in)
	if err != nil {
		return ocidir.Node{}, err
	}
	if ipfs.V1(n.CID) != ipfs.V1(up) {
		return ocidir.Node{}, fmt.Errorf("rebuilt as %s: %w", n.CID, manifests.ErrDigestMismatch)
	}
	return n, nil
}

// GetBlock reads a block from the store beneath (the tee keeps files, not
// blocks), when it can.
func (v teeView) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	g, ok := v.Store.(ipfs.BlockGetter)
	if !ok {
		return nil, fmt.Errorf("%s cannot read blocks", ipfs.Describe(v.Store))
	}
	return g.GetBlock(ctx, c)
}

// CARName is the file name sync gives an entry's CAR.
func CARName(source, mode string) string {
	r := strings.NewReplacer("/", "_", ":", "_", "@", "_")
	return r.Replace(source) + "." + mode + ".car"
}
