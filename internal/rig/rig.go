// Package rig starts the real parts tests run against — a kubo daemon
// and a CNCF distribution registry, on 127.0.0.1 only — and builds test
// images. It is imported by _test.go files only.
package rig

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether we run in CI, where a missing tool is a failure,
// not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Tool finds an executable: env (if set), then PATH, then the CI cache. It
// skips the test when the tool is missing outside CI and fails it in CI.
func Tool(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); env != "" && p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "mirror-ci", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if InCI() {
		t.Fatalf("%s not found (set %s or put it on PATH); .ci/run installs it", name, env)
	}
	t.Skipf("%s not found (set %s or put it on PATH)", name, env)
	return ""
}
