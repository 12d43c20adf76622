package main

// End-to-end tests against the real container stack (issue 12): eStargz
// lazy pulling through stargz-snapshotter, image encryption both ways
// with nerdctl, and a BuildKit build FROM an image `mirror serve` serves.
// Each asserts on what the upstream tool does with mirror's output (or on
// what mirror does with the upstream tool's). They need root, containerd,
// nerdctl, runc, BuildKit and our stargz snapshotter (.ci/stack.sh).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/ipfs-mirror/mirror/convert"
	"github.com/ipfs-mirror/mirror/internal/rig"
)

// sgzLoad loads an image or index into containerd with `nerdctl load
// --all-platforms` from an OCI archive, named name (a full reference).
func sgzLoad(t *testing.T, c *rig.Containerd, node any, name string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	writeAnnotatedLayout(t, dir, node, map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name})
	archive := filepath.Join(t.TempDir(), "image.tar")
	tarDir(t, dir, archive)
	c.Nerdctl(t, "load", "--all-platforms", "-i", archive)
}

// sgzContent checks that every blob of an OCI layout is byte-identical to
// containerd's content of that digest (`ctr content get`).
func sgzContent(t *testing.T, c *rig.Containerd, dir string) {
	t.Helper()
	blobs := rig.LayoutBlobs(t, dir)
	if len(blobs) == 0 {
		t.Fatalf("%s: no blobs", dir)
	}
	for d, b := range blobs {
		if got, ok := c.Content(t, d); !ok {
			t.Errorf("blob %s: not in containerd's content store", d)
		} else if !bytes.Equal(got, b) {
			t.Errorf("blob %s: %d bytes in the layout, containerd has %d other bytes", d, len(b), len(got))
		}
	}
}

// sgzDirBlobs returns the blobs of a skopeo dir: directory (named by the
// digest's hex), keyed sha256:HEX.
func sgzDirBlobs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if n := d.Name(); len(n) == 64 && strings.Trim(n, "0123456789abcdef") == "" {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out["sha256:"+n] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sgzLayers maps the layer digests of an image or index to their bytes.
func sgzLayers(t *testing.T, node any) map[string][]byte {
	t.Helper()
	var imgs []v1.Image
	switch n := node.(type) {
	case v1.Image:
		imgs = append(imgs, n)
	case v1.ImageIndex:
		im, err := n.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			img, err := n.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
	}
	out := map[string][]byte{}
	for _, img := range imgs {
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			d, _ := l.Digest()
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[d.String()] = b
		}
	}
	return out
}

// sgzSnapshots returns the stargz snapshotter's snapshots (`ctr snapshot
// --snapshotter stargz info` of each), with their labels.
func sgzSnapshots(t *testing.T, c *rig.Containerd) []map[string]any {
	t.Helper()
	var out []map[string]any
	lines := strings.Split(strings.TrimSpace(string(c.Ctr(t, "snapshot", "--snapshotter", rig.StargzPlugin, "ls"))), "\n")
	for _, l := range lines[1:] { // KEY PARENT KIND
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		var info map[string]any
		if err := json.Unmarshal(c.Ctr(t, "snapshot", "--snapshotter", rig.StargzPlugin, "info", f[0]), &info); err != nil {
			t.Fatal(err)
		}
		out = append(out, info)
	}
	return out
}

// sgzNoGC defers containerd's garbage collection by an hour (past any
// test): no deletion schedules one before the startup collection.
const sgzNoGC = `[plugins."io.containerd.gc.v1.scheduler"]
  startup_delay = "1h"
  schedule_delay = "1h"`

