// Package registry is mirror's side of an OCI registry: image references
// and their canonical names, the options every registry request is made
// with (auth, TLS, user agent, proxies), the retrying transport, a source
// opened from a registry, an OCI layout or a docker archive, a raw blob
// client that streams one blob by digest, and the finder of a manifest's
// referrers (signatures, attestations, SBOMs; referrers.go).
package registry

import "errors"

// ErrBadReference: a SOURCE or DEST that does not parse.
var ErrBadReference = errors.New("bad reference")
