package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// Secrets never reach an output: the password of an --ipfs-api URL (also
// one from ipfs.api in mirrors.yaml after ${ENV} expansion) or of a
// --gateway / MIRROR_GATEWAY URL, a --key
// password and --ipfs-api-header values. Each failing (and some working)
// run here carries a secret; stdout, stderr, --summary, --report and the
// GitHub annotations are all searched for it. Before, the URL password was
// in "no IPFS API reachable at http://user:PASSWORD@…" and a --key with an
// empty file name echoed FILE:PASSWORD.
func TestE2ESecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const secret = "SECRETPW-4f1d"
	k := rig.StartKubo(t, rig.KuboOptions{})
	port := k.APIAddr[strings.LastIndex(k.APIAddr, "/")+1:]
	goodURL := "http://user:" + secret + "@127.0.0.1:" + port // kubo ignores the credentials
	badURL := "http://user:" + secret + "@127.0.0.1:1"
	dir := t.TempDir()

	// An encrypted image, and keys: the right one, a wrong one with the
	// secret as its password, one encrypted with the secret.
	keys := rig.OpenSSLKeys(t, t.TempDir(), secret)
	var rightPub, encPriv string
	for _, key := range keys {
		switch key.Name {
		case "rsa-pkcs8":
			rightPub = key.Pub
		case "ec-pkcs8-encrypted":
			encPriv = key.Priv
		}
	}
	img, _ := filesImage(t)
	src := filepath.Join(t.TempDir(), "src")
	rig.WriteLayout(t, src, img, "v1")
	root := mustRun(t, []string{"IPFS_API=" + k.APIAddr}, "push", "--recipient", "jwe:"+rightPub, "oci:"+src+":v1").lastLine()

	lock := filepath.Join(dir, "mirrors.lock")
	mustRun(t, []string{"IPFS_API=" + k.APIAddr}, "sync", "--lock", lock, writeListAs(t, dir, "ok.yaml", "version: 1\nimages:\n  - source: oci:"+src+":v1\n"))
	envList := writeListAs(t, dir, "env.yaml", "version: 1\nipfs:\n  api: http://user:${MIRROR_TEST_PW}@127.0.0.1:1\nimages:\n  - source: oci:"+src+":v1\n")
	envBadList := writeListAs(t, dir, "envbad.yaml", "version: 1\nipfs:\n  api: http://user:${MIRROR_TEST_PW}@127.0.0.1:notaport\nimages:\n  - source: oci:"+src+":v1\n")
	pwEnv := []string{"MIRROR_TEST_PW=" + secret}
	goodList := writeListAs(t, dir, "good.yaml", "version: 1\nipfs:\n  api: http://user:${MIRROR_TEST_PW}@127.0.0.1:"+port+"\nimages:\n  - source: oci:"+src+":v1\n  - source: oci:"+filepath.Join(dir, "missing")+":v1\n")

	cases := []struct {
		name string
		env  []string
		args []string
		code int // -1: any non-zero
	}{
		{"inspect, unreachable --ipfs-api", nil, []string{"--json", "--ipfs-api", badURL, "inspect", root}, ExitIPFS},
		{"inspect, unparsable --ipfs-api", nil, []string{"--ipfs-api", badURL + "x:y", "inspect", root}, -1},
		{"inspect, IPFS_API", []string{"IPFS_API=" + badURL}, []string{"inspect", root}, ExitIPFS},
		{"inspect, --ipfs-api-header", nil, []string{"--ipfs-api-header", "Authorization: Bearer " + secret, "--ipfs-api", "http://127.0.0.1:1", "inspect", root}, ExitIPFS},
		{"inspect, bad --ipfs-api-header", nil, []string{"--ipfs-api-header", "Authorization" + secret, "inspect", root}, ExitUsage},
		{"sync, unreachable --ipfs-api", pwEnv, []string{"--json", "sync", "--lock", lock, "--summary", "SUMMARY", "--report", "REPORT", "--github-annotations", "--ipfs-api", badURL, envList}, ExitIPFS},
		{"sync, ipfs.api ${ENV}", pwEnv, []string{"--json", "sync", "--lock", lock, "--summary", "SUMMARY", "--report", "REPORT", "--github-annotations", envList}, ExitIPFS},
		{"sync, bad ipfs.api ${ENV}", pwEnv, []string{"--json", "sync", "--lock", lock, "--summary", "SUMMARY", "--github-annotations", envBadList}, ExitUsage},
		{"sync -v through ipfs.api with a password, one image failing", pwEnv, []string{"-v", "sync", "--lock", filepath.Join(dir, "good.lock"), "--summary", "SUMMARY", "--report", "REPORT", "--github-annotations", goodList}, ExitPartial},
		{"verify, unreachable --ipfs-api", nil, []string{"--json", "--ipfs-api", badURL, "verify", "--summary", "SUMMARY", "--report", "REPORT", "--github-annotations", lock}, ExitIPFS},
		{"verify -v through a URL with a password", nil, []string{"-v", "--ipfs-api", goodURL, "verify", "--summary", "SUMMARY", "--report", "REPORT", "--github-annotations", lock}, 0},
		{"pull, wrong key password", nil, []string{"--json", "--ipfs-api", goodURL, "pull", "--key", encPriv + ":wrong" + secret, root, "oci:" + filepath.Join(t.TempDir(), "o")}, ExitUsage},
		{"pull, wrong key", nil, []string{"-v", "--json", "--ipfs-api", goodURL, "pull", "--key", encPriv + ":" + secret, root, "oci:" + filepath.Join(t.TempDir(), "o")}, -1},
		{"pull, pass= password, missing file", nil, []string{"pull", "--key", filepath.Join(dir, "missing.pem") + ":pass=" + secret, root, "oci:x"}, ExitUsage},
		{"pull, no key file", nil, []string{"pull", "--key", ":" + secret, root, "oci:x"}, ExitUsage},
		{"pull, --key= form", nil, []string{"pull", "--key=:" + secret, root, "oci:x"}, ExitUsage},
		{"inspect, unreachable --gateway", nil, []string{"inspect", "--gateway", "http://user:" + secret + "@127.0.0.1:1", root}, ExitIPFS},
		{"verify through MIRROR_GATEWAY with a password", []string{"MIRROR_GATEWAY=" + strings.Replace(k.GatewayURL(), "://", "://user:"+secret+"@", 1)}, []string{"-v", "verify", "--summary", "SUMMARY", "--report", "REPORT", lock}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = strings.NewReplacer("SUMMARY", filepath.Join(out, "summary.md"), "REPORT", filepath.Join(out, "report.json")).Replace(a)
			}
			res := mirrorRun(t, append([]string{"IPFS_API="}, c.env...), args...)
			if (c.code >= 0 && res.code != c.code) || (c.code < 0 && res.code == 0) {
				t.Errorf("exit %d, want %d:\n%s%s", res.code, c.code, res.stdout, res.stderr)
			}
			outputs := map[string]string{"stdout": res.stdout, "stderr": res.stderr}
			files, _ := os.ReadDir(out)
			for _, f := range files {
				b, _ := os.ReadFile(filepath.Join(out, f.Name()))
				outputs[f.Name()] = string(b)
			}
			for name, s := range outputs {
				if strings.Contains(s, secret) || strings.Contains(s, "SECRETPW") {
					t.Errorf("%s holds the secret:\n%s", name, s)
				}
			}
			if res.code != 0 && strings.TrimSpace(res.stderr) == "" {
				t.Error("no error message at all")
			}
			t.Logf("exit %d; stderr: %s", res.code, res.stderr)
		})
	}
}
