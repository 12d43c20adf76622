package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// The real container stack (issue 12): containerd v2 and nerdctl v2 (built
// by .ci/stack.sh), Debian's runc, a real kubo. Each test asserts on what
// the upstream tool does with mirror's output, or on what mirror does with
// the upstream tool's.

// stackRig is kubo, a registry and a containerd whose nerdctl uses that
// kubo for ipfs://.
type stackRig struct {
	*e2eRig
	c *rig.Containerd
}

func newStackRig(t *testing.T) *stackRig {
	t.Helper()
	r := newRig(t)
	c := rig.StartContainerd(t, rig.ContainerdOptions{IPFSAddress: r.k.APIAddr})
	// The rig's registry speaks plain HTTP: tell containerd so.
	c.HostsTOML(t, r.reg.Host, fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", r.reg.Host, r.reg.Host))
	return &stackRig{e2eRig: r, c: c}
}

// deadline bounds a stack test (the tools' own calls are bounded too).
func deadline(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() {
		panic(fmt.Sprintf("%s: still running after %s", t.Name(), d))
	})
	t.Cleanup(func() { timer.Stop() })
}

// lastWord is the last non-empty line of nerdctl push's stdout: the CID.
func lastWord(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestE2EStackRunMirrorImage: `mirror push` of a runnable busybox image
// (single image, and a two-platform index) → `nerdctl pull ipfs://CID`
// and `nerdctl run --rm --net none ipfs://CID echo …` prints the text.
func TestE2EStackRunMirrorImage(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	for _, tc := range []struct {
		name string
		node any
	}{
		{"image", rig.BusyboxImage(t)},
		{"index", rig.BusyboxIndex(t, 1200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			rig.WriteLayout(t, dir, tc.node, "v1")
			root := mustRun(t, s.env, "push", "oci:"+dir+":v1").lastLine()
			s.c.Nerdctl(t, "pull", "--quiet", "ipfs://"+root)
			out := s.c.Nerdctl(t, "run", "--rm", "--net", "none", "ipfs://"+root, "echo", "hello-from-ipfs")
			if strings.TrimSpace(out) != "hello-from-ipfs" {
				t.Errorf("nerdctl run ipfs://%s printed %q", root, out)
			}
			// containerd holds exactly the layers mirror pushed.
			want := rig.SourceBlobs(t, tc.node)
			for d, b := range want {
				got, ok := s.c.Content(t, d)
				if !ok {
					// nerdctl pull fetches the host platform only.
					if img, isIdx := tc.node.(v1.ImageIndex); isIdx && !hostBlob(t, img, d) {
						continue
					}
					t.Errorf("containerd lacks %s", d)
				} else if !bytes.Equal(got, b) {
					t.Errorf("containerd's %s is not the blob mirror pushed", d)
				}
			}
		})
	}
}

// TestE2EStackMirrorPullToContainerd: what `mirror pull` writes from an
// IPFS-enabled image — an OCI layout (as an OCI archive), a docker-archive
// file, a registry copy — and what `mirror serve` serves by CID (as is
// and url-free) is loaded or pulled by nerdctl, and runs.
func TestE2EStackMirrorPullToContainerd(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	dir := filepath.Join(t.TempDir(), "layout")
	rig.WriteLayout(t, dir, rig.BusyboxIndex(t, 1600), "1.0")
	root := mustRun(t, s.env, "push", "oci:"+dir+":1.0").lastLine()
	run := func(t *testing.T, ref, text string) {
		t.Helper()
		out := s.c.Nerdctl(t, "run", "--rm", "--net", "none", ref, "echo", text)
		if strings.TrimSpace(out) != text {
			t.Errorf("nerdctl run %s printed %q", ref, out)
		}
	}
	t.Run("oci-archive", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "oci")
		mustRun(t, s.env, "pull", "ipfs://"+root, "oci:"+out+":1.0")
		archive := filepath.Join(t.TempDir(), "oci.tar")
		tarDir(t, out, archive)
		// mirror names the layout's image by its tag (ref.name "1.0", as
		// skopeo does); nerdctl load keeps that as the image's name, and
		// nerdctl's commands then read "1.0" as docker.io/library/1.0:latest
		// and cannot find it: run it by its ID, the index digest.
		loaded := s.c.Nerdctl(t, "load", "-i", archive)
		if name := loadedName(t, loaded); name != "1.0:latest" {
			t.Errorf("nerdctl load named the image %q", name)
		}
		var index struct {
			Manifests []desc `json:"manifests"`
		}
		mustUnmarshal(t, readFile(t, filepath.Join(out, "index.json")), &index)
		if len(index.Manifests) != 1 {
			t.Fatalf("index.json: %+v", index)
		}
		run(t, index.Manifests[0].Digest, "hello-from-oci-archive")
	})
	t.Run("docker-archive", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "img.tar")
		mustRun(t, s.env, "pull", "ipfs://"+root, "docker-archive:"+file+":example.com/bb:archive")
		s.c.Nerdctl(t, "load", "-i", file)
		run(t, "example.com/bb:archive", "hello-from-docker-archive")
	})
	t.Run("serve", func(t *testing.T) {
		// containerd pulls by CID from mirror serve, both views.
		p := startServe(t, s.env)
		for _, view := range []string{"ipfs", "ipfs-nourls"} {
			ref := p.host + "/" + view + "/" + root
			s.c.Nerdctl(t, "pull", "--quiet", ref)
			run(t, ref, "hello-from-"+view)
		}
	})
	t.Run("registry", func(t *testing.T) {
		dst := s.reg.Host + "/back/bb:1.0"
		mustRun(t, s.env, "pull", "ipfs://"+root, dst)
		s.c.Nerdctl(t, "pull", "--quiet", dst)
		run(t, dst, "hello-from-registry-copy")
	})
}

