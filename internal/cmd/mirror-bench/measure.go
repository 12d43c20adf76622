package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stat is one measured command (or pipeline): wall time, the CPU time of
// the processes themselves (user+sys, from wait4), their peak RSS, and the
// kubo daemon's CPU time over the same interval.
type stat struct {
	Wall    time.Duration
	CPU     time.Duration
	KuboCPU float64 // seconds
	MaxRSS  int64   // bytes, the largest of the processes
	Stdout  string
	Stderr  string
}

func (s *stat) addProc(ps *os.ProcessState) {
	if ps == nil {
		return
	}
	s.CPU += ps.UserTime() + ps.SystemTime()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		if rss := ru.Maxrss * 1024; rss > s.MaxRSS {
			s.MaxRSS = rss
		}
	}
}

// command is one process of a measurement.
type command struct {
	name string
	args []string
	env  []string // added to os.Environ()
	out  string   // file for stdout (last command of a pipeline only)
}

func cmdOf(name string, args ...string) command { return command{name: name, args: args} }

// pipe runs cmds as a shell pipeline (stdout of each into the next); the
// last one's stdout is captured. It waits for all and fails if any fails.
func (b *bench) pipe(ctx context.Context, cmds ...command) (stat, error) {
	var st stat
	execs := make([]*exec.Cmd, len(cmds))
	var stderrs []*bytes.Buffer
	for i, c := range cmds {
		cmd := exec.CommandContext(ctx, c.name, c.args...)
		cmd.Env = append(append(os.Environ(), "IPFS_TELEMETRY=off", "IPFS_PATH="+b.k.repo), c.env...)
		var eb bytes.Buffer
		cmd.Stderr = &limitedBuffer{b: &eb, max: 64 << 10}
		stderrs = append(stderrs, &eb)
		execs[i] = cmd
	}
	var closers []io.Closer
	for i := 0; i+1 < len(execs); i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return st, err
		}
		execs[i].Stdout, execs[i+1].Stdin = w, r
		closers = append(closers, r, w)
	}
	var out bytes.Buffer
	execs[len(execs)-1].Stdout = &limitedBuffer{b: &out, max: 1 << 20}
	if last := cmds[len(cmds)-1]; last.out != "" {
		f, err := os.Create(last.out)
		if err != nil {
			return st, err
		}
		defer f.Close()
		execs[len(execs)-1].Stdout = f
	}
	k0 := b.k.cpu()
	t0 := time.Now()
	for i, c := range execs {
		if err := c.Start(); err != nil {
			for _, s := range execs[:i] {
				_ = s.Process.Kill()
				_ = s.Wait()
			}
			for _, cl := range closers {
				cl.Close()
			}
			return st, fmt.Errorf("%s: %w", cmds[i].name, err)
		}
	}
	// The parent's copies of the pipe ends must go, or readers never see EOF.
	for _, cl := range closers {
		cl.Close()
	}
	var errs []string
	for i, c := range execs {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: %v: %s", cmds[i].name, strings.Join(cmds[i].args, " "), err, lastLines(stderrs[i].String(), 5)))
		}
		st.addProc(c.ProcessState)
	}
	st.Wall = time.Since(t0)
	st.KuboCPU = b.k.cpu() - k0
	st.Stdout = out.String()
	var all []string
	for _, e := range stderrs {
		all = append(all, e.String())
	}
	st.Stderr = strings.Join(all, "")
	if len(errs) > 0 {
		return st, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return st, nil
}

// exec runs one command.
func (b *bench) exec(ctx context.Context, name string, args ...string) (stat, error) {
	return b.pipe(ctx, cmdOf(name, args...))
}

// mirror runs the mirror binary with the rig's IPFS API and --insecure
// (the registry is plain HTTP on loopback).
func (b *bench) mirror(ctx context.Context, args ...string) (stat, error) {
	return b.pipe(ctx, b.mirrorCmd(args...))
}

func (b *bench) mirrorCmd(args ...string) command {
	return cmdOf(b.mirrorBin, append([]string{"--insecure", "--ipfs-api", b.k.api}, args...)...)
}

// parallel runs fn(i) for i in [0,n) with at most jobs at once and returns
// the wall time and the stats summed (MaxRSS: the largest).
func parallel(n, jobs int, fn func(i int) (stat, error)) (stat, error) {
	var (
		mu    sync.Mutex
		total stat
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, jobs)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			total.CPU += st.CPU
			total.MaxRSS = max(total.MaxRSS, st.MaxRSS)
			total.Stdout += st.Stdout
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	total.Wall = time.Since(t0)
	return total, first
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
