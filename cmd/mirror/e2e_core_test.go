package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// desc is a descriptor as read by the test's own JSON decoding, not ours.
type desc struct {
	MediaType string           `json:"mediaType"`
	Digest    string           `json:"digest"`
	Size      int64            `json:"size"`
	URLs      []string         `json:"urls"`
	Platform  *json.RawMessage `json:"platform"`
}

// checkTree walks an IPFS-enabled image with the ipfs CLI alone: every
// descriptor at every level has an ipfs:// URL whose content hashes to its
// digest and size, whose CID `ipfs add --only-hash` derives from those
// bytes, and whose media type is OCI. It returns the blobs by digest.
func checkTree(t *testing.T, k *rig.Kubo, root string) map[string][]byte {
	t.Helper()
	rootBytes := []byte(k.Run("cat", root))
	if got := k.AddOnlyHash(rootBytes); got != root {
		t.Errorf("root CID %s, ipfs add --only-hash says %s", root, got)
	}
	var top desc
	if err := json.Unmarshal(rootBytes, &top); err != nil {
		t.Fatalf("root descriptor: %v: %s", err, rootBytes)
	}
	blobs := map[string][]byte{}
	var visit func(d desc, where string)
	visit = func(d desc, where string) {
		if len(d.URLs) != 1 || !strings.HasPrefix(d.URLs[0], "ipfs://") {
			t.Fatalf("%s %s: urls %v, want one ipfs:// URL", where, d.Digest, d.URLs)
		}
		if strings.Contains(d.MediaType, "docker") {
			t.Errorf("%s %s: Docker media type %s left", where, d.Digest, d.MediaType)
		}
		c := strings.TrimPrefix(d.URLs[0], "ipfs://")
		data := []byte(k.Run("cat", c))
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); got != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("%s: ipfs cat %s gives %s (%d bytes), descriptor says %s (%d)", where, c, got, len(data), d.Digest, d.Size)
		}
		if got := k.AddOnlyHash(data); got != c {
			t.Errorf("%s %s: URL CID %s, ipfs add --only-hash says %s", where, d.Digest, c, got)
		}
		blobs[d.Digest] = data
		var doc struct {
			Manifests []desc `json:"manifests"`
			Config    *desc  `json:"config"`
			Layers    []desc `json:"layers"`
		}
		if strings.Contains(d.MediaType, "index") || strings.Contains(d.MediaType, "manifest") {
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range doc.Manifests {
			visit(m, "index entry")
		}
		if doc.Config != nil {
			visit(*doc.Config, "config")
		}
		for _, l := range doc.Layers {
			visit(l, "layer")
		}
	}
	visit(top, "root target")
	return blobs
}