// loadedName is the image name in `nerdctl load`'s "Loaded image: NAME".
func loadedName(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "Loaded image: "); ok {
			return strings.TrimSpace(n)
		}
	}
	t.Fatalf("nerdctl load printed no image name:\n%s", out)
	return ""
}

// hostBlob reports whether digest d belongs to idx's linux/amd64 image.
func hostBlob(t *testing.T, idx v1.ImageIndex, d string) bool {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.Architecture != "amd64" {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := rig.SourceBlobs(t, img)[d]
		return ok
	}
	return false
}

// TestE2EStackNerdctlPushMirrorPull: `nerdctl push [--all-platforms]
// ipfs://IMG` of an image containerd pulled from a registry → `mirror
// pull ipfs://CID oci:DIR` is byte-identical to containerd's content and
// to what nerdctl put in IPFS, skopeo reads the layout; `mirror serve`
// serves nerdctl's CID to crane and skopeo; and `mirror push` of the same
// registry image gives nerdctl's root CID, with all platforms and with
// the host platform only.
func TestE2EStackNerdctlPushMirrorPull(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	skopeoBin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	crane := craneBin(t)
	for _, source := range []struct {
		name string
		idx  v1.ImageIndex
	}{
		{"oci", rig.BusyboxIndex(t, 1300)},
		{"docker", rig.BusyboxDockerIndex(t, 1310)},
	} {
		src := s.reg.Host + "/test/bb-" + source.name + ":1.0"
		rig.Push(t, src, source.idx)
		s.c.Nerdctl(t, "pull", "--quiet", "--all-platforms", src)
		t.Run(source.name, func(t *testing.T) { nerdctlPushMirrorPull(t, s, src, skopeoBin, crane) })
	}
}

