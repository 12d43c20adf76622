// Package manifests writes and reads the IPFS-enabled image format of
// stargz-snapshotter (docs/ipfs.md) and nerdctl: an OCI image tree whose
// every descriptor carries urls: ["ipfs://<CIDv1>"], rooted at a small JSON
// descriptor whose CID names the image.
//
// The documents are re-marshalled with the ocispec Go structs, exactly as
// containerd's images/converter (docker2oci) does, so that the same source
// image gives the same root CID here and in nerdctl.
package manifests

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Docker media types, and what docker2oci turns them into.
const (
	DockerManifestList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerManifest       = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfig         = "application/vnd.docker.container.image.v1+json"
	DockerLayerGzip      = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerLayer          = "application/vnd.docker.image.rootfs.diff.tar"
	DockerForeignGzip    = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	DockerForeign        = "application/vnd.docker.image.rootfs.foreign.diff.tar"
	ociNonDistributable  = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	ociNonDistributableZ = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)

// MaxManifestSize bounds every JSON document we read (as distribution does).
const MaxManifestSize = 4 << 20

// Sentinel errors.
var (
	// ErrDigestMismatch: bytes read from IPFS do not hash to their descriptor.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrNotIPFSImage: the CID does not name an IPFS-enabled image.
	ErrNotIPFSImage = errors.New("not an IPFS-enabled image")
	// ErrNoURL: a descriptor has no ipfs:// URL.
	ErrNoURL = errors.New("descriptor has no ipfs:// URL")
	// ErrUnsupported: a media type the format cannot carry.
	ErrUnsupported = errors.New("unsupported media type")
)

// DockerToOCI maps a Docker media type to its OCI counterpart (others pass).
func DockerToOCI(mt string) string {
	switch mt {
	case DockerManifestList:
		return ocispec.MediaTypeImageIndex
	case DockerManifest:
		return ocispec.MediaTypeImageManifest
	case DockerLayerGzip:
		return ocispec.MediaTypeImageLayerGzip
	case DockerForeignGzip:
		return ociNonDistributableZ
	case DockerLayer:
		return ocispec.MediaTypeImageLayer
	case DockerForeign:
		return ociNonDistributable
	case DockerConfig:
		return ocispec.MediaTypeImageConfig
	}
	return mt
}

// IsDocker reports whether mt is one of Docker's media types.
func IsDocker(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.docker.")
}

// IsIndex reports whether mt names an index or manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == DockerManifestList
}

// IsManifest reports whether mt names an image manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == DockerManifest
}

// CID returns the CID of the first ipfs:// URL of d.
func CID(d ocispec.Descriptor) (cid.Cid, error) {
	for _, u := range d.URLs {
		if strings.HasPrefix(u, "ipfs://") {
			c, err := ipfs.ParseCID(u)
			if err != nil {
				return cid.Undef, fmt.Errorf("descriptor %s: %w", d.Digest, err)
			}
			return c, nil
		}
	}
	return cid.Undef, fmt.Errorf("descriptor %s: %w", d.Digest, ErrNoURL)
}