// sameBlobs checks that every source blob appears byte-identical in got.
func sameBlobs(t *testing.T, what string, src, got map[string][]byte) {
	t.Helper()
	var missing []string
	for d, b := range src {
		g, ok := got[d]
		if !ok {
			missing = append(missing, d)
			continue
		}
		if !bytes.Equal(b, g) {
			t.Errorf("%s: blob %s differs", what, d)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: %d source blobs missing: %v", what, len(missing), missing)
	}
}

type e2eRig struct {
	k   *rig.Kubo
	reg *rig.Registry
	env []string
}

func newRig(t *testing.T) *e2eRig {
	t.Helper()
	k := rig.StartKubo(t, rig.KuboOptions{})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	return &e2eRig{k: k, reg: reg, env: []string{"IPFS_API=" + k.APIAddr}}
}

func TestE2EMultiPlatformRoundTrip(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	idx := rig.MultiPlatform(t, 100, 600<<10)
	src := r.reg.Host + "/test/multi:v1"
	rig.Push(t, src, idx)
	srcBlobs := rig.SourceBlobs(t, idx)

	res := mustRun(t, r.env, "push", src)
	root := res.lastLine()
	if !strings.HasPrefix(root, "bafkrei") {
		t.Fatalf("root CID %q: want a raw CIDv1 (bafkrei…)", root)
	}
	ipfsBlobs := checkTree(t, r.k, root)
	sameBlobs(t, "ipfs", srcBlobs, ipfsBlobs)
	// 3 platforms × (config + 3 layers), one layer shared: 3 + 7 layers.
	if n := len(srcBlobs); n != 10 {
		t.Fatalf("source has %d distinct blobs, want 10", n)
	}

	// A second push of the same image gives the same root CID.
	if again := mustRun(t, r.env, "push", src).lastLine(); again != root {
		t.Errorf("second push: %s, first %s", again, root)
	}

	t.Run("oci", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		mustRun(t, r.env, "pull", "ipfs://"+root, "oci:"+dir+":v1")
		got := rig.LayoutBlobs(t, dir)
		sameBlobs(t, "oci", srcBlobs, got)
		sameBlobs(t, "skopeo copy of oci", srcBlobs, rig.DirBlobs(t, rig.SkopeoReads(t, "oci:"+dir+":v1")))
		// The layout holds the IPFS-enabled tree as is (--urls keep).
		sameBlobs(t, "oci vs ipfs", ipfsBlobs, got)
	})
	t.Run("docker-archive", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "img.tar")
		mustRun(t, r.env, "pull", "--platform", "linux/arm64", root, "docker-archive:"+file+":example.com/multi:arm64")
		rig.SkopeoReads(t, "docker-archive:"+file)
		img, err := tarball.ImageFromPath(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != "arm64" {
			t.Errorf("archive holds %s, want arm64", cf.Architecture)
		}
		got := rig.SourceBlobs(t, img)
		for d, b := range got {
			if !bytes.Equal(srcBlobs[d], b) {
				t.Errorf("archive blob %s differs from the source", d)
			}
		}
		if len(got) != 4 {
			t.Errorf("archive has %d blobs, want 4", len(got))
		}
	})
	t.Run("registry", func(t *testing.T) {
		dst := r.reg.Host + "/back/multi:ipfs"
		mustRun(t, r.env, "pull", root, dst)
		rig.SkopeoReads(t, "docker://"+dst)
		ref, _ := name.ParseReference(dst)
		back, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		sameBlobs(t, "registry", srcBlobs, rig.SourceBlobs(t, back))
	})
	t.Run("platform", func(t *testing.T) {
		res := mustRun(t, r.env, "push", "--platform", "linux/arm/v7", src)
		blobs := checkTree(t, r.k, res.lastLine())
		// index + manifest + config + 3 layers
		if len(blobs) != 6 {
			t.Errorf("--platform linux/arm/v7 kept %d blobs, want 6", len(blobs))
		}
	})
	t.Run("inspect", func(t *testing.T) {
		out := mustRun(t, r.env, "inspect", "ipfs://"+root).stdout
		for _, want := range []string{"ipfs://" + root, "linux/arm64", "linux/arm/v7", "application/vnd.oci.image.layer.v1.tar+gzip"} {
			if !strings.Contains(out, want) {
				t.Errorf("inspect output lacks %q:\n%s", want, out)
			}
		}
		var js struct {
			Root string `json:"root"`
			Tree struct {
				Children []json.RawMessage `json:"children"`
			} `json:"tree"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, r.env, "--json", "inspect", root).stdout), &js); err != nil {
			t.Fatal(err)
		}
		if js.Root != root || len(js.Tree.Children) != 3 {
			t.Errorf("inspect --json: root %s, %d children", js.Root, len(js.Tree.Children))
		}
	})
}

func TestE2ESingleManifestAndDockerTypes(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	for _, docker := range []bool{false, true} {
		t.Run(fmt.Sprintf("docker=%v", docker), func(t *testing.T) {
			img := rig.Image(t, rig.ImageSpec{Docker: docker, Layers: []v1.Layer{rig.Layer(t, 7, 300<<10, docker), rig.Layer(t, 8, 1000, docker)}})
			src := fmt.Sprintf("%s/test/single:docker-%v", r.reg.Host, docker)
			rig.Push(t, src, img)
			root := mustRun(t, r.env, "push", "docker://"+src).lastLine()
			blobs := checkTree(t, r.k, root)
			sameBlobs(t, "ipfs", rig.SourceBlobs(t, img), blobs)
			var top desc
			_ = json.Unmarshal([]byte(r.k.Run("cat", root)), &top)
			if top.MediaType != "application/vnd.oci.image.manifest.v1+json" {
				t.Errorf("root target media type %s, want the OCI manifest", top.MediaType)
			}
			dir := filepath.Join(t.TempDir(), "oci")
			mustRun(t, r.env, "pull", root, "oci:"+dir)
			sameBlobs(t, "oci", rig.SourceBlobs(t, img), rig.LayoutBlobs(t, dir))
			sameBlobs(t, "skopeo copy of oci", rig.SourceBlobs(t, img), rig.DirBlobs(t, rig.SkopeoReads(t, "oci:"+dir)))
			dst := r.reg.Host + "/back/single:ipfs"
			mustRun(t, r.env, "pull", root, dst)
			rig.SkopeoReads(t, "docker://"+dst)
			ref, _ := name.ParseReference(dst)
			back, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			sameBlobs(t, "registry", rig.SourceBlobs(t, img), rig.SourceBlobs(t, back))
		})
	}
}

func TestE2ELayoutAndArchiveSources(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	idx := rig.MultiPlatform(t, 300, 100<<10)
	dir := filepath.Join(t.TempDir(), "layout")
	rig.WriteLayout(t, dir, idx, "v2")
	fromLayout := mustRun(t, r.env, "push", "oci:"+dir+":v2").lastLine()
	sameBlobs(t, "oci source", rig.SourceBlobs(t, idx), checkTree(t, r.k, fromLayout))

	// The same index through a registry gives the same root CID.
	src := r.reg.Host + "/test/same:v2"
	rig.Push(t, src, idx)
	if fromReg := mustRun(t, r.env, "push", src).lastLine(); fromReg != fromLayout {
		t.Errorf("same image: %s from the registry, %s from the layout", fromReg, fromLayout)
	}
	// Unnamed layout with one image.
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 9, 50<<10, false)}})
	single := filepath.Join(t.TempDir(), "single")
	rig.WriteLayout(t, single, img, "")
	mustRun(t, r.env, "push", "oci:"+single)

	archive := filepath.Join(t.TempDir(), "save.tar")
	dimg := rig.Image(t, rig.ImageSpec{Docker: true, Layers: []v1.Layer{rig.Layer(t, 11, 200<<10, true)}})
	rig.WriteArchive(t, archive, "example.com/saved:1", dimg)
	root := mustRun(t, r.env, "push", "docker-archive:"+archive).lastLine()
	got := checkTree(t, r.k, root)
	sameBlobs(t, "docker-archive source", rig.SourceBlobs(t, dimg), got)

	// Layout errors are clear.
	rig.WriteLayout(t, filepath.Join(t.TempDir(), "x"), idx, "")
	bad := mirrorRun(t, r.env, "push", "oci:"+dir+":nope")
	if bad.code != ExitFailure || !strings.Contains(bad.stderr, `no image named "nope"`) {
		t.Errorf("unknown layout tag: exit %d, %s", bad.code, bad.stderr)
	}
}
