// Package mirror is the library behind the mirror command: copying images
// between registries (or OCI layouts, docker archives) and IPFS, the sync
// engine, and the lockfile. It never prints; callers get events and errors.
package mirror

import "errors"

// Sentinel errors; cmd/mirror maps them to exit codes.
var (
	// ErrBadReference: a SOURCE or DEST that does not parse.
	ErrBadReference = errors.New("bad reference")
	// ErrNoMatchingPlatform: --platform selected nothing.
	ErrNoMatchingPlatform = errors.New("no manifest matches the requested platforms")
	// ErrDestinationExists: a pull would overwrite a file it was not told
	// to (PullOptions.Overwrite).
	ErrDestinationExists = errors.New("destination exists")
)
