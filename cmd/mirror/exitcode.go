package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ipfs-mirror/mirror/convert"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// Exit codes (documented in README.md, "Exit codes"; keep the two in step).
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // the command failed (network, registry, IPFS errors)
	ExitUsage       = 2   // bad flags, arguments, references or configuration
	ExitPartial     = 3   // some images failed, the others were done (sync, verify)
	ExitIPFS        = 4   // no IPFS node reachable, or content not found in time
	ExitIntegrity   = 5   // a digest mismatch: content does not match its descriptor
	ExitLocked      = 6   // another run holds the lockfile (sync --lock-timeout ran out)
	ExitInterrupted = 130 // SIGINT/SIGTERM
)

// partialError is returned by commands that did part of their work.
type partialError struct{ err error }

func (p partialError) Error() string { return p.err.Error() }
func (p partialError) Unwrap() error { return p.err }

// usageError marks bad input found by a command.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitCode maps an error to its documented exit code.
func exitCode(ctx context.Context, err error) int {
	var pe partialError
	var ue usageError
	var ce configError
	switch {
	case err == nil:
		return ExitOK
	case ctx.Err() != nil:
		// ctx is the signal context: SIGINT/SIGTERM ended it, whatever
		// the error it caused says ("content not found: context canceled").
		return ExitInterrupted
	case errors.As(err, &pe):
		return ExitPartial
	case errors.As(err, &ue), errors.As(err, &ce), errors.Is(err, registry.ErrBadReference), errors.Is(err, oci.ErrNoMatchingPlatform):
		return ExitUsage
	case errors.Is(err, convert.ErrExclusiveModes), errors.Is(err, convert.ErrUnknownMode), errors.Is(err, convert.ErrUnsupportedRecipient),
		errors.Is(err, convert.ErrNoRecipients), errors.Is(err, convert.ErrInvalidKey):
		return ExitUsage
	case errors.Is(err, lockfile.ErrLocked):
		return ExitLocked
	case errors.Is(err, manifests.ErrDigestMismatch), errors.Is(err, verify.ErrWrongImage),
		errors.Is(err, ipfs.ErrIntegrity):
		return ExitIntegrity
	case errors.Is(err, ipfs.ErrUnavailable), errors.Is(err, ipfs.ErrNotFound), errors.Is(err, manifests.ErrNotIPFSImage):
		return ExitIPFS
	}
	return ExitFailure
}

// report prints err in one line (plus a hint) and returns its exit code.
func report(w io.Writer, ctx context.Context, err error) int {
	code := exitCode(ctx, err)
	msg := err.Error()
	if code == ExitInterrupted {
		msg = "interrupted"
	} else {
		msg += hint(err)
	}
	fmt.Fprintln(w, "mirror:", msg)
	return code
}

// hint is what to try for the errors a newcomer meets, or "".
func hint(err error) string {
	var te *transport.Error
	switch {
	case errors.As(err, &te) && te.StatusCode == 401:
		return " (hint: log in with `docker login` or set credentials in ~/.docker/config.json)"
	case errors.Is(err, context.DeadlineExceeded):
		return " (hint: the --timeout ran out; the content may not be reachable from this node)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return " (hint: the registry speaks plain HTTP; pass --insecure to allow it)"
	}
	return ""
}
