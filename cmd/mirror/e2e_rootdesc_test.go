package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// annotateLayoutEntries adds annotations to every index.json entry of a
// layout, as `nerdctl save` / `ctr export` write them.
func annotateLayoutEntries(t *testing.T, dir string, add map[string]string) {
	t.Helper()
	p := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx["manifests"].([]any) {
		m := m.(map[string]any)
		ann, _ := m["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
		}
		for k, v := range add {
			ann[k] = v
		}
		m["annotations"] = ann
	}
	out, _ := json.Marshal(idx)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rootKeys returns the sorted field names of the root descriptor a CID names.
func rootKeys(t *testing.T, r *e2eRig, root string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.k.Run("cat", root)), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Issue 12, item 2 (docs/format.md, "The root descriptor"): the root
// descriptor carries mediaType, digest, size and urls only, whatever the
// source; the annotations of an oci: layout's index.json entry (ref.name,
// io.containerd.image.name, ...) are not copied into it, so a layout and a
// registry copy of one image get one root CID whatever the tag is called.
// (nerdctl, after `nerdctl load` of an OCI archive, keeps those annotations
// on its root descriptor: its root CID then differs from ours, and only it.)
func TestE2ERootDescriptorPerSourceKind(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	wantKeys := "[digest mediaType size urls]"

	idx := rig.MultiPlatform(t, 300, 64<<10)
	rig.Push(t, r.reg.Host+"/test/rootdesc:v1", idx)
	fromRegistry := mustRun(t, r.env, "push", r.reg.Host+"/test/rootdesc:v1").lastLine()
	if got := strings.Join(rootKeys(t, r, fromRegistry), " "); "["+got+"]" != wantKeys {
		t.Errorf("registry: root descriptor fields [%s], want %s", got, wantKeys)
	}
	for _, tag := range []string{"v1", "another-name"} {
		src := filepath.Join(t.TempDir(), "layout")
		rig.WriteLayout(t, src, idx, tag)
		annotateLayoutEntries(t, src, map[string]string{
			"io.containerd.image.name":         "docker.io/library/rootdesc:" + tag,
			"org.opencontainers.image.created": "2026-01-02T03:04:05Z",
		})
		root := mustRun(t, r.env, "push", "oci:"+src+":"+tag).lastLine()
		if root != fromRegistry {
			t.Errorf("oci:%s: root %s, the registry copy's %s", tag, root, fromRegistry)
		}
		if got := strings.Join(rootKeys(t, r, root), " "); "["+got+"]" != wantKeys {
			t.Errorf("oci:%s: root descriptor fields [%s], want %s", tag, got, wantKeys)
		}
	}

	// docker-archive: one image; its archive and its registry copy agree too.
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 310, 64<<10, true)}, Docker: true})
	rig.Push(t, r.reg.Host+"/test/rootdesc-img:v1", img)
	imgRegistry := mustRun(t, r.env, "push", r.reg.Host+"/test/rootdesc-img:v1").lastLine()
	archive := filepath.Join(t.TempDir(), "img.tar")
	rig.WriteArchive(t, archive, "example.com/rootdesc-img:v1", img)
	imgArchive := mustRun(t, r.env, "push", "docker-archive:"+archive).lastLine()
	if imgArchive != imgRegistry {
		t.Errorf("docker-archive: root %s, the registry copy's %s", imgArchive, imgRegistry)
	}
	if got := strings.Join(rootKeys(t, r, imgArchive), " "); "["+got+"]" != wantKeys {
		t.Errorf("docker-archive: root descriptor fields [%s], want %s", got, wantKeys)
	}
}
