package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// filesImage is a single-platform image whose layer holds real files.
func filesImage(t *testing.T) (v1.Image, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		"etc/motd":        []byte("hello from IPFS\n"),
		"bin/tool":        rig.RandomBytes(31, 300<<10),
		"usr/share/a.txt": bytes.Repeat([]byte("compressible text "), 20000),
	}
	var tf []rig.TarFile
	for _, n := range []string{"etc/motd", "bin/tool", "usr/share/a.txt"} {
		tf = append(tf, rig.TarFile{Name: n, Data: files[n]})
	}
	gz := rig.Gzip(rig.Tar(tf...))
	layer := layerFromGzip(t, gz)
	return rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{layer, rig.Layer(t, 32, 64<<10, false)}}), files
}

func layerFromGzip(t *testing.T, gz []byte) v1.Layer {
	t.Helper()
	l, err := tarballLayer(gz)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// untar returns the regular files of a (possibly gzipped) tar stream.
func untar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	br := bufioReader(r)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		return untar(t, zr)
	}
	out := map[string][]byte{}
	tr := tar.NewReader(br)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && !strings.HasPrefix(filepath.Base(h.Name), ".") && !strings.Contains(h.Name, "stargz") {
			b, _ := io.ReadAll(tr)
			out[strings.TrimPrefix(h.Name, "./")] = b
		}
	}
}

func rsaKeys(t *testing.T, dir, name string) (pub, priv string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub, priv = filepath.Join(dir, name+".pub.pem"), filepath.Join(dir, name+".pem")
	_ = os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb}), 0o600)
	_ = os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	return pub, priv
}

func skopeo(t *testing.T, args ...string) {
	t.Helper()
	bin := rig.Tool(t, "MIRROR_SKOPEO_BIN", "skopeo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"--insecure-policy"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// layoutLayers returns the layers of the single image in an OCI layout.
func layoutLayers(t *testing.T, dir string) []v1.Layer {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestE2EEstargz(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	img, files := filesImage(t)
	src := filepath.Join(t.TempDir(), "src")
	rig.WriteLayout(t, src, img, "v1")
	root := mustRun(t, r.env, "push", "--mode", "estargz", "oci:"+src+":v1").lastLine()
	checkTree(t, r.k, root)
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, r.env, "pull", root, "oci:"+out)
	rig.SkopeoReads(t, "oci:"+out)
	ls := layoutLayers(t, out)
	got := map[string][]byte{}
	for i, l := range ls {
		d, err := partial.Descriptor(l)
		if err != nil {
			t.Fatal(err)
		}
		toc := d.Annotations[estargz.TOCJSONDigestAnnotation]
		if toc == "" || d.Annotations["io.containers.estargz.uncompressed-size"] == "" {
			t.Fatalf("layer %d lacks the stargz annotations: %v", i, d.Annotations)
		}
		rc, _ := l.Compressed()
		blob, _ := io.ReadAll(rc)
		rc.Close()
		sr := io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob)))
		er, err := estargz.Open(sr)
		if err != nil {
			t.Fatalf("layer %d: estargz.Open: %v", i, err)
		}
		if _, err := er.VerifyTOC(digestOf(t, toc)); err != nil {
			t.Fatalf("layer %d: VerifyTOC: %v", i, err)
		}
		for k, v := range untar(t, bytes.NewReader(blob)) {
			got[k] = v
		}
		if i == 0 {
			// A Range read through IPFS of one file's chunk is exactly it.
			ent, ok := er.Lookup("bin/tool")
			if !ok {
				t.Fatal("bin/tool not in the TOC")
			}
			chunk, ok := er.ChunkEntryForOffset("bin/tool", 0)
			if !ok {
				t.Fatal("no chunk at 0")
			}
			c, _ := manifests.CID(descOf(d))
			off, n := chunk.Offset, chunk.NextOffset()-chunk.Offset
			rangeBytes := r.k.Run("cat", "-o", strconv.FormatInt(off, 10), "-l", strconv.FormatInt(n, 10), c.String())
			if rangeBytes != string(blob[off:off+n]) {
				t.Errorf("ipfs cat of the chunk at %d+%d differs from the layer's bytes", off, n)
			}
			zr, err := gzip.NewReader(strings.NewReader(rangeBytes))
			if err != nil {
				t.Fatalf("the chunk is not a gzip member: %v", err)
			}
			zr.Multistream(false)
			plain, _ := io.ReadAll(zr)
			if !bytes.HasPrefix(files["bin/tool"][chunk.ChunkOffset:], plain) || len(plain) == 0 {
				t.Errorf("chunk of %s decompresses to %d bytes that are not the file's", ent.Name, len(plain))
			}
		}
	}
	for name, want := range files {
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s: %d bytes after eStargz, want %d", name, len(got[name]), len(want))
		}
	}
}

