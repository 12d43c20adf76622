package serve

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// lockEntry is what a name:tag points at.
type lockEntry struct {
	root     cid.Cid
	upstream cid.Cid // the upstream documents (cid.Undef: none; see upstream.go)
	source   string
	mode     string
	file     string
}

// nameTable is the merged view of the lockfiles.
type nameTable struct {
	repos map[string]map[string]lockEntry // canonical repo → tag → entry
}

func (t *nameTable) lookup(repo, tag string) (lockEntry, bool) {
	e, ok := t.repos[repo][tag]
	return e, ok
}

func (t *nameTable) has(repo string) bool { return len(t.repos[repo]) > 0 }

func (t *nameTable) catalog() []string {
	out := make([]string, 0, len(t.repos))
	for r := range t.repos {
		out = append(out, r)
		if f := registry.FoldPort(r); f != r {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func (t *nameTable) tags(repo string) []string {
	var out []string
	for tag := range t.repos[repo] {
		out = append(out, tag)
	}
	slices.Sort(out)
	return out
}

// roots lists the distinct root CIDs of a repository, in tag order.
func (t *nameTable) roots(repo string) []cid.Cid {
	var out []cid.Cid
	seen := map[cid.Cid]bool{}
	for _, tag := range t.tags(repo) {
		c := t.repos[repo][tag].root
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// buildTable merges lockfiles: the first file to name a repo:tag wins.
func buildTable(files []string, read func(string) (*lockfile.File, error), log *slog.Logger) (*nameTable, error) {
	t := &nameTable{repos: map[string]map[string]lockEntry{}}
	for _, path := range files {
		f, err := read(path)
		if err != nil {
			return nil, err
		}
		for _, e := range f.Images {
			repo, tag, ok := registry.SplitSource(e.Source)
			if !ok || tag == "" {
				log.Debug("lockfile entry has no registry name:tag to serve it under", "lock", path, "source", e.Source, "mode", e.Mode)
				continue
			}
			c, err := ipfs.ParseCID(e.CID)
			if err != nil {
				return nil, fmt.Errorf("%s: %s (%s): %w", path, e.Source, e.Mode, err)
			}
			var up cid.Cid
			if e.Upstream != "" {
				if up, err = ipfs.ParseCID(e.Upstream); err != nil {
					return nil, fmt.Errorf("%s: %s (%s): upstream: %w", path, e.Source, e.Mode, err)
				}
				up = ipfs.V1(up)
			}
			tag = modes.Mode(e.Mode).Tag(tag)
			if t.repos[repo] == nil {
				t.repos[repo] = map[string]lockEntry{}
			}
			if old, dup := t.repos[repo][tag]; dup {
				if old.root != c {
					log.Warn("name served twice; the first lockfile wins", "name", repo+":"+tag, "kept", old.root.String(), "kept_from", old.file, "ignored", c.String(), "ignored_from", path)
				}
				continue
			}
			t.repos[repo][tag] = lockEntry{root: ipfs.V1(c), upstream: up, source: e.Source, mode: e.Mode, file: path}
		}
	}
	return t, nil
}

// locks serves the name table of a set of lockfiles and reloads it when a
// file changes (size, modification time or identity: an atomic rename
// counts), checking at most once per interval. A file that turns bad keeps
// the last good table in service and is logged.
type locks struct {
	paths    []string
	interval time.Duration
	log      *slog.Logger
	read     func(string) (*lockfile.File, error)

	mu      sync.Mutex
	table   *nameTable
	stamps  []os.FileInfo
	checked time.Time
	bad     bool
}

func newLocks(paths []string, interval time.Duration, log *slog.Logger) (*locks, error) {
	l := &locks{paths: paths, interval: interval, log: log, read: lockfile.Read}
	l.stamps = l.stat()
	for i, st := range l.stamps {
		if st == nil {
			log.Warn("lockfile does not exist (yet): no names from it until it does", "lock", paths[i])
		}
	}
	t, err := buildTable(paths, l.read, log)
	if err != nil {
		return nil, err
	}
	l.table, l.checked = t, time.Now()
	return l, nil
}

func (l *locks) stat() []os.FileInfo {
	out := make([]os.FileInfo, len(l.paths))
	for i, p := range l.paths {
		out[i], _ = os.Stat(p)
	}
	return out
}

func sameStamp(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// current returns the table, reloading it first if a file changed.
func (l *locks) current() *nameTable {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.paths) == 0 || time.Since(l.checked) < l.interval {
		return l.table
	}
	l.checked = time.Now()
	stamps := l.stat()
	if slices.EqualFunc(stamps, l.stamps, sameStamp) {
		return l.table
	}
	l.stamps = stamps
	t, err := buildTable(l.paths, l.read, l.log)
	if err != nil {
		l.log.Error("lockfile changed but cannot be read; still serving the previous names", "err", err)
		l.bad = true
		return l.table
	}
	n := 0
	for _, tags := range t.repos {
		n += len(tags)
	}
	l.log.Info("lockfiles reloaded", "names", n)
	l.table, l.bad = t, false
	return l.table
}
