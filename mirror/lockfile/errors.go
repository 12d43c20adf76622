package lockfile

import (
	"errors"

	"github.com/ipfs-mirror/mirror/internal/yamlpos"
)

// ErrInvalid is matched (errors.Is) by every *Error: the lockfile (or the
// File about to be written) is malformed.
var ErrInvalid = errors.New("invalid lockfile")

// Error is one problem in a lockfile. Its text is
// "FILE:LINE:COLUMN: FIELD: MSG", like config.Error; Line and Column are 0
// (and left out of the text) for problems found by Validate in a File that
// was not read from disk.
type Error struct {
	File   string
	Line   int
	Column int
	Field  string // e.g. images[2].cid
	Msg    string
}

func (e *Error) Error() string { return yamlpos.Format(e.File, e.Line, e.Column, e.Field, e.Msg) }

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }
