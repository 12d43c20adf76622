package lockfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mirrors.lock")
	ctx := context.Background()
	a, err := Lock(ctx, path, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description (as another process would have) is
	// refused after the wait, with who holds it.
	var waited string
	start := time.Now()
	_, err = Lock(ctx, path, LockOptions{Timeout: 200 * time.Millisecond, OnWait: func(lf, holder string) { waited = lf + " " + holder }})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("second lock: %v after %s", err, time.Since(start))
	}
	if waited != LockPath(path)+" pid "+itoa(os.Getpid()) {
		t.Errorf("OnWait got %q", waited)
	}
	// A waiter gets it once released.
	go func() { time.Sleep(100 * time.Millisecond); a.Unlock() }()
	b, err := Lock(ctx, path, LockOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Cancelled while waiting.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(cctx, path, LockOptions{Timeout: time.Minute}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled wait: %v", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(LockPath(path)); !os.IsNotExist(err) {
		t.Errorf("lock file left: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
