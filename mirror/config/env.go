package config

import (
	"errors"
	"strings"
)

// expand replaces the variable references in s, shell style:
//
//	$NAME, ${NAME}      the value; an error when NAME is unset
//	${NAME:-WORD}       WORD when NAME is unset or empty
//	${NAME-WORD}        WORD when NAME is unset
//	${NAME:?WORD}       an error (saying WORD) when NAME is unset or empty
//	${NAME?WORD}        an error (saying WORD) when NAME is unset
//	$$                  a literal $
//
// WORD may itself hold references; they are expanded only when WORD is used.
// A $ not followed by {, $ or a name is kept as is.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i += 2
		case next == '{':
			end := matchBrace(s, i+2)
			if end < 0 {
				return "", errors.New("unterminated variable reference " + quote(s[i:]))
			}
			v, err := expandBraced(s[i+2:end], lookup)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		case isNameStart(next):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name := s[i+1 : j]
			v, ok := lookup(name)
			if !ok {
				return "", unsetError(name, "")
			}
			b.WriteString(v)
			i = j
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), nil
}

// matchBrace returns the index of the } closing a ${ whose body starts at
// start, or -1.
func matchBrace(s string, start int) int {
	depth := 1
	for i := start; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '$':
			i++
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
			i++
		case s[i] == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func expandBraced(body string, lookup func(string) (string, bool)) (string, error) {
	j := 0
	for j < len(body) && isNameChar(body[j]) {
		j++
	}
	name := body[:j]
	if name == "" || !isNameStart(name[0]) {
		return "", errors.New("bad variable reference " + quote("${"+body+"}"))
	}
	op, word := body[j:], ""
	for _, o := range []string{":-", ":?", "-", "?"} {
		if strings.HasPrefix(op, o) {
			op, word = o, op[len(o):]
			break
		}
	}
	v, ok := lookup(name)
	switch op {
	case "":
		if !ok {
			return "", unsetError(name, "")
		}
		return v, nil
	case ":-", "-":
		if !ok || (op == ":-" && v == "") {
			return expand(word, lookup)
		}
		return v, nil
	case ":?", "?":
		if !ok || (op == ":?" && v == "") {
			msg, err := expand(word, lookup)
			if err != nil {
				return "", err
			}
			if ok {
				return "", errors.New("environment variable " + quote(name) + " is empty" + suffix(msg))
			}
			return "", unsetError(name, msg)
		}
		return v, nil
	}
	return "", errors.New("bad variable reference " + quote("${"+body+"}"))
}

func unsetError(name, msg string) error {
	return errors.New("environment variable " + quote(name) + " is not set" + suffix(msg))
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func isNameStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || ('0' <= c && c <= '9') }
