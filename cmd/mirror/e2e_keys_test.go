package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// mirror pull --key with the private keys the openssl CLI writes: OpenSSL
// 3's default PKCS#8, encrypted PKCS#8 (genpkey -aes256), PKCS#1 and SEC 1.
// Before, encrypted PKCS#8 and SEC 1 were refused as "not a private key".
// A wrong password is a usage error that does not echo it.
func TestE2EPullKeyOpenSSL(t *testing.T) {
	t.Parallel()
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	keys := rig.OpenSSLKeys(t, t.TempDir(), "Pw-of-the-key")
	img, _ := filesImage(t)
	src := filepath.Join(t.TempDir(), "src")
	rig.WriteLayout(t, src, img, "v1")
	want := filterLayers(rig.SourceBlobs(t, img))
	args := []string{"push"}
	for _, key := range keys {
		args = append(args, "--recipient", "jwe:"+key.Pub)
	}
	root := mustRun(t, env, append(args, "oci:"+src+":v1")...).lastLine()
	for _, key := range keys {
		t.Run(key.Name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			mustRun(t, env, "pull", "--key", key.Arg, root, "oci:"+out)
			sameBlobs(t, "pull --key "+key.Name, want, rig.LayoutBlobs(t, out))
			rig.SkopeoReads(t, "oci:"+out) // the decrypted layout, read by skopeo
			if key.Password == "" {
				return
			}
			res := mirrorRun(t, env, "pull", "--key", key.Priv+":WRONG-PW-42", root, "oci:"+filepath.Join(t.TempDir(), "x"))
			if res.code != ExitUsage || !strings.Contains(res.stderr, "password") || strings.Contains(res.stdout+res.stderr, "WRONG-PW-42") {
				t.Errorf("wrong password: exit %d (want %d): %s", res.code, ExitUsage, res.stderr)
			}
		})
	}
}