func TestE2EEncryptionInterop(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	keys := t.TempDir()
	pub, priv := rsaKeys(t, keys, "a")
	_, otherPriv := rsaKeys(t, keys, "b")
	img, _ := filesImage(t)
	src := filepath.Join(t.TempDir(), "src")
	rig.WriteLayout(t, src, img, "v1")
	srcLayers := rig.SourceBlobs(t, img)

	t.Run("mirror encrypts, skopeo decrypts", func(t *testing.T) {
		root := mustRun(t, r.env, "push", "--recipient", "jwe:"+pub, "oci:"+src+":v1").lastLine()
		blobs := checkTree(t, r.k, root)
		for d := range srcLayers {
			if _, ok := blobs[d]; ok && !strings.Contains(d, "") {
				t.Errorf("plain layer %s stored", d)
			}
		}
		enc := filepath.Join(t.TempDir(), "enc")
		mustRun(t, r.env, "pull", "--urls", "strip", root, "oci:"+enc)
		rig.SkopeoReads(t, "oci:"+enc)
		for _, l := range layoutLayers(t, enc) {
			mt, _ := l.MediaType()
			if !strings.HasSuffix(string(mt), "+encrypted") {
				t.Errorf("pulled without --key: layer %s not encrypted", mt)
			}
		}
		dec := filepath.Join(t.TempDir(), "dec")
		skopeo(t, "copy", "--decryption-key", priv, "oci:"+enc, "oci:"+dec)
		got := rig.LayoutBlobs(t, dec)
		for d, b := range srcLayers {
			if !bytes.Equal(got[d], b) && len(b) > 2000 {
				t.Errorf("skopeo-decrypted blob %s differs or is missing", d)
			}
		}
		// mirror pull --key decrypts too; a wrong key is a clear error.
		mine := filepath.Join(t.TempDir(), "mine")
		mustRun(t, r.env, "pull", "--key", priv, root, "oci:"+mine)
		sameBlobs(t, "mirror --key", filterLayers(srcLayers), rig.LayoutBlobs(t, mine))
		sameBlobs(t, "skopeo copy of mirror --key", filterLayers(srcLayers), rig.DirBlobs(t, rig.SkopeoReads(t, "oci:"+mine)))
		bad := mirrorRun(t, r.env, "pull", "--key", otherPriv, root, "oci:"+filepath.Join(t.TempDir(), "x"))
		if bad.code == 0 || !strings.Contains(bad.stderr, "key") {
			t.Errorf("wrong key: exit %d: %s", bad.code, bad.stderr)
		}
	})
	t.Run("skopeo encrypts, mirror decrypts", func(t *testing.T) {
		enc := filepath.Join(t.TempDir(), "skenc")
		skopeo(t, "copy", "--encryption-key", "jwe:"+pub, "oci:"+src+":v1", "oci:"+enc)
		root := mustRun(t, r.env, "push", "oci:"+enc).lastLine()
		dec := filepath.Join(t.TempDir(), "dec")
		mustRun(t, r.env, "pull", "--key", priv, root, "oci:"+dec)
		sameBlobs(t, "decrypted", filterLayers(srcLayers), rig.LayoutBlobs(t, dec))
		sameBlobs(t, "skopeo copy of the decrypted", filterLayers(srcLayers), rig.DirBlobs(t, rig.SkopeoReads(t, "oci:"+dec)))
	})
	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"push", "--recipient", "foo:" + pub, "oci:" + src + ":v1"},
			{"push", "--estargz", "--recipient", "jwe:" + pub, "oci:" + src + ":v1"},
			{"push", "--recipient", "jwe:" + filepath.Join(keys, "missing.pem"), "oci:" + src + ":v1"},
			{"pull", "--key", filepath.Join(keys, "missing.pem"), "bafkreiawlljusigbmjyhzyh4bhd35ai5bwsgnpn4lnsd5al32lsqwan3ny", "oci:x"},
		} {
			res := mirrorRun(t, r.env, args...)
			if res.code != ExitUsage {
				t.Errorf("mirror %s: exit %d (want %d): %s", strings.Join(args, " "), res.code, ExitUsage, res.stderr)
			}
		}
	})
	t.Run("sync with three modes", func(t *testing.T) {
		dir := t.TempDir()
		list := writeList(t, dir, "version: 1\nimages:\n  - source: oci:"+src+":v1\n    modes: [plain, estargz, encrypted]\n    encrypt: {recipients: [\"jwe:"+pub+"\"]}\n")
		mustRun(t, r.env, "sync", list)
		lock, err := lockfile.Read(filepath.Join(dir, "mirrors.lock"))
		if err != nil || len(lock.Images) != 3 {
			t.Fatalf("lock: %v %+v", err, lock)
		}
		cids := map[string]bool{}
		for _, e := range lock.Images {
			cids[e.CID] = true
			checkTree(t, r.k, e.CID)
		}
		if len(cids) != 3 {
			t.Errorf("modes share CIDs: %v", cids)
		}
		res := mustRun(t, r.env, "sync", list)
		if !strings.Contains(res.stderr, "3 unchanged") {
			t.Errorf("second run: %s", res.stderr)
		}
	})
}

// filterLayers keeps the layers (not the config, which encryption leaves
// alone but a decrypting pull may rewrite) of a blob map.
func filterLayers(m map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for d, b := range m {
		if len(b) > 2000 {
			out[d] = b
		}
	}
	return out
}
