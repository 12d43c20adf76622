package ocidir

import "errors"

// ErrInvalidInput is returned by Build when the layout is not consistent (a
// bad digest, a blob listed twice with different CIDs, a file CID whose
// size disagrees with its blob's, a repeated entry name, ...).
var ErrInvalidInput = errors.New("layout: invalid input")

// ErrNotLayout is returned by the readers when a CID does not name a
// UnixFS directory (or a layout lacks what the reader needs).
var ErrNotLayout = errors.New("not a UnixFS directory")

// ErrLimit is returned by the readers when a directory or file is larger
// than their bounds allow.
var ErrLimit = errors.New("layout: over the reader's bounds")
