//go:build mirror_noembed

package open_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/open"
)

// Without the embedded node and without a daemon, Store says how to start
// one and touches no repo.
func TestNoEmbedBuild(t *testing.T) {
	if open.Embedded() {
		t.Fatal("Embedded() = true under mirror_noembed")
	}
	repo := filepath.Join(t.TempDir(), "ipfs")
	_, err := open.Store(context.Background(), open.Options{IPFSPath: repo})
	if !errors.Is(err, ipfs.ErrUnavailable) || !strings.Contains(err.Error(), "ipfs daemon") || !strings.Contains(err.Error(), "mirror_noembed") {
		t.Errorf("Store: %v", err)
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("created a repo")
	}
}
