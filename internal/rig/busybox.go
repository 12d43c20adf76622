package rig

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is Debian's busybox-static (a static binary: runs in an
// image of its own).
const BusyboxPath = "/bin/busybox"

// busyboxApplets are the links the runnable image has to /bin/busybox.
var busyboxApplets = []string{"sh", "echo", "cat", "ls", "sleep", "true", "wget"}

// BusyboxImage builds a runnable single-layer OCI image for linux/amd64:
// /bin/busybox (Debian's busybox-static, MIRROR_BUSYBOX_BIN) with a few
// applet links, PATH=/bin, Cmd ["sh"]. It fails in CI and skips elsewhere
// when busybox-static is not installed.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	return busybox(t, false)
}

// BusyboxDockerImage is BusyboxImage with Docker's media types (schema 2
// manifest, config and layer), as Docker Hub serves most images.
func BusyboxDockerImage(t testing.TB) v1.Image {
	t.Helper()
	return busybox(t, true)
}

func busybox(t testing.TB, docker bool) v1.Image {
	t.Helper()
	path := os.Getenv("MIRROR_BUSYBOX_BIN")
	if path == "" {
		path = BusyboxPath
	}
	bb, err := os.ReadFile(path)
	if err != nil {
		if InCI() {
			t.Fatalf("busybox-static: %v (.ci/stack.sh installs it)", err)
		}
		t.Skipf("busybox-static not installed: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	hdrs := []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mtime},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb)), ModTime: mtime},
	}
	for _, h := range hdrs {
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bb); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz := Gzip(buf.Bytes())
	layerType, manifestType, configType := types.OCILayer, types.OCIManifestSchema1, types.OCIConfigJSON
	if docker {
		layerType, manifestType, configType = types.DockerLayer, types.DockerManifestSchema2, types.DockerConfigJSON
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil }, tarball.WithMediaType(layerType))
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, manifestType), configType)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: mtime}
	cf.Config.Env = []string{"PATH=/bin"}
	cf.Config.Cmd = []string{"sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// BusyboxIndex is BusyboxImage for linux/amd64 next to a small
// non-runnable linux/arm64 image (random data): a two-platform index.
func BusyboxIndex(t testing.TB, seed uint64) v1.ImageIndex {
	t.Helper()
	arm := Image(t, ImageSpec{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}, Layers: []v1.Layer{Layer(t, seed, 64<<10, false)}})
	return Index(t, false, BusyboxImage(t), arm)
}

// BusyboxDockerIndex is BusyboxIndex with Docker's media types at every
// level (a manifest list).
func BusyboxDockerIndex(t testing.TB, seed uint64) v1.ImageIndex {
	t.Helper()
	arm := Image(t, ImageSpec{Docker: true, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}, Layers: []v1.Layer{Layer(t, seed, 64<<10, true)}})
	return Index(t, true, BusyboxDockerImage(t), arm)
}
