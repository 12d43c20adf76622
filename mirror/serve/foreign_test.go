package serve_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// TestSkopeoForeignLayerWarning: skopeo pulling the URL view gets the
// image without its layers (exit 0), and the server says so in its log;
// the url-free address gets every layer and no warning.
func TestSkopeoForeignLayerWarning(t *testing.T) {
	e := startEnv(t)
	src := rig.MultiPlatform(t, 5, 200<<10)
	res := e.push(t, src)
	s := startServer(t, e.store, serve.Options{})
	const warning = "a containers/image client"

	dir := filepath.Join(t.TempDir(), "nourls")
	if out, err := skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+s.host+"/ipfs-nourls/"+res.Root.String(), "oci:"+dir+":latest"); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	blobs := rig.LayoutBlobs(t, dir)
	for _, d := range layerDigests(t, src) {
		if _, ok := blobs[d]; !ok {
			t.Errorf("url-free copy lacks layer %s", d)
		}
	}
	if strings.Contains(s.log.String(), warning) {
		t.Errorf("warned for the url-free view:\n%s", s.log.String())
	}

	dir = filepath.Join(t.TempDir(), "urls")
	_, _ = skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+s.host+"/ipfs/"+res.Root.String(), "oci:"+dir+":latest")
	log := s.log.String()
	if !strings.Contains(log, warning) || !strings.Contains(log, "ipfs-nourls/"+res.Root.String()) || !strings.Contains(log, "user_agent=skopeo/") {
		t.Errorf("no foreign-layer warning naming the url-free address and skopeo's User-Agent:\n%s", log)
	}
}
