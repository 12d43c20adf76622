package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ipfs-mirror/mirror/internal/yamlpos"
)

// ErrInvalid is matched (errors.Is) by every *Error: the mirrors list is
// malformed. The CLI maps it to its configuration-error exit code.
var ErrInvalid = errors.New("invalid mirrors list")

// Error is one problem found in a mirrors list (or in a compose file it
// names), with the position of the offending YAML node.
//
// Its text is "FILE:LINE:COLUMN: FIELD: MSG"; ":COLUMN" is left out when the
// column is unknown (0, as for some YAML syntax errors) and "FIELD: " when the
// problem is not about one field. Line is always at least 1.
type Error struct {
	File   string // the file as named to Load or Parse (or the compose file's path)
	Line   int    // 1-based
	Column int    // 1-based; 0 when unknown
	Field  string // path of the field, e.g. images[3].tags.semver; may be empty
	Msg    string

	// sorting: the position in the mirrors list the error belongs to
	// (the compose entry for errors inside a compose file), then the
	// position in File.
	anchorLine, anchorCol int
	sub                   bool // inside a compose file
}

func (e *Error) Error() string { return yamlpos.Format(e.File, e.Line, e.Column, e.Field, e.Msg) }

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Errors returns every *Error inside err (which may be a single *Error or
// several joined with errors.Join), in order. It returns nil when err holds
// none, e.g. for an I/O error from Load.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e := errors.Unwrap(err); e != nil {
			walk(e)
		}
	}
	walk(err)
	return out
}

// errorList collects the errors of one parse.
type errorList struct {
	errs []*Error
}

func (l *errorList) add(e *Error) {
	if e.Line < 1 {
		e.Line = 1
	}
	// One error, one line: joined errors are separated by newlines, and
	// CI annotations are line based.
	e.Msg = strings.ReplaceAll(strings.ReplaceAll(e.Msg, "\r", `\r`), "\n", `\n`)
	if !e.sub {
		e.anchorLine, e.anchorCol = e.Line, e.Column
	}
	l.errs = append(l.errs, e)
}

// err returns the collected errors sorted by position, joined; nil if none.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		// errors inside a compose file sort after the errors of the entry
		// that names it, by their own position.
		return cmp.Or(
			cmp.Compare(a.anchorLine, b.anchorLine),
			cmp.Compare(a.anchorCol, b.anchorCol),
			cmp.Compare(boolInt(a.sub), boolInt(b.sub)),
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
	// The same problem may be found twice (an alias used twice); keep one.
	l.errs = slices.CompactFunc(l.errs, func(a, b *Error) bool { return a.Error() == b.Error() })
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func quote(s string) string { return strconv.Quote(s) }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
