package serve

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// diskCache keeps blobs that were verified against their digests in files
// named by digest (DIR/sha256/<hex>), bounded by the sum of their sizes
// (least recently used first out). A cached blob is served straight from
// its file (Range for free), without IPFS.
//
// A file is written while the blob streams to its first client and renamed
// into place only once the whole blob matched its digest; its stamp (device,
// inode, size, modification and change times: fileStamp) is recorded then.
// Every serve of the file first compares the open file's stamp with the
// recorded one, and again before the last byte goes out: a file whose
// stamp changed — written to, replaced, truncated — is hashed again before
// it is served (and removed when it does not match; a change during a
// transfer cuts the transfer short). So the bytes are hashed once, not on
// every serve, and a file changed through the file system is never served
// as valid. Files found at start (an earlier process's) have no recorded
// stamp and are hashed on their first use: the cache never fsyncs, so a
// crash may leave a file renamed before its data reached the disk.
//
// A cache directory removed while the server runs is made again.
//
// Several processes may share a directory: names are content addresses and
// renames are atomic; each process bounds what it knows of.
type diskCache struct {
	dir      string
	maxBytes int64
	log      *slog.Logger

	mu    sync.Mutex
	bytes int64
	ll    *list.List // of *diskEntry, most recently used at the front
	m     map[digest.Digest]*list.Element

	checking flight[digest.Digest, struct{}]
}

type diskEntry struct {
	d        digest.Digest
	size     int64
	verified bool      // the file's bytes were hashed and matched d
	stamp    fileStamp // the file's stamp then
}

// errCacheChanged: a cached file is not the one that was verified.
var errCacheChanged = errors.New("cached blob file changed since it was verified")

// cachedFile is an open cached blob whose stamp matched the verified one.
type cachedFile struct {
	f     *os.File
	size  int64
	stamp fileStamp
}

func (cf *cachedFile) Close() error { return cf.f.Close() }

// unchanged checks that the open file still has its verified stamp.
func (cf *cachedFile) unchanged() error {
	fi, err := cf.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", errCacheChanged, err)
	}
	if stampOf(fi) != cf.stamp {
		return fmt.Errorf("%w: %s", errCacheChanged, cf.f.Name())
	}
	return nil
}

const diskTempPrefix = ".partial-"

func openDiskCache(dir string, maxBytes int64, log *slog.Logger) (*diskCache, error) {
	c := &diskCache{dir: dir, maxBytes: maxBytes, log: log, ll: list.New(), m: map[digest.Digest]*list.Element{}}
	sub := filepath.Join(dir, string(digest.SHA256))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return nil, fmt.Errorf("blob cache: %w", err)
	}
	// Leftovers of transfers that never finished.
	tmps, _ := filepath.Glob(filepath.Join(dir, diskTempPrefix+"*"))
	for _, p := range tmps {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			_ = os.Remove(p) // a younger one may be another process's transfer
		}
	}
	ents, err := os.ReadDir(sub)
	if err != nil {
		return nil, fmt.Errorf("blob cache: %w", err)
	}
	type found struct {
		e     diskEntry
		mtime time.Time
	}
	var have []found
	for _, de := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, de.Name())
		fi, err := de.Info()
		if d.Validate() != nil || err != nil || !fi.Mode().IsRegular() {
			continue
		}
		have = append(have, found{diskEntry{d: d, size: fi.Size()}, fi.ModTime()})
	}
	// Oldest first, so that the newest end up at the front.
	slices.SortFunc(have, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	var evicted []digest.Digest
	for _, f := range have {
		evicted = append(evicted, c.insertLocked(f.e)...)
	}
	c.remove(evicted)
	return c, nil
}

func (c *diskCache) path(d digest.Digest) string {
	return filepath.Join(c.dir, string(d.Algorithm()), d.Encoded())
}

// insertLocked records e at the front and returns the digests evicted to
// make room; the caller removes their files (outside the lock).
func (c *diskCache) insertLocked(e diskEntry) []digest.Digest {
	if el, ok := c.m[e.d]; ok {
		old := el.Value.(*diskEntry)
		c.bytes += e.size - old.size
		*old = e
		c.ll.MoveToFront(el)
	} else {
		c.m[e.d] = c.ll.PushFront(&e)
		c.bytes += e.size
	}
	var out []digest.Digest
	for c.bytes > c.maxBytes && c.ll.Len() > 0 {
		el := c.ll.Back()
		old := el.Value.(*diskEntry)
		c.ll.Remove(el)
		delete(c.m, old.d)
		c.bytes -= old.size
		out = append(out, old.d)
	}
	return out
}

func (c *diskCache) remove(ds []digest.Digest) {
	for _, d := range ds {
		if err := os.Remove(c.path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("blob cache: removing an evicted blob", "digest", d.String(), "err", err)
		}
	}
}

// drop forgets d and removes its file.
func (c *diskCache) drop(d digest.Digest) {
	c.mu.Lock()
	if el, ok := c.m[d]; ok {
		c.bytes -= el.Value.(*diskEntry).size
		c.ll.Remove(el)
		delete(c.m, d)
	}
	c.mu.Unlock()
	c.remove([]digest.Digest{d})
}

