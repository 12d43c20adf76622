package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrLocked is returned by Lock when another run still held the lock when
// the wait ran out.
var ErrLocked = errors.New("lockfile is in use by another run")

// LockPath is the lock file that guards path: a hidden file beside it,
// ".mirrors.lock.lock" for "mirrors.lock".
func LockPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
}

// LockOptions configure Lock.
type LockOptions struct {
	// Timeout bounds the wait for a lock another run holds; 0 fails at
	// once.
	Timeout time.Duration
	// OnWait, when set, is called once when the lock is held by someone
	// else and Lock starts waiting; holder says who (e.g. "pid 1234"), or
	// is empty when the holder did not say.
	OnWait func(lockFile, holder string)
}

// Held is a lock taken by Lock; Unlock releases it.
type Held struct {
	f    *os.File
	path string
}

// pollMin and pollMax bound the interval between attempts while waiting.
var (
	pollMin = 20 * time.Millisecond
	pollMax = 500 * time.Millisecond
)

// Lock takes the exclusive lock of the lockfile at path (an flock(2) on
// LockPath(path)), so that runs that read, change and write the lockfile do
// so one after another and none loses another's entries. Take it before
// reading the lockfile and Unlock after writing it. When another run holds
// it, Lock waits up to o.Timeout (honouring ctx) and then fails with
// ErrLocked naming the lock file and its holder. The lock is released by
// the kernel if the process dies, so a crashed run never leaves it stuck.
func Lock(ctx context.Context, path string, o LockOptions) (*Held, error) {
	lp := LockPath(path)
	deadline := time.Now().Add(o.Timeout)
	wait := pollMin
	waiting := false
	for {
		h, err := tryLock(lp)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if h != nil {
			return h, nil
		}
		holder := readHolder(lp)
		if !time.Now().Before(deadline) {
			who := ""
			if holder != "" {
				who = " (" + holder + ")"
			}
			return nil, fmt.Errorf("%w: %s is locked by another mirror sync%s; waited %s (--lock-timeout)", ErrLocked, path, who, o.Timeout)
		}
		if !waiting && o.OnWait != nil {
			o.OnWait(lp, holder)
		}
		waiting = true
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
	}
}

// tryLock opens (creating) lp and takes its lock without blocking: nil, nil
// when someone else holds it. It checks that the file it locked is still
// the one at lp (a run that unlocks removes it; one that had opened the old
// file before must try again).
func tryLock(lp string) (*Held, error) {
	for {
		f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		ok, err := flock(f)
		if err != nil || !ok {
			f.Close()
			return nil, err
		}
		st, err1 := f.Stat()
		cur, err2 := os.Stat(lp)
		if err1 != nil || err2 != nil || !os.SameFile(st, cur) {
			f.Close()
			continue // removed or replaced while we locked it: again
		}
		// Say who holds it, for the runs that wait.
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
		return &Held{f: f, path: lp}, nil
	}
}

func readHolder(lp string) string {
	b, err := os.ReadFile(lp)
	if err != nil || len(b) > 64 {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, "pid ") {
		return ""
	}
	if _, err := strconv.Atoi(s[4:]); err != nil {
		return ""
	}
	return s
}

// Unlock removes the lock file and releases the lock. Safe on nil.
func (h *Held) Unlock() error {
	if h == nil || h.f == nil {
		return nil
	}
	// Remove while still holding the lock: a run that opened this file
	// meanwhile sees it is gone (tryLock) and starts over on a new one.
	err := os.Remove(h.path)
	if cerr := h.f.Close(); err == nil {
		err = cerr
	}
	h.f = nil
	return err
}
