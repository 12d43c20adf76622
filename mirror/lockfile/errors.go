package lockfile

import (
	"errors"
	"strconv"
	"strings"
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

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
		b.WriteString(": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }
