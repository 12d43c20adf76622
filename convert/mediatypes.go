package convert

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types this package produces or reads beyond those go-containerregistry names.
const (
	// MediaTypeLayerEnc etc. are the ocicrypt media types of encrypted layers.
	MediaTypeLayerEnc     types.MediaType = "application/vnd.oci.image.layer.v1.tar+encrypted"
	MediaTypeLayerGzipEnc types.MediaType = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
	MediaTypeLayerZstdEnc types.MediaType = "application/vnd.oci.image.layer.v1.tar+zstd+encrypted"

	dockerLayerZstd types.MediaType = "application/vnd.docker.image.rootfs.diff.tar.zstd"

	encryptedSuffix = "+encrypted"
	encAnnotationNS = "org.opencontainers.image.enc."
	encKeysPrefix   = "org.opencontainers.image.enc.keys."
)

// layerKind is what a conversion can do with a manifest "layers" entry.
type layerKind int

const (
	kindOther     layerKind = iota // not a filesystem layer (artifact blob): passed through
	kindForeign                    // foreign / non-distributable layer: passed through
	kindTar                        // uncompressed tar
	kindGzip                       // tar+gzip
	kindZstd                       // tar+zstd
	kindEncrypted                  // ocicrypt-encrypted layer
	kindUnknown                    // a layer media type we cannot read
)

func classify(mt types.MediaType) layerKind {
	s := string(mt)
	switch {
	case strings.HasSuffix(s, encryptedSuffix) &&
		(strings.HasPrefix(s, "application/vnd.oci.image.layer.") || strings.HasPrefix(s, "application/vnd.docker.image.rootfs.")):
		return kindEncrypted
	}
	switch mt {
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return kindTar
	case types.OCILayer, types.DockerLayer:
		return kindGzip
	case types.OCILayerZStd, dockerLayerZstd:
		return kindZstd
	case types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return kindForeign
	}
	if strings.HasPrefix(s, "application/vnd.oci.image.layer.") || strings.HasPrefix(s, "application/vnd.docker.image.rootfs.") {
		return kindUnknown
	}
	return kindOther
}

// ociLayerType maps Docker layer media types to their OCI equivalents (as
// containerd's converter does with DockerToOCI); others are returned as is.
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case dockerLayerZstd:
		return types.OCILayerZStd
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}

// ociConfigType maps the Docker config media type to the OCI one.
func ociConfigType(mt types.MediaType) types.MediaType {
	if mt == types.DockerConfigJSON {
		return types.OCIConfigJSON
	}
	return mt
}
