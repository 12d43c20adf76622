package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// startProfile starts this process's CPU profile into file under
// --profile; stop ends it and closes the file.
func (b *bench) startProfile(file string) (path string, stop func(), err error) {
	path = filepath.Join(b.o.profile, file)
	f, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return "", nil, err
	}
	return path, func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// profiled runs fn once more (not counted) while kubo records a CPU profile
// (its API serves /debug/pprof) of about expect seconds, written to file in
// the --profile directory.
func (b *bench) profiled(ctx context.Context, file string, expect float64, fn func() error) error {
	if err := b.k.reset(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(b.o.profile, 0o755); err != nil {
		return err
	}
	secs := int(expect*1.1) + 1
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b.k.apiURL, secs), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(b.o.profile, file))
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	err := fn()
	if perr := <-done; perr != nil {
		b.logf("profile %s: %v", file, perr)
	} else {
		b.logf("profile: wrote %s (%ds of kubo CPU profile)", filepath.Join(b.o.profile, file), secs)
	}
	return err
}
