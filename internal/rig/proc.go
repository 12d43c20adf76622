package rig

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a process started in its own process group whose combined
// output is kept, for daemons a test starts and waits for.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

// StartReady starts cmd (its stdout and stderr together) and returns once a
// line of its output contains ready. It fails the test, with the output,
// when cmd exits first or limit passes (stopping it then). Stopping it
// when the test ends is the caller's: t.Cleanup(p.Stop) or its own.
func StartReady(t testing.TB, cmd *exec.Cmd, what, ready string, limit time.Duration) *Proc {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, ready) {
				once.Do(func() { close(up) })
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case <-up:
	case <-p.done:
		t.Fatalf("%s exited:\n%s", what, p.Log())
	case <-time.After(limit):
		p.Stop(5 * time.Second)
		t.Fatalf("%s not ready in %s:\n%s", what, limit, p.Log())
	}
	return p
}

// Log is what the process printed so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop ends the process group: SIGTERM, then SIGKILL after grace. It is a
// no-op once the process has exited.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	StopGroup(p.cmd, p.done, grace)
}