// open returns the cached file of d, checked to hold size bytes that match
// d, or nil when there is none (the caller reads IPFS instead). A file
// whose stamp is not the one recorded when it was verified is hashed again
// first (once for every concurrent asker; ctx ends the wait).
func (c *diskCache) open(ctx context.Context, d digest.Digest, size int64) *cachedFile {
	for range 2 {
		c.mu.Lock()
		el, ok := c.m[d]
		var e diskEntry
		if ok {
			c.ll.MoveToFront(el)
			e = *el.Value.(*diskEntry)
			ok = e.size == size
		}
		c.mu.Unlock()
		if !ok {
			return nil
		}
		f, err := os.Open(c.path(d))
		if err != nil {
			c.drop(d) // evicted by another process, or removed by hand
			return nil
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() != size || !fi.Mode().IsRegular() {
			f.Close()
			c.log.Warn("blob cache: a cached file has the wrong size; removed", "digest", d.String(), "path", c.path(d))
			c.drop(d)
			return nil
		}
		st := stampOf(fi)
		if e.verified && e.stamp == st {
			return &cachedFile{f: f, size: size, stamp: st}
		}
		f.Close()
		if e.verified {
			c.log.Warn("blob cache: a cached file changed since it was verified; hashing it again", "digest", d.String(), "path", c.path(d))
		}
		if _, _, err := c.checking.do(ctx, d, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.check(ctx, d, size) }); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("blob cache: a cached file does not match its digest; removed", "digest", d.String(), "err", err)
				c.drop(d)
			}
			return nil
		}
	}
	return nil
}

// check hashes the file of d and records it verified, with its stamp
// (unless the file changed while it was hashed).
func (c *diskCache) check(ctx context.Context, d digest.Digest, size int64) error {
	f, err := os.Open(c.path(d))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st := stampOf(fi)
	vr, err := manifests.NewVerifyReader(ipfs.ContextReader(ctx, f), d, size, "cached blob "+d.String())
	if err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if _, err := io.CopyBuffer(io.Discard, vr, *bp); err != nil {
		return err
	}
	if fi, err := f.Stat(); err != nil || stampOf(fi) != st {
		return fmt.Errorf("%w while it was hashed", errCacheChanged)
	}
	c.mu.Lock()
	if el, ok := c.m[d]; ok {
		e := el.Value.(*diskEntry)
		e.verified, e.stamp = true, st
	}
	c.mu.Unlock()
	return nil
}

// mkdir makes the cache directory again when it was removed (logged).
func (c *diskCache) mkdir(err error) bool {
	if !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if merr := os.MkdirAll(filepath.Join(c.dir, string(digest.SHA256)), 0o755); merr != nil {
		return false
	}
	c.log.Warn("blob cache: the cache directory was gone; made again", "dir", c.dir)
	return true
}

// create starts the file of a blob about to stream from IPFS, or returns
// nil when it cannot be kept (larger than the whole cache, or the
// directory refuses the file). Writes to it never fail: a write error only
// means the blob is not kept.
func (c *diskCache) create(d digest.Digest, size int64) *diskWriter {
	if size > c.maxBytes || d.Validate() != nil {
		return nil
	}
	f, err := os.CreateTemp(c.dir, diskTempPrefix+d.Encoded()[:12]+"-*")
	if err != nil && c.mkdir(err) {
		f, err = os.CreateTemp(c.dir, diskTempPrefix+d.Encoded()[:12]+"-*")
	}
	if err != nil {
		c.log.Warn("blob cache: cannot create a file; serving without caching", "err", err)
		return nil
	}
	return &diskWriter{c: c, f: f, d: d, size: size}
}

type diskWriter struct {
	c    *diskCache
	f    *os.File
	d    digest.Digest
	size int64
	n    int64
	err  error
}

func (w *diskWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		var n int
		n, w.err = w.f.Write(p)
		w.n += int64(n)
	}
	return len(p), nil
}

// commit puts the file in place and records its stamp; call it only once
// the bytes written were verified to be the blob. It reports whether the
// blob was kept.
func (w *diskWriter) commit() bool {
	err := w.err
	if err == nil && w.n != w.size {
		err = fmt.Errorf("wrote %d of %d bytes", w.n, w.size)
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.c.path(w.d))
		if err != nil && w.c.mkdir(err) {
			err = os.Rename(w.f.Name(), w.c.path(w.d))
		}
	}
	var st fileStamp
	if err == nil {
		// The stamp after the rename (which may change the change time).
		var fi fs.FileInfo
		if fi, err = w.f.Stat(); err == nil {
			st = stampOf(fi)
		}
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(w.f.Name())
		w.c.log.Warn("blob cache: not kept", "digest", w.d.String(), "err", err)
		return false
	}
	w.c.mu.Lock()
	evicted := w.c.insertLocked(diskEntry{d: w.d, size: w.size, verified: true, stamp: st})
	w.c.mu.Unlock()
	w.c.remove(evicted)
	return true
}

// abort removes the partial file.
func (w *diskWriter) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}

func (c *diskCache) len() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.bytes
}
