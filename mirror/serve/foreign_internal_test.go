package serve

import "testing"

func TestSkipsForeignLayers(t *testing.T) {
	for ua, want := range map[string]bool{
		"skopeo/1.9.3": true,
		"containers/5.24.0 (github.com/containers/image)": true,
		"libpod/4.3.1":                    true,
		"Buildah/1.28.0":                  true,
		"cri-o/1.28.1 go/go1.21 os/linux": true,
		"go-containerregistry/v0.20.2":    false,
		"containerd/v1.7.13":              false,
		"docker/27.0.3 go/go1.21.11":      false,
		"crane/v0.20.2":                   false,
		"":                                false,
	} {
		if got := skipsForeignLayers(ua); got != want {
			t.Errorf("%q: %v, want %v", ua, got, want)
		}
	}
}