// TestE2EStackStargz: `mirror push --mode estargz` of a runnable image is
// run by nerdctl with the stargz snapshotter, lazily (a remote snapshot,
// FUSE-mounted, read from IPFS by the snapshotter's ipfs handler); and an
// image that `nerdctl push --estargz ipfs://` pushed is pulled by mirror
// byte-identical to containerd's content, and read by skopeo.
func TestE2EStackStargz(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	sg := rig.StartStargzProc(t, k.APIAddr)
	c := rig.StartContainerd(t, rig.ContainerdOptions{
		ProxyPlugins: map[string]string{rig.StargzPlugin: sg.Socket},
		Snapshotter:  rig.StargzPlugin,
		IPFSAddress:  k.APIAddr,
		// `nerdctl push --estargz` converts under a lease that ends with
		// the push; containerd's garbage collector then removes the
		// converted blobs within a second. No collection during the test,
		// so that they can be compared with what mirror pulls.
		ExtraConfig: sgzNoGC,
	})
	img := rig.BusyboxImage(t)

	t.Run("mirror push --mode estargz, nerdctl run lazily", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "src")
		rig.WriteLayout(t, src, img, "v1")
		root := mustRun(t, env, "push", "--mode", "estargz", "oci:"+src+":v1").lastLine()

		out := c.Nerdctl(t, "run", "--rm", "--net", "none", "ipfs://"+root, "echo", "hello from a lazy eStargz image")
		if strings.TrimSpace(out) != "hello from a lazy eStargz image" {
			t.Fatalf("nerdctl run printed %q", out)
		}
		// The layer is a remote snapshot: the snapshotter labels it so
		// and FUSE-mounts it; its contents came through the ipfs handler.
		remote := 0
		snaps := sgzSnapshots(t, c)
		for _, s := range snaps {
			labels, _ := s["Labels"].(map[string]any)
			if labels["containerd.io/snapshot/remote"] != nil && labels["containerd.io/snapshot/remote/urls"] != nil {
				remote++
				// Lazy: containerd never fetched the layer blob.
				if d, _ := labels["containerd.io/snapshot/cri.layer-digest"].(string); d == "" {
					t.Errorf("remote snapshot without a layer digest label: %+v", labels)
				} else if _, ok := c.Content(t, d); ok {
					t.Errorf("layer %s is in containerd's content store: it was downloaded, not mounted lazily", d)
				}
			}
		}
		if remote != 1 {
			t.Errorf("%d snapshots labelled containerd.io/snapshot/remote with ipfs urls, want 1 (the layer): %+v", remote, snaps)
		}
		t.Logf("snapshots: %+v", snaps)
		if m := sg.FuseMounts(); len(m) == 0 {
			t.Errorf("no FUSE mount under %s", sg.Root)
		} else {
			t.Logf("FUSE mounts: %q", m)
		}
		if !strings.Contains(sg.Log(), `"handler name":"ipfs"`) {
			t.Errorf("the snapshotter's log does not show the ipfs handler serving a layer")
		}
	})

	t.Run("nerdctl push --estargz ipfs://, mirror pull", func(t *testing.T) {
		sgzLoad(t, c, img, "docker.io/library/busybox-esgz:1")
		cid := lastWord(c.Nerdctl(t, "push", "--estargz", "ipfs://docker.io/library/busybox-esgz:1"))
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, env, "pull", "ipfs://"+cid, "oci:"+out+":t")
		sgzContent(t, c, out)
		// nerdctl converted the layer to eStargz (the annotations the
		// snapshotter reads are there) and mirror kept them.
		// nerdctl's layer is the one convert.ToEstargz builds with the
		// parallelism nerdctl used: its GOMAXPROCS (the estargz library's
		// default, not an option of nerdctl's). mirror's fixed default (4)
		// matches it on 4-CPU machines only.
		mine, err := convert.ToEstargz(context.Background(), img, convert.EstargzOptions{Parallelism: runtime.GOMAXPROCS(0)})
		if err != nil {
			t.Fatal(err)
		}
		defer convert.Close(mine)
		mineLayers, err := mine.Layers()
		if err != nil {
			t.Fatal(err)
		}
		want, err := mineLayers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layoutLayers(t, out) {
			d, _ := l.Digest()
			if d != want {
				t.Errorf("nerdctl's eStargz layer %s, convert.ToEstargz with parallelism %d: %s", d, runtime.GOMAXPROCS(0), want)
			}
			desc, err := partial.Descriptor(l)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Annotations["containerd.io/snapshot/stargz/toc.digest"] == "" || len(desc.URLs) != 1 || !strings.HasPrefix(desc.URLs[0], "ipfs://") {
				t.Errorf("layer %s: %+v, want an eStargz layer with an ipfs:// url", d, desc)
			}
		}
		skopeo(t, "inspect", "oci:"+out+":t")
		skopeo(t, "copy", "oci:"+out+":t", "dir:"+filepath.Join(t.TempDir(), "dir"))
	})
}

