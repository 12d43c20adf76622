package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

func addBytes(t *testing.T, k *rig.Kubo, b []byte) string {
	t.Helper()
	out, err := k.RunErr(strings.NewReader(string(b)), "add", "-Q", "--cid-version=1", "--raw-leaves", "--chunker=size-262144", "--pin=true")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestE2EBadInput(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 21, 400<<10, false)}})
	src := r.reg.Host + "/test/bad:v1"
	rig.Push(t, src, img)
	root := mustRun(t, r.env, "push", src).lastLine()

	t.Run("unknown CID offline", func(t *testing.T) {
		never := r.k.AddOnlyHash(rig.RandomBytes(999, 1000))
		res := mirrorRun(t, r.env, "--timeout", "10s", "pull", "ipfs://"+never, "oci:"+filepath.Join(t.TempDir(), "x"))
		if res.code != ExitIPFS || !strings.Contains(res.stderr, never) {
			t.Errorf("exit %d (want %d): %s", res.code, ExitIPFS, res.stderr)
		}
	})
	t.Run("unknown CID bounded by --timeout", func(t *testing.T) {
		// An online node in a private swarm with no peers looks for the CID
		// until the timeout.
		online := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: swarmKey()})
		never := r.k.AddOnlyHash(rig.RandomBytes(998, 1000))
		start := time.Now()
		res := mirrorRun(t, []string{"IPFS_API=" + online.APIAddr}, "--timeout", "3s", "inspect", never)
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("took %s with --timeout 3s", took)
		}
		if res.code != ExitIPFS || !strings.Contains(res.stderr, "--timeout") {
			t.Errorf("exit %d (want %d): %s", res.code, ExitIPFS, res.stderr)
		}
	})
	t.Run("not an IPFS-enabled image", func(t *testing.T) {
		for _, data := range [][]byte{rig.RandomBytes(5, 3000), []byte(`{"hello":"world"}`), []byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10}`)} {
			c := addBytes(t, r.k, data)
			res := mirrorRun(t, r.env, "pull", c, "oci:"+filepath.Join(t.TempDir(), "x"))
			if res.code != ExitIPFS || !strings.Contains(res.stderr, "not an IPFS-enabled image") {
				t.Errorf("exit %d (want %d): %s", res.code, ExitIPFS, res.stderr)
			}
		}
	})
	t.Run("corrupted blob", func(t *testing.T) {
		// A manifest whose layer URL points at other bytes of the same size.
		var top desc
		_ = json.Unmarshal([]byte(r.k.Run("cat", root)), &top)
		var m map[string]any
		_ = json.Unmarshal([]byte(r.k.Run("cat", strings.TrimPrefix(top.URLs[0], "ipfs://"))), &m)
		layer := m["layers"].([]any)[0].(map[string]any)
		other := addBytes(t, r.k, rig.RandomBytes(77, int(layer["size"].(float64))))
		layer["urls"] = []string{"ipfs://" + other}
		mb, _ := json.Marshal(m)
		mc := addBytes(t, r.k, mb)
		rootDesc, _ := json.Marshal(map[string]any{"mediaType": top.MediaType, "digest": fmt.Sprintf("sha256:%x", sha256.Sum256(mb)), "size": len(mb), "urls": []string{"ipfs://" + mc}})
		bad := addBytes(t, r.k, rootDesc)
		for _, dest := range []string{"oci:" + filepath.Join(t.TempDir(), "out"), "docker-archive:" + filepath.Join(t.TempDir(), "out.tar")} {
			res := mirrorRun(t, r.env, "pull", bad, dest)
			if res.code != ExitIntegrity || !strings.Contains(res.stderr, "digest mismatch") || !strings.Contains(res.stderr, other) {
				t.Errorf("%s: exit %d (want %d): %s", dest, res.code, ExitIntegrity, res.stderr)
			}
			path := strings.SplitN(dest, ":", 2)[1]
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("%s: destination written despite the mismatch (%v)", dest, err)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 0 {
				t.Errorf("%s: temporary files left: %v", dest, entries)
			}
		}
		// And to a registry: the tag never appears.
		res := mirrorRun(t, r.env, "pull", bad, r.reg.Host+"/test/corrupt:v1")
		if res.code != ExitIntegrity {
			t.Errorf("registry: exit %d (want %d): %s", res.code, ExitIntegrity, res.stderr)
		}
		if res := mirrorRun(t, r.env, "pull", r.reg.Host+"/test/corrupt:v1", "oci:x"); res.code == 0 {
			t.Errorf("registry tag exists after a failed pull")
		}
	})
	t.Run("malformed references", func(t *testing.T) {
		for _, args := range [][]string{
			{"push", "UPPER/Case::bad"},
			{"push", "oci:"},
			{"push", "ipfs://" + root},
			{"pull", "not-a-cid", "oci:x"},
			{"pull", "ipfs://" + root + "/../x", "oci:x"},
			{"pull", root, "Bad::Ref"},
			{"push", "--platform", "linux", src},
			{"pull"},
		} {
			res := mirrorRun(t, r.env, args...)
			if res.code != ExitUsage {
				t.Errorf("mirror %s: exit %d (want %d): %s", strings.Join(args, " "), res.code, ExitUsage, res.stderr)
			}
		}
	})
	t.Run("registry 404", func(t *testing.T) {
		res := mirrorRun(t, r.env, "push", r.reg.Host+"/test/nope:missing")
		if res.code != ExitFailure || !strings.Contains(res.stderr, "MANIFEST_UNKNOWN") {
			t.Errorf("exit %d (want %d): %s", res.code, ExitFailure, res.stderr)
		}
	})
	t.Run("registry 401", func(t *testing.T) {
		hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
		htpasswd := filepath.Join(t.TempDir(), "htpasswd")
		_ = os.WriteFile(htpasswd, []byte("user:"+string(hash)+"\n"), 0o600)
		authReg := rig.StartRegistry(t, rig.RegistryOptions{Htpasswd: htpasswd})
		env := append([]string{"DOCKER_CONFIG=" + t.TempDir()}, r.env...)
		res := mirrorRun(t, env, "push", authReg.Host+"/test/private:v1")
		if res.code != ExitFailure || !strings.Contains(res.stderr, "docker login") {
			t.Errorf("exit %d (want %d): %s", res.code, ExitFailure, res.stderr)
		}
		// With credentials in the docker config it gets past auth (and 404s).
		cfg := t.TempDir()
		auth := fmt.Sprintf(`{"auths":{%q:{"auth":"dXNlcjpzZWNyZXQ="}}}`, authReg.Host)
		_ = os.WriteFile(filepath.Join(cfg, "config.json"), []byte(auth), 0o600)
		res = mirrorRun(t, append([]string{"DOCKER_CONFIG=" + cfg}, r.env...), "push", authReg.Host+"/test/private:v1")
		if !strings.Contains(res.stderr, "MANIFEST_UNKNOWN") {
			t.Errorf("with credentials: exit %d: %s", res.code, res.stderr)
		}
	})
	t.Run("no IPFS API", func(t *testing.T) {
		port := rig.FreePort(t)
		res := mirrorRun(t, nil, "--ipfs-api", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), "push", src)
		if res.code != ExitIPFS || !strings.Contains(res.stderr, "ipfs daemon") {
			t.Errorf("exit %d (want %d): %s", res.code, ExitIPFS, res.stderr)
		}
	})
}

// swarmKey is a fixed private-network key for tests.
func swarmKey() string {
	return "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("3a", 32) + "\n"
}
