package upstream

import "errors"

// ErrInvalid is returned by Build (and Recorder.Input) when its input does
// not describe one consistent set of documents.
var ErrInvalid = errors.New("upstream: invalid input")

// ErrNotUpstream is returned by Load when a CID does not name an upstream
// layout.
var ErrNotUpstream = errors.New("not an upstream layout")