func nerdctlPushMirrorPull(t *testing.T, s *stackRig, src, skopeoBin, crane string) {
	for _, tc := range []struct {
		name      string
		nerdctl   []string
		mirror    []string
		platforms int
	}{
		{"all-platforms", []string{"push", "--all-platforms"}, []string{"push"}, 2},
		{"host-platform", []string{"push"}, []string{"push", "--platform", "linux/amd64"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := lastWord(s.c.Nerdctl(t, append(tc.nerdctl, "ipfs://"+src)...))
			if !strings.HasPrefix(root, "bafk") {
				t.Fatalf("nerdctl push printed %q, want a CID", root)
			}
			ipfsBlobs := checkTree(t, s.k, root)

			// The same image through mirror: the same root CID.
			if got := mustRun(t, s.env, append(tc.mirror, src)...).lastLine(); got != root {
				t.Errorf("mirror %s %s: %s; nerdctl push: %s", strings.Join(tc.mirror, " "), src, got, root)
			}

			dir := filepath.Join(t.TempDir(), "oci")
			mustRun(t, s.env, "pull", "ipfs://"+root, "oci:"+dir+":1.0")
			got := rig.LayoutBlobs(t, dir)
			sameBlobs(t, "mirror pull vs nerdctl's IPFS tree", ipfsBlobs, got)
			if len(got) != len(ipfsBlobs) {
				t.Errorf("mirror pull wrote %d blobs, nerdctl's tree has %d", len(got), len(ipfsBlobs))
			}
			// Every config and layer is containerd's, byte for byte
			// (nerdctl converts the index and manifests on the way to
			// IPFS and keeps them nowhere else: those are checked
			// against IPFS above).
			want := rig.SourceBlobs(t, idxOrImage(t, dir))
			if len(want) == 0 {
				t.Fatal("the layout has no config or layer")
			}
			for d, b := range want {
				if c, ok := s.c.Content(t, d); !ok || !bytes.Equal(c, b) {
					t.Errorf("blob %s: mirror pull wrote %d bytes; containerd has it: %v, %d bytes", d, len(b), ok, len(c))
				}
			}
			platforms := countPlatforms(t, dir)
			if platforms != tc.platforms {
				t.Errorf("layout has %d platforms, want %d", platforms, tc.platforms)
			}
			// A client we did not write reads the layout.
			runTool(t, skopeoBin, "--insecure-policy", "inspect", "--raw", "oci:"+dir+":1.0")
			runTool(t, skopeoBin, "--insecure-policy", "copy", "oci:"+dir+":1.0", "dir:"+filepath.Join(t.TempDir(), "dir"))

			// mirror serve serves nerdctl's CID: crane and skopeo get
			// every config and layer.
			p := startServe(t, s.env)
			out := filepath.Join(t.TempDir(), "crane")
			runTool(t, crane, "pull", "--format=oci", p.host+"/ipfs/"+root, out)
			sameBlobs(t, "crane pull from mirror serve", want, rig.LayoutBlobs(t, out))
			runTool(t, crane, "validate", "--remote", p.host+"/ipfs/"+root)
			out = filepath.Join(t.TempDir(), "skopeo")
			runTool(t, skopeoBin, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://"+p.host+"/ipfs-nourls/"+root, "oci:"+out+":latest")
			sameBlobs(t, "skopeo copy from mirror serve", want, rig.LayoutBlobs(t, out))
		})
	}
}

// idxOrImage reads the one image or index of a layout crane wrote.
func idxOrImage(t *testing.T, dir string) any {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("crane layout: %v, %d entries", err, len(im.Manifests))
	}
	if im.Manifests[0].MediaType.IsIndex() {
		child, err := idx.ImageIndex(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		return child
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// countPlatforms counts the manifests of a layout's one image (1 for a
// single manifest).
func countPlatforms(t *testing.T, dir string) int {
	t.Helper()
	switch n := idxOrImage(t, dir).(type) {
	case v1.ImageIndex:
		im, err := n.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		return len(im.Manifests)
	default:
		return 1
	}
}

// TestE2EStackNerdctlLoadedLayout pins the one documented difference: a
// layout that `nerdctl load` took from an OCI archive keeps its index.json
// entry's annotations, and `nerdctl push --all-platforms ipfs://` writes
// them into the root descriptor; `mirror push oci:DIR:TAG` writes none (a
// layout and a registry copy of one image get one CID). The two root
// descriptors differ by their annotations field alone.
func TestE2EStackNerdctlLoadedLayout(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	idx := rig.BusyboxIndex(t, 1400)
	dir := filepath.Join(t.TempDir(), "layout")
	annotations := map[string]string{
		"org.opencontainers.image.ref.name": "1.0",
		"io.containerd.image.name":          "docker.io/library/loaded:1.0",
	}
	writeAnnotatedLayout(t, dir, idx, annotations)
	archive := filepath.Join(t.TempDir(), "oci.tar")
	tarDir(t, dir, archive)
	s.c.Nerdctl(t, "load", "--all-platforms", "-i", archive)

	nroot := lastWord(s.c.Nerdctl(t, "push", "--all-platforms", "ipfs://docker.io/library/loaded:1.0"))
	mroot := mustRun(t, s.env, "push", "oci:"+dir+":1.0").lastLine()
	var n, m map[string]json.RawMessage
	mustUnmarshal(t, s.k.Run("cat", nroot), &n)
	mustUnmarshal(t, s.k.Run("cat", mroot), &m)
	var nAnn map[string]string
	if raw, ok := n["annotations"]; ok {
		mustUnmarshal(t, string(raw), &nAnn)
	}
	if _, ok := m["annotations"]; ok {
		t.Errorf("mirror's root descriptor has annotations: %s", s.k.Run("cat", mroot))
	}
	if nAnn["org.opencontainers.image.ref.name"] != "1.0" {
		t.Errorf("nerdctl's root descriptor lacks the loaded ref.name: %s", s.k.Run("cat", nroot))
	}
	delete(n, "annotations")
	for k, v := range m {
		if !bytes.Equal(n[k], v) {
			t.Errorf("root descriptors differ in %q beyond annotations: nerdctl %s, mirror %s", k, n[k], v)
		}
	}
	if len(n) != len(m) {
		t.Errorf("root descriptors have other fields: nerdctl %v, mirror %v", keys(n), keys(m))
	}
	if nroot == mroot {
		t.Errorf("root CIDs equal (%s): the annotations rule changed; update docs/format.md", nroot)
	}
	// The same index CID under both roots.
	var nd, md desc
	mustUnmarshal(t, s.k.Run("cat", nroot), &nd)
	mustUnmarshal(t, s.k.Run("cat", mroot), &md)
	if len(nd.URLs) != 1 || len(md.URLs) != 1 || nd.URLs[0] != md.URLs[0] {
		t.Errorf("index URLs: nerdctl %v, mirror %v", nd.URLs, md.URLs)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// writeAnnotatedLayout writes node to a new OCI layout whose index.json
// entry carries annotations (as `nerdctl save` writes them).
func writeAnnotatedLayout(t *testing.T, dir string, node any, ann map[string]string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	switch n := node.(type) {
	case v1.Image:
		err = p.AppendImage(n, layout.WithAnnotations(ann))
	case v1.ImageIndex:
		err = p.AppendIndex(n, layout.WithAnnotations(ann))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// tarDir writes dir as a tar archive (an OCI archive for a layout).
func tarDir(t *testing.T, dir, archive string) {
	t.Helper()
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		r, err := os.Open(p)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(tw, r)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestE2EStackDockerHubMirror: containerd uses `mirror serve --lock` as its
// docker.io mirror through hosts.toml; `nerdctl pull
// docker.io/library/NAME:TAG` and `nerdctl run` are answered by mirror
// serve (its log shows the requests), and the upstream `server` is a
// closed port on 127.0.0.1, so any fallback fails loudly.
//
// The lockfile is `mirror sync`'s, of a list whose source is
// docker.io/library/NAME: sync reaches "Docker Hub" through HTTPS_PROXY,
// a proxy that sends only Docker Hub's hosts to a TLS registry on
// 127.0.0.1 (self-signed: --insecure). containerd and nerdctl never see
// that proxy.
func TestE2EStackDockerHubMirror(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	hub := rig.StartFakeHub(t)
	idx := rig.BusyboxIndex(t, 1500)
	hub.Push(t, "docker.io/library/bbmirror:1.0", idx)
	dir := t.TempDir()
	list := writeList(t, dir, "version: 1\nimages:\n  - source: docker.io/library/bbmirror\n    tags: [\"1.0\"]\n")
	mustRun(t, append(s.env, "HTTPS_PROXY="+hub.Proxy), "--insecure", "sync", list)
	hubLock := filepath.Join(dir, "mirrors.lock")
	lf := readLock(t, hubLock)
	if len(lf.Images) != 1 || lf.Images[0].Source != "docker.io/library/bbmirror:1.0" {
		t.Fatalf("lockfile: %+v", lf.Images)
	}
	if c := hub.Connects(); len(c) == 0 || c[0] != "CONNECT index.docker.io:443" {
		t.Fatalf("sync did not go to the fake hub: %v", c)
	}

	p := startServe(t, s.env, "--lock", hubLock)
	closed := rig.FreePort(t)
	s.c.HostsTOML(t, "docker.io", fmt.Sprintf(`server = "http://127.0.0.1:%d"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, closed, p.host))

	s.c.Nerdctl(t, "pull", "--quiet", "docker.io/library/bbmirror:1.0")
	out := s.c.Nerdctl(t, "run", "--rm", "--net", "none", "docker.io/library/bbmirror:1.0", "echo", "hello-from-mirror")
	if strings.TrimSpace(out) != "hello-from-mirror" {
		t.Errorf("nerdctl run printed %q", out)
	}
	log := p.stderr()
	if testing.Verbose() {
		t.Logf("mirror serve's log:\n%s", log)
	}
	for _, want := range []string{
		"/v2/library/bbmirror/manifests/1.0?ns=docker.io",
		"/v2/library/bbmirror/blobs/sha256:",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mirror serve's log has no %s:\n%s", want, log)
		}
	}
	if !strings.Contains(log, "status=200") {
		t.Errorf("mirror serve answered nothing with 200:\n%s", log)
	}
	// A name the lockfile lacks gets 404 from serve, then the fallback
	// to the closed "upstream" fails: nothing else answers.
	_, errOut, err := s.c.NerdctlErr("pull", "--quiet", "docker.io/library/notmirrored:1.0")
	if err == nil {
		t.Fatalf("pull of a name mirror serve does not have succeeded")
	}
	if !strings.Contains(errOut, fmt.Sprintf("127.0.0.1:%d", closed)) {
		t.Errorf("the fallback did not go to the closed server: %s", errOut)
	}
}

// TestE2EStackCompose: `nerdctl compose up` of a compose file with
// `image: ipfs://CID`, and of the override `mirror compose rewrite`
// writes (the services from mirror serve's ipfs/<CID> names), run their
// services.
func TestE2EStackCompose(t *testing.T) {
	t.Parallel()
	deadline(t, 10*time.Minute)
	s := newStackRig(t)
	img := rig.BusyboxImage(t)
	src := s.reg.Host + "/library/bbcompose:1.0"
	rig.Push(t, src, img)
	dir := t.TempDir()

	t.Run("ipfs", func(t *testing.T) {
		root := mustRun(t, s.env, "push", src).lastLine()
		compose := filepath.Join(dir, "ipfs.yaml")
		writeFile(t, compose, fmt.Sprintf(`services:
  hello:
    image: ipfs://%s
    command: ["echo", "hello-from-compose-ipfs"]
    network_mode: none
`, root))
		out := composeUp(t, s.c, "ipfs", compose)
		if !strings.Contains(out, "hello-from-compose-ipfs") {
			t.Errorf("compose up printed:\n%s", out)
		}
	})
	t.Run("rewrite", func(t *testing.T) {
		compose := filepath.Join(dir, "compose.yaml")
		writeFile(t, compose, fmt.Sprintf(`services:
  hello:
    image: %s
    command: ["echo", "hello-from-compose-serve"]
    network_mode: none
`, src))
		list := writeList(t, dir, "version: 1\nimages:\n  - compose: compose.yaml\n")
		lock := filepath.Join(dir, "mirrors.lock")
		mustRun(t, s.env, "sync", list)
		p := startServe(t, s.env, "--lock", lock)
		override := filepath.Join(dir, "compose.ipfs.yaml")
		mustRun(t, s.env, "compose", "rewrite", compose, "--lock", lock, "--registry", p.host, "-o", override)
		if b, _ := os.ReadFile(override); !strings.Contains(string(b), p.host+"/ipfs/") {
			t.Fatalf("override does not name mirror serve's ipfs/<CID>:\n%s", b)
		}
		// mirror serve speaks plain HTTP: nerdctl uses it for 127.0.0.1
		// by itself (no hosts.toml).
		out := composeUp(t, s.c, "rewrite", compose, override)
		if !strings.Contains(out, "hello-from-compose-serve") {
			t.Errorf("compose up printed:\n%s", out)
		}
		if log := p.stderr(); !strings.Contains(log, "/v2/ipfs/") {
			t.Errorf("mirror serve's log shows no ipfs/<CID> request:\n%s", log)
		}
	})
}

// composeUp runs `nerdctl compose -p PROJECT -f … up` (the services exit by
// themselves), then `down`; it returns what up printed.
func composeUp(t *testing.T, c *rig.Containerd, project string, files ...string) string {
	t.Helper()
	args := []string{"compose", "-p", project}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	t.Cleanup(func() { _, _, _ = c.NerdctlErr(append(args, "down")...) })
	out, errOut, err := c.NerdctlErr(append(args, "up")...)
	if err != nil {
		t.Fatalf("nerdctl compose up: %v\n%s\n%s\ncontainerd:\n%s", err, out, errOut, c.Log())
	}
	return out + errOut
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
