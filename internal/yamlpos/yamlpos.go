// Package yamlpos reads a file that must hold one YAML document into a
// yaml.v3 node tree, and words the positioned errors of the files mirror
// reads (the mirrors list, the compose files it names, the lockfile):
// "FILE:LINE[:COLUMN]: [FIELD: ]MSG", one line each.
//
// yaml.v3 reports syntax errors as "yaml: line N: MSG" with, for the
// problems of its parser (not its scanner), the 0-based line of the
// context; Document turns them into the 1-based line meant.
package yamlpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrEmpty: the file holds no YAML document (nothing, or only comments).
var ErrEmpty = errors.New("the file is empty")

// SyntaxError is a YAML syntax error. Its text is "invalid YAML: MSG".
type SyntaxError struct {
	Line int // 1-based; the column is unknown
	Msg  string
}

func (e *SyntaxError) Error() string { return "invalid YAML: " + e.Msg }

// ExtraDocumentError: the file holds a second YAML document; Node is it
// (its Line and Column place it).
type ExtraDocumentError struct {
	Node *yaml.Node
}

func (e *ExtraDocumentError) Error() string { return "a second YAML document" }

// Document decodes data, which must hold exactly one YAML document, and
// returns the document's top node. Its errors are ErrEmpty, a
// *SyntaxError or an *ExtraDocumentError. A panic of the YAML library is
// a syntax error.
func Document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrEmpty
		}
		return nil, syntaxError(err, data)
	}
	var extra yaml.Node
	switch err := decode(dec, &extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err, data)
	default:
		return nil, &ExtraDocumentError{Node: &extra}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, ErrEmpty
	}
	return doc.Content[0], nil
}

// decode decodes the next document, turning a panic of the YAML library
// into an error.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the problems yaml.v3 reports as parser (not scanner)
// errors. For those it prints the 0-based line of the context (the `[` or
// `{` left open, the node being parsed): one less than the line it means.
var parserProblems = []string{
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected <document start>",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
}

func syntaxError(err error, data []byte) *SyntaxError {
	msg := err.Error()
	line := 1
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			line = n
		}
		msg = m[2]
		if slices.Contains(parserProblems, msg) {
			line++
			// At the end of the file: the last line with content.
			if last := lastLine(data); line > last {
				line = last
			}
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &SyntaxError{Line: line, Msg: msg}
}

// lastLine is the 1-based number of the last line of data with anything
// but spaces on it (1 for an empty file).
func lastLine(data []byte) int {
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			return i + 1
		}
	}
	return 1
}

// Format is the text of a positioned error: "FILE:LINE:COLUMN: FIELD:
// MSG". ":COLUMN" is left out when column is 0 (unknown), "FIELD: " when
// field is empty; with line 0 (a problem not found in a file's text) the
// position is "FILE: ", or nothing without a file.
func Format(file string, line, column int, field, msg string) string {
	var b strings.Builder
	switch {
	case line > 0:
		b.WriteString(file)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(line))
		if column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(column))
		}
		b.WriteString(": ")
	case file != "":
		b.WriteString(file)
		b.WriteString(": ")
	}
	if field != "" {
		b.WriteString(field)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}
