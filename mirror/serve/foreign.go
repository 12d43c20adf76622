package serve

import (
	"net/http"
	"strings"
)

// Clients built on containers/image (skopeo, podman, buildah, CRI-O) take a
// layer whose descriptor has urls for a foreign layer, and skip it when
// they copy to oci: or to a registry: from the stored (URL) view they get
// an image without layers and exit 0. They name themselves in User-Agent:
// skopeo/1.9.3, libpod/4.3.1, Buildah/1.28.0, cri-o/1.28.1, or
// containers/5.x (github.com/containers/image) when they set none.
var foreignSkippers = []string{"skopeo/", "containers/", "libpod/", "podman/", "buildah/", "cri-o/", "crio/"}

// skipsForeignLayers reports whether the User-Agent is a containers/image
// client.
func skipsForeignLayers(ua string) bool {
	ua = strings.ToLower(ua)
	for _, p := range foreignSkippers {
		if strings.HasPrefix(ua, p) || strings.Contains(ua, " "+p) || strings.Contains(ua, "github.com/containers/image") {
			return true
		}
	}
	return false
}

// warnForeign logs, when a containers/image client gets an image manifest
// of the URL view, that it will leave the layers out, and names the
// url-free address to use instead.
func (s *Server) warnForeign(r *http.Request, t target, mediaType string) {
	if r.Method != http.MethodGet || t.strip || !strings.Contains(mediaType, "manifest") || strings.Contains(mediaType, "list") || !skipsForeignLayers(r.UserAgent()) {
		return
	}
	instead := "start the server with --strip-urls"
	if t.kind == byCID {
		instead = "pull ipfs-nourls/" + t.root.String() + " instead, or " + instead
	} else if t.kind == byIPNS {
		instead = "pull ipns-nourls/" + t.ipns + " instead, or " + instead
	}
	s.log.Warn("a containers/image client (skopeo, podman, buildah, CRI-O) got the URL view of an image: it skips layers that carry urls, so its copy to oci: or a registry has no layers; "+instead,
		"name", t.name, "user_agent", r.UserAgent(), "remote", r.RemoteAddr)
}
