package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mirrorBin is the binary built once for the end-to-end tests.
var mirrorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mirror-e2e-")
	if err != nil {
		panic(err)
	}
	mirrorBin = filepath.Join(dir, "mirror")
	args := []string{"build", "-o", mirrorBin}
	if os.Getenv("MIRROR_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("building mirror: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result of one mirror run.
type result struct {
	stdout, stderr string
	code           int
}

// lastLine is the last non-empty line of stdout.
func (r result) lastLine() string {
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// mirrorRun runs the binary with env (KEY=VALUE) added.
func mirrorRun(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mirrorBin, args...)
	cmd.Env = append(append(os.Environ(), "IPFS_TELEMETRY=off", "IPFS_PATH="+filepath.Join(t.TempDir(), "no-repo"), "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache")), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mirror %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustRun runs and fails the test on a non-zero exit.
func mustRun(t testing.TB, env []string, args ...string) result {
	t.Helper()
	r := mirrorRun(t, env, args...)
	if r.code != 0 {
		t.Fatalf("mirror %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}
