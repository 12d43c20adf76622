package convert

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// scratch is the registry of the temporary files behind one converted image
// (or index). Files are created in dir (os.TempDir() when empty) and removed by
// Close, or one by one as soon as they are no longer needed.
type scratch struct {
	dir string

	mu     sync.Mutex
	files  map[string]struct{}
	closed bool
}

func newScratch(dir string) *scratch {
	return &scratch{dir: dir, files: map[string]struct{}{}}
}

// create makes a new registered temporary file.
func (s *scratch) create(pattern string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	f, err := os.CreateTemp(s.dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("creating temporary file: %w", err)
	}
	s.files[f.Name()] = struct{}{}
	return f, nil
}

// remove deletes one registered file now.
func (s *scratch) remove(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[path]; !ok {
		return nil
	}
	delete(s.files, path)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// open opens a registered file for reading; it fails after Close.
func (s *scratch) open(path string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return os.Open(path)
}

func (s *scratch) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close removes every file still registered. Readers already open keep
// working until they are closed (the files are unlinked, not truncated).
func (s *scratch) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for p := range s.files {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		delete(s.files, p)
	}
	return errors.Join(errs...)
}

// spool copies r into a new temporary file (pattern as for create), hashing
// what it writes; on any error the file is removed. The caller owns the
// file at name (remove it, or hand it to a fileLayer).
func (s *scratch) spool(pattern string, r io.Reader) (name string, hw *hashWriter, err error) {
	f, err := s.create(pattern)
	if err != nil {
		return "", nil, err
	}
	name = f.Name()
	hw = newHashWriter(f)
	bw := bufio.NewWriterSize(hw, 1<<20)
	_, err = io.Copy(bw, r)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.remove(name)
		return "", nil, err
	}
	return name, hw, nil
}
