package syncer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
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
func (s *syncer) post(ctx context.Context, img *config.Image, tag string, m modes.Mode, res *oci.PushResult, r *ImageReport) error {
	if s.o.PinHandle != nil {
		pin, err := s.o.PinHandle(ctx, res.Result)
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
// handle it lacks, a CAR not yet exported. Only IPFS is read.
func (s *syncer) upgrade(ctx context.Context, r *ImageReport, e *lockfile.Entry) error {
	changed := len(e.Configs) == 0 && len(r.Configs) > 0
	if s.o.PinHandle != nil && r.Pin == "" {
		root, err := ipfs.ParseCID(r.CID)
		if err != nil {
			return err
		}
		h, err := PinHandleOf(ctx, s.store, root, "")
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

func (s *syncer) exportCAR(ctx context.Context, r *ImageReport) error {
	if s.o.CARDir == "" {
		return nil
	}
	root, err := ipfs.ParseCID(r.CID)
	if err != nil {
		return err
	}
	if _, err := ExportCAR(ctx, s.store, root, filepath.Join(s.o.CARDir, CARName(r.Source, r.Mode)), ""); err != nil {
		return fmt.Errorf("exporting the CAR: %w", err)
	}
	return nil
}

// PinHandleOf builds (and, on a pinning store, pins) the pin handle of the
// image root names, from the tree as stored: only its JSON documents are
// read.
func PinHandleOf(ctx context.Context, store ipfs.Store, root cid.Cid, refName string) (cid.Cid, error) {
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return cid.Undef, err
	}
	in, err := pinhandle.FromTree(tree, refName)
	if err != nil {
		return cid.Undef, err
	}
	return pinhandle.Build(ctx, store, in)
}

// ExportCAR writes every block of the image root names — root descriptor,
// documents, config and layer DAGs, and its pin handle — to a CAR file at
// path, rooted at the pin handle (so `ipfs dag import` or a pinning service
// that pins the CAR's root keeps the whole image). Blobs are read from
// store and re-chunked with the format's settings; a CID that does not come
// out the same is an error. It returns the handle's CID.
func ExportCAR(ctx context.Context, store ipfs.Store, root cid.Cid, path, refName string) (cid.Cid, error) {
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
	done := map[cid.Cid]bool{}
	for _, d := range tree.Descs {
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
	handle, err := pinhandle.Build(ctx, cs, in)
	if err != nil {
		return cid.Undef, err
	}
	if err := cs.Finish(handle); err != nil {
		return cid.Undef, err
	}
	return handle, nil
}

// CARName is the file name sync gives an entry's CAR.
func CARName(source, mode string) string {
	r := strings.NewReplacer("/", "_", ":", "_", "@", "_")
	return r.Replace(source) + "." + mode + ".car"
}
