package yamlpos

import (
	"errors"
	"testing"
)

func TestDocument(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for a document; else the problem and its line:column
		line int
		col  int
	}{
		{"a: 1\n", "", 1, 1},
		{"", "the file is empty", 0, 0},
		{"# nothing\n", "the file is empty", 0, 0},
		{"a: [\n", "invalid YAML: did not find expected node content", 1, 0},
		{"version: 1\nimages: [\n", "invalid YAML: did not find expected node content", 2, 0},
		{"a:\n  - b: {c\n", "invalid YAML: did not find expected ',' or '}'", 2, 0},
		{"a: \"b\n", "invalid YAML: found unexpected end of stream", 2, 0},
		{"a: 1\n---\nb: 2\n", "a second YAML document", 2, 1},
		{"a: 1\n---\nb: [\n", "invalid YAML: did not find expected node content", 3, 0},
	} {
		n, err := Document([]byte(tc.in))
		var syntax *SyntaxError
		var extra *ExtraDocumentError
		switch {
		case tc.want == "":
			if err != nil || n == nil || n.Line != tc.line || n.Column != tc.col {
				t.Errorf("%q: %v, %v", tc.in, n, err)
			}
		case err == nil:
			t.Errorf("%q: no error, want %s", tc.in, tc.want)
		case err.Error() != tc.want:
			t.Errorf("%q: %q, want %q", tc.in, err, tc.want)
		case errors.As(err, &syntax):
			if syntax.Line != tc.line {
				t.Errorf("%q: line %d, want %d", tc.in, syntax.Line, tc.line)
			}
		case errors.As(err, &extra):
			if extra.Node.Line != tc.line || extra.Node.Column != tc.col {
				t.Errorf("%q: at %d:%d, want %d:%d", tc.in, extra.Node.Line, extra.Node.Column, tc.line, tc.col)
			}
		case !errors.Is(err, ErrEmpty):
			t.Errorf("%q: %v is none of the errors of Document", tc.in, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		file        string
		line, col   int
		field, want string
	}{
		{"m.yaml", 3, 13, "images[0].source", "m.yaml:3:13: images[0].source: msg"},
		{"m.yaml", 2, 0, "", "m.yaml:2: msg"},
		{"m.lock", 0, 0, "images[1].cid", "m.lock: images[1].cid: msg"},
		{"", 0, 0, "images[1].cid", "images[1].cid: msg"},
		{"", 0, 0, "", "msg"},
	} {
		if got := Format(tc.file, tc.line, tc.col, tc.field, "msg"); got != tc.want {
			t.Errorf("Format(%q, %d, %d, %q) = %q, want %q", tc.file, tc.line, tc.col, tc.field, got, tc.want)
		}
	}
}
