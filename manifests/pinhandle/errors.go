package pinhandle

import "errors"

// ErrInvalidInput is returned by Build when the input does not describe one
// consistent image tree (a missing target, a blob listed twice with
// different CIDs, a root descriptor that does not match its CID, ...).
var ErrInvalidInput = errors.New("pinhandle: invalid input")

// ErrNotHandle is returned by RootOf when a CID does not name a pin handle.
var ErrNotHandle = errors.New("pinhandle: not a pin handle")
