package ipfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RepoPath resolves the IPFS repo directory as the ipfs CLI does: ipfsPath,
// else $IPFS_PATH, else ~/.ipfs; a leading ~/ is the home directory. Both
// the embedded node (which opens the repo) and the daemon finder (which
// reads the api file a daemon wrote there) start from it.
func RepoPath(ipfsPath string) (string, error) {
	if ipfsPath == "" {
		ipfsPath = os.Getenv("IPFS_PATH")
	}
	if ipfsPath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the IPFS repo: %w", err)
		}
		return filepath.Join(home, ".ipfs"), nil
	}
	if strings.HasPrefix(ipfsPath, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the IPFS repo: %w", err)
		}
		ipfsPath = filepath.Join(home, ipfsPath[2:])
	}
	return ipfsPath, nil
}
