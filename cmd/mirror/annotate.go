package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/syncer"
)

// GitHub workflow commands (::error file=F,line=L,col=C,title=T::MSG) for
// the errors a run finds: the runner turns them into annotations on the
// file and line. They go to stderr, which the runner reads as it reads
// stdout, so that --json output on stdout stays clean.

// annotation is one workflow command.
type annotation struct {
	Level  string // error, warning, notice
	File   string
	Line   int
	Column int
	Title  string
	Msg    string
}

func (a annotation) String() string {
	var props []string
	if a.File != "" {
		props = append(props, "file="+escapeProperty(workspacePath(a.File)))
		if a.Line > 0 {
			props = append(props, "line="+strconv.Itoa(a.Line))
			if a.Column > 0 {
				props = append(props, "col="+strconv.Itoa(a.Column))
			}
		}
	}
	if a.Title != "" {
		props = append(props, "title="+escapeProperty(a.Title))
	}
	level := a.Level
	if level == "" {
		level = "error"
	}
	cmd := "::" + level
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + escapeData(a.Msg)
}

// escapeData escapes a workflow command's message.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a workflow command's property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// workspacePath makes p relative to the repository (GITHUB_WORKSPACE, else
// the working directory) when it lies inside: annotations name files as
// the repository does.
func workspacePath(p string) string {
	base := os.Getenv("GITHUB_WORKSPACE")
	if base == "" {
		base, _ = os.Getwd()
	}
	abs, err := filepath.Abs(p)
	if err != nil || base == "" {
		return p
	}
	if real, err := filepath.EvalSymlinks(base); err == nil {
		base = real
	}
	if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(real, filepath.Base(abs))
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return filepath.ToSlash(rel)
}

// fileErrors turns the errors of a mirror list or a lockfile into
// annotations at their positions; other errors name the file alone.
func fileErrors(err error, file string) []annotation {
	if err == nil {
		return nil
	}
	var out []annotation
	for _, e := range config.Errors(err) {
		out = append(out, annotation{File: e.File, Line: e.Line, Column: e.Column, Title: titleOf(e.File, e.Field), Msg: e.Msg})
	}
	for _, e := range lockfileErrors(err) {
		f := e.File
		if f == "" {
			f = file
		}
		out = append(out, annotation{File: f, Line: e.Line, Column: e.Column, Title: titleOf(f, e.Field), Msg: e.Msg})
	}
	if len(out) == 0 {
		out = append(out, annotation{File: file, Title: filepath.Base(file), Msg: err.Error()})
	}
	return out
}

func titleOf(file, field string) string {
	t := filepath.Base(file)
	if field != "" {
		t += ": " + field
	}
	return t
}

// lockfileErrors returns every *lockfile.Error inside err.
func lockfileErrors(err error) []*lockfile.Error {
	var out []*lockfile.Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*lockfile.Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}

// syncAnnotations: the errors of a sync run — a bad list or lockfile
// (runErr), or the failed images of rep at their entries in the list.
func syncAnnotations(list, lock string, runErr error, rep *syncer.Report) []annotation {
	var out []annotation
	if rep != nil {
		for _, r := range rep.Images {
			if r.Status != syncer.StatusFailed {
				continue
			}
			f := r.File
			if f == "" {
				f = list
			}
			out = append(out, annotation{File: f, Line: r.Line, Title: fmt.Sprintf("mirror sync: %s (%s)", r.Source, r.Mode), Msg: r.Error})
		}
	}
	if runErr != nil {
		var ce configError
		switch {
		case config.Errors(runErr) != nil:
			out = append(out, fileErrors(runErr, list)...)
		case lockfileErrors(runErr) != nil:
			out = append(out, fileErrors(runErr, lock)...)
		case errors.As(runErr, &ce):
			out = append(out, fileErrors(runErr, list)...)
		default:
			out = append(out, annotation{Title: "mirror sync", Msg: runErr.Error()})
		}
	}
	return out
}

// writeAnnotations prints annotations, one workflow command a line.
func writeAnnotations(w io.Writer, as []annotation) {
	for _, a := range as {
		fmt.Fprintln(w, a.String())
	}
}

// annotate prints the workflow commands of a sync run when
// --github-annotations is on. It is called where sync reports errors.
func (c *SyncCmd) annotate(g *Globals, err error, rep *syncer.Report) {
	if !c.GitHubAnnotations {
		return
	}
	lock := c.Lock
	if lock == "" {
		lock = filepath.Join(filepath.Dir(c.List), "mirrors.lock")
	}
	writeAnnotations(g.stderr, syncAnnotations(c.List, lock, err, rep))
}

// lockLines finds the line of each entry of a lockfile ("source\x00mode"
// → line of its "- source:"), for annotations on verify failures.
func lockLines(data []byte) map[string]int {
	out := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "- source:") {
			continue
		}
		src := unquoteYAML(strings.TrimSpace(strings.TrimPrefix(l, "- source:")))
		for j := i + 1; j < len(lines) && j < i+4; j++ {
			m := strings.TrimSpace(lines[j])
			if strings.HasPrefix(m, "mode:") {
				out[src+"\x00"+unquoteYAML(strings.TrimSpace(strings.TrimPrefix(m, "mode:")))] = i + 1
				break
			}
		}
	}
	return out
}

func unquoteYAML(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"') {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}
