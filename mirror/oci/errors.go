// Package oci moves images between the IPFS-enabled format and the places
// OCI images live: Push reads a source (a registry, an oci: layout, a
// docker-archive:) into a manifests.Writer; Pull reads an image back from
// IPFS and writes it as an OCI layout, a `docker load` tarball or into a
// registry. It never prints; callers get events and errors.
package oci

import "errors"

// Sentinel errors; cmd/mirror maps them to exit codes.
var (
	// ErrNoMatchingPlatform: --platform selected nothing.
	ErrNoMatchingPlatform = errors.New("no manifest matches the requested platforms")
	// ErrDestinationExists: a pull would overwrite a file it was not told
	// to (PullOptions.Overwrite).
	ErrDestinationExists = errors.New("destination exists")
	// ErrNoUpstream: PullUpstream was given a CID with no upstream
	// documents (an IPFS-enabled root, an entry of another mode).
	ErrNoUpstream = errors.New("no upstream documents")
	// ErrPartialUpstream: the upstream index names manifests the mirror
	// did not keep, so it cannot be written with its digest.
	ErrPartialUpstream = errors.New("the mirror keeps only some of the upstream index's manifests")
)
