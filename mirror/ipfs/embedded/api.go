package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	oldcmds "github.com/ipfs/kubo/commands"
	"github.com/ipfs/kubo/core"
	"github.com/ipfs/kubo/core/corehttp"
	manet "github.com/multiformats/go-multiaddr/net"
)

// holderFile, beside kubo's repo.lock, names the mirror process that holds
// the repo, so that another one can say who it is waiting for.
const holderFile = "mirror-holder.json"

// holder is the record in holderFile. It never holds arguments (they may
// carry secrets): the command name and the pid only.
type holder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	API     string `json:"api,omitempty"`
}

func writeHolder(repoPath string, h holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tmp := filepath.Join(repoPath, "."+holderFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(repoPath, holderFile))
}

// lockHolder describes the process holding repoPath's lock: "mirror serve
// (pid 123)" from a live holder record, else "" (an `ipfs daemon`, or a
// program that does not say).
func lockHolder(repoPath string) string {
	b, err := os.ReadFile(filepath.Join(repoPath, holderFile))
	if err != nil || len(b) > 4096 {
		return ""
	}
	var h holder
	if json.Unmarshal(b, &h) != nil || h.PID <= 0 || h.Command == "" {
		return ""
	}
	// A record left by a process that died is not the holder.
	if err := syscall.Kill(h.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return ""
	}
	return fmt.Sprintf("%s (pid %d)", h.Command, h.PID)
}

// serveAPI serves the node's kubo RPC API (the commands `ipfs daemon`
// serves on /api/v0, no gateway or web UI) on a random loopback port and
// writes the repo's api file, as `ipfs daemon` does, so that other mirror
// processes and the ipfs CLI use this node while it holds the repo. The
// repo's API.Authorizations apply. The server stops when the node closes;
// closing the repo removes the api file.
func serveAPI(node *core.IpfsNode, repoPath string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("embedded IPFS node: listening for its RPC API: %w", err)
	}
	maddr, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		ln.Close()
		return "", err
	}
	cctx := oldcmds.Context{
		ConfigRoot:    repoPath,
		ReqLog:        &oldcmds.ReqLog{},
		ConstructNode: func() (*core.IpfsNode, error) { return node, nil },
	}
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- corehttp.ServeWithReady(node, ln, ready,
			corehttp.CheckVersionOption(),
			corehttp.CommandsOption(cctx),
			corehttp.VersionOption(),
		)
	}()
	select {
	case <-ready:
	case err := <-errc:
		return "", fmt.Errorf("embedded IPFS node: serving its RPC API: %w", err)
	}
	if err := node.Repo.SetAPIAddr(maddr); err != nil {
		return "", fmt.Errorf("embedded IPFS node: writing %s: %w", filepath.Join(repoPath, "api"), err)
	}
	return maddr.String(), nil
}
