package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/syncer"
)

func TestAnnotations(t *testing.T) {
	ws := t.TempDir()
	t.Setenv("GITHUB_WORKSPACE", ws)
	list := filepath.Join(ws, "ci", "mirrors.yaml")
	for _, c := range []struct {
		a    annotation
		want string
	}{
		{annotation{File: list, Line: 3, Column: 5, Title: "mirrors.yaml: images[0].tags", Msg: "bad: 50% done,\nsecond line"},
			"::error file=ci/mirrors.yaml,line=3,col=5,title=mirrors.yaml%3A images[0].tags::bad: 50%25 done,%0Asecond line"},
		{annotation{File: "/elsewhere/x.yaml", Line: 2, Msg: "m"}, "::error file=/elsewhere/x.yaml,line=2::m"},
		{annotation{File: list, Column: 4, Msg: "no line, no column"}, "::error file=ci/mirrors.yaml::no line, no column"},
		{annotation{Level: "warning", Title: "a,b", Msg: "c"}, "::warning title=a%2Cb::c"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}

	// A mirror list's errors, at their positions; an I/O error names the file.
	joined := errors.Join(&config.Error{File: list, Line: 4, Column: 5, Field: "images[0].tagz", Msg: "unknown field"},
		&config.Error{File: list, Line: 7, Field: "", Msg: "x"})
	got := syncAnnotations(list, "", fmt.Errorf("wrapped: %w", joined), nil)
	if len(got) != 2 || got[0].String() != "::error file=ci/mirrors.yaml,line=4,col=5,title=mirrors.yaml%3A images[0].tagz::unknown field" || got[1].Line != 7 {
		t.Errorf("%v", got)
	}
	lockErr := errors.Join(&lockfile.Error{File: "mirrors.lock", Line: 9, Column: 10, Field: "images[1].cid", Msg: "not a CID"})
	if got := syncAnnotations(list, "mirrors.lock", lockErr, nil); len(got) != 1 || got[0].Line != 9 || got[0].File != "mirrors.lock" {
		t.Errorf("%v", got)
	}
	if got := syncAnnotations(list, "", configError{os.ErrPermission}, nil); len(got) != 1 || got[0].File != list {
		t.Errorf("%v", got)
	}
	// Failed images at their entries.
	rep := &syncer.Report{Images: []*syncer.ImageReport{
		{Source: "a:1", Mode: "plain", Status: syncer.StatusNew},
		{Source: "b:1", Mode: "estargz", Status: syncer.StatusFailed, Error: "boom", File: list, Line: 12},
	}}
	if got := syncAnnotations(list, "", nil, rep); len(got) != 1 || got[0].String() != "::error file=ci/mirrors.yaml,line=12,title=mirror sync%3A b%3A1 (estargz)::boom" {
		t.Errorf("%v", got)
	}
}

func TestLockLines(t *testing.T) {
	lock := "# header\nversion: 1\nimages:\n  - source: docker.io/library/alpine:3.20\n    mode: estargz\n    digest: sha256:x\n  - source: \"weird: name\"\n    mode: plain\n"
	got := lockLines([]byte(lock))
	if got["docker.io/library/alpine:3.20\x00estargz"] != 4 || got["weird: name\x00plain"] != 7 || len(got) != 2 {
		t.Errorf("%v", got)
	}
}
