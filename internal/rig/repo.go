package rig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// IPFS runs kubo's CLI ($MIRROR_IPFS_BIN, else ipfs on PATH) on repo, with
// no daemon needed for init and config, and returns its trimmed output; a
// failure fails the test with the output.
func IPFS(t testing.TB, repo string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Tool(t, "MIRROR_IPFS_BIN", "ipfs"), args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// PrivateConfig is the kubo config of a node that can find no peer by
// itself: loopback addresses on free ports, no bootstrap peers, no
// routing, no mDNS, no AutoConf (KEY, JSON value pairs for `ipfs config
// --json`).
var PrivateConfig = [][2]string{
	{"Bootstrap", `[]`},
	{"Routing.Type", `"none"`},
	{"Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`},
	{"Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
	{"Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
	{"Discovery.MDNS.Enabled", `false`},
	{"AutoConf.Enabled", `false`},
}

// PrivateRepo is a fresh kubo repo (under t's temp dir) with
// PrivateConfig, then extra (more KEY, JSON pairs), and, when key is not
// empty, that swarm key: a node on it meets only the peers it is given.
func PrivateRepo(t testing.TB, key string, extra ...[2]string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "ipfs")
	IPFS(t, repo, "init", "--profile=test", "--empty-repo")
	for _, kv := range append(append([][2]string{}, PrivateConfig...), extra...) {
		IPFS(t, repo, "config", "--json", kv[0], kv[1])
	}
	if key != "" {
		if err := os.WriteFile(filepath.Join(repo, "swarm.key"), []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}
