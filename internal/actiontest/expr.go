package actiontest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// exprContext evaluates ${{ }} expressions for one action run.
type exprContext struct {
	t          testing.TB
	r          *Runner
	actionPath string
	inputs     map[string]string
	steps      map[string]*StepResult
	failed     bool
}

// substitute replaces every ${{ expr }} in s by its value.
func (c *exprContext) substitute(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+3:]
		j := closing(rest)
		if j < 0 {
			c.t.Fatalf("unclosed ${{ in %q", s)
		}
		b.WriteString(toString(c.eval(rest[:j])))
		s = rest[j+2:]
	}
}

// closing finds the "}}" that ends an expression, outside string literals.
func closing(s string) int {
	inStr := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			inStr = !inStr
		case !inStr && strings.HasPrefix(s[i:], "}}"):
			return i
		}
	}
	return -1
}

func (c *exprContext) eval(expr string) any {
	p := &exprParser{c: c, toks: tokenize(c.t, expr), src: expr}
	v := p.or()
	if p.pos != len(p.toks) {
		c.t.Fatalf("expression %q: unexpected %q", expr, p.toks[p.pos])
	}
	return v
}

func tokenize(t testing.TB, s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			i++
		case ch == '\'':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(s) {
				t.Fatalf("expression %q: unterminated string", s)
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, s[i:i+2])
			i += 2
		case ch == '!' || ch == '(' || ch == ')' || ch == ',':
			toks = append(toks, string(ch))
			i++
		default:
			j := i
			for j < len(s) && (isIdent(s[j]) || s[j] == '.') {
				j++
			}
			if j == i {
				t.Fatalf("expression %q: unsupported character %q", s, ch)
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func isIdent(b byte) bool {
	return b == '_' || b == '-' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

type exprParser struct {
	c    *exprContext
	toks []string
	pos  int
	src  string
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) next() string {
	tok := p.peek()
	p.pos++
	return tok
}

func (p *exprParser) or() any {
	v := p.and()
	for p.peek() == "||" {
		p.next()
		w := p.and()
		if !truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) and() any {
	v := p.unary()
	for p.peek() == "&&" {
		p.next()
		w := p.unary()
		if truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) unary() any {
	if p.peek() == "!" {
		p.next()
		return !truthy(p.unary())
	}
	return p.cmp()
}

func (p *exprParser) cmp() any {
	v := p.primary()
	switch p.peek() {
	case "==":
		p.next()
		return equal(v, p.primary())
	case "!=":
		p.next()
		return !equal(v, p.primary())
	}
	return v
}

func (p *exprParser) primary() any {
	tok := p.next()
	switch {
	case tok == "(":
		v := p.or()
		if p.next() != ")" {
			p.c.t.Fatalf("expression %q: missing )", p.src)
		}
		return v
	case strings.HasPrefix(tok, "'"):
		return strings.ReplaceAll(tok[1:len(tok)-1], "''", "'")
	case tok == "true":
		return true
	case tok == "false":
		return false
	case tok == "null":
		return nil
	case tok == "":
		p.c.t.Fatalf("expression %q: unexpected end", p.src)
	}
	if f, err := strconv.ParseFloat(tok, 64); err == nil {
		return f
	}
	if p.peek() == "(" {
		p.next()
		if p.next() != ")" {
			p.c.t.Fatalf("expression %q: %s() with arguments is not supported here", p.src, tok)
		}
		switch tok {
		case "success":
			return !p.c.failed
		case "failure":
			return p.c.failed
		case "always":
			return true
		case "cancelled":
			return false
		}
		p.c.t.Fatalf("expression %q: function %s is not supported here", p.src, tok)
	}
	return p.c.lookup(tok, p.src)
}

// lookup resolves a context path such as inputs.config or
// steps.sync.outputs.lockfile.
func (c *exprContext) lookup(path, src string) any {
	parts := strings.Split(path, ".")
	switch {
	case parts[0] == "inputs" && len(parts) == 2:
		v, ok := c.inputs[parts[1]]
		if !ok {
			c.t.Fatalf("expression %q: no input %q", src, parts[1])
		}
		return v
	case parts[0] == "steps" && len(parts) == 4 && parts[2] == "outputs":
		s, ok := c.steps[parts[1]]
		if !ok {
			c.t.Fatalf("expression %q: no step %q before this one", src, parts[1])
		}
		if v, ok := s.Outputs[parts[3]]; ok {
			return v
		}
		return nil
	case parts[0] == "steps" && len(parts) == 3 && (parts[2] == "outcome" || parts[2] == "conclusion"):
		s, ok := c.steps[parts[1]]
		if !ok {
			c.t.Fatalf("expression %q: no step %q before this one", src, parts[1])
		}
		return s.Outcome
	case path == "github.action_path":
		return c.actionPath
	case path == "github.workspace":
		return c.r.Workspace
	case path == "runner.temp":
		return c.r.Temp
	case path == "runner.os":
		return "Linux"
	case path == "runner.arch":
		return "X64"
	case parts[0] == "env" && len(parts) == 2:
		if v, ok := c.r.jobEnv[parts[1]]; ok {
			return v
		}
		return nil
	}
	c.t.Fatalf("expression %q: context %q is not supported here", src, path)
	return nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// equal is GitHub's ==: strings compare ignoring case; other mixes compare
// as numbers.
func equal(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(as, bs)
	}
	if ab, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			return ab == bb
		}
	}
	return toNumber(a) == toNumber(b)
}

func toNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		if strings.TrimSpace(x) == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f
		}
	}
	return math.NaN()
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