// TestE2EStackEncryption: images nerdctl encrypted and pushed to IPFS are
// decrypted by `mirror pull --key` into a layout skopeo reads, with the
// original layers; images `mirror push --mode encrypted` wrote are pulled,
// decrypted and run by nerdctl. Single- and multi-platform.
func TestE2EStackEncryption(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	c := rig.StartContainerd(t, rig.ContainerdOptions{IPFSAddress: k.APIAddr})
	pub, priv := rsaKeys(t, t.TempDir(), "enc")
	single := rig.BusyboxImage(t)
	multi := rig.BusyboxIndex(t, 1200)

	for _, tc := range []struct {
		name string
		node any
		all  []string // nerdctl's platform flag
	}{
		{"single-platform", single, nil},
		{"multi-platform", multi, []string{"--all-platforms"}},
	} {
		t.Run("nerdctl image encrypt + push ipfs://, mirror pull --key, "+tc.name, func(t *testing.T) {
			name := "docker.io/library/enc-" + tc.name + ":1"
			sgzLoad(t, c, tc.node, name)
			c.Nerdctl(t, append(append([]string{"image", "encrypt", "--recipient", "jwe:" + pub}, tc.all...), name, name+"-enc")...)
			cid := lastWord(c.Nerdctl(t, append(append([]string{"push"}, tc.all...), "ipfs://"+name+"-enc")...))

			out := filepath.Join(t.TempDir(), "out")
			mustRun(t, env, "pull", "--key", priv, "ipfs://"+cid, "oci:"+out+":t")
			if b, err := os.ReadFile(filepath.Join(out, "index.json")); err == nil {
				t.Logf("index.json: %s", b)
			}
			skopeo(t, "inspect", "oci:"+out+":t")
			dir := filepath.Join(t.TempDir(), "dir")
			skopeo(t, "copy", "--all", "oci:"+out+":t", "dir:"+dir)
			// The decrypted layers are the originals, byte for byte.
			sameBlobs(t, "decrypted layers (skopeo dir:)", sgzLayers(t, tc.node), sgzDirBlobs(t, dir))
		})

		t.Run("mirror push --mode encrypted, nerdctl pull + image decrypt + run, "+tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			rig.WriteLayout(t, src, tc.node, "v1")
			root := mustRun(t, env, "push", "--mode", "encrypted", "--recipient", "jwe:"+pub, "oci:"+src+":v1").lastLine()
			// A containerd namespace of its own: snapshots are keyed by the
			// chain of diff IDs, which encryption does not change, so where
			// the plaintext image was unpacked an encrypted one would "run"
			// on the plaintext's snapshots without being decrypted.
			cm := *c
			cm.Namespace = "from-mirror-" + tc.name
			cm.Nerdctl(t, append(append([]string{"pull", "--unpack=false"}, tc.all...), "ipfs://"+root)...)
			// Without the key, the encrypted image does not run.
			// (containerd has no imgcrypt stream processor here: applying an
			// +encrypted layer fails.)
			if _, errOut, err := cm.NerdctlErr("run", "--rm", "--net", "none", "ipfs://"+root, "echo", "no"); err == nil {
				t.Errorf("nerdctl ran the encrypted image without a key")
			} else if !strings.Contains(errOut, "+encrypted") {
				t.Errorf("run without a key failed, but not on the encrypted layer: %s", errOut)
			}
			dec := "docker.io/library/dec-" + tc.name + ":1"
			cm.Nerdctl(t, append(append([]string{"image", "decrypt", "--key", priv}, tc.all...), "ipfs://"+root, dec)...)
			out := cm.Nerdctl(t, "run", "--rm", "--net", "none", dec, "echo", "decrypted by nerdctl")
			if strings.TrimSpace(out) != "decrypted by nerdctl" {
				t.Fatalf("nerdctl run printed %q", out)
			}
		})
	}
}

// TestE2EStackBuildFromServe: `nerdctl build` of a Dockerfile FROM
// 127.0.0.1:PORT/ipfs/CID, with `mirror serve` on that port and BuildKit's
// containerd worker, builds an image that runs.
func TestE2EStackBuildFromServe(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	k := rig.StartKubo(t, rig.KuboOptions{})
	env := []string{"IPFS_API=" + k.APIAddr}
	c := rig.StartContainerd(t, rig.ContainerdOptions{IPFSAddress: k.APIAddr})
	bk := rig.StartBuildkitd(t, c)

	img := rig.BusyboxImage(t)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := layers[0].Digest()
	src := filepath.Join(t.TempDir(), "src")
	rig.WriteLayout(t, src, img, "v1")
	root := mustRun(t, env, "push", "oci:"+src+":v1").lastLine()
	p := startServe(t, env)

	ctxDir := t.TempDir()
	dockerfile := "FROM " + p.host + "/ipfs/" + root + "\nRUN echo built > /x\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Nerdctl(t, "build", "--buildkit-host", bk, "-t", "docker.io/library/built:1", ctxDir)
	out := c.Nerdctl(t, "run", "--rm", "--net", "none", "docker.io/library/built:1", "cat", "/x")
	if strings.TrimSpace(out) != "built" {
		t.Fatalf("the built image printed %q", out)
	}
	// The base came from mirror serve: BuildKit fetched its layer there
	// (plain HTTP: BuildKit treats 127.0.0.1 as an insecure registry).
	blob := regexp.MustCompile(`path=/v2/ipfs/` + root + `/blobs/` + layer.String() + ` status=200 .*user_agent=buildkit/`)
	if !blob.MatchString(p.stderr()) {
		t.Errorf("mirror serve did not serve the base layer to BuildKit:\n%s", p.stderr())
	}
}
