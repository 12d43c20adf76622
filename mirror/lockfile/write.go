package lockfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Test hooks: the steps of WriteFile that tests make fail.
var (
	writeTemp  = func(f *os.File, b []byte) (int, error) { return f.Write(b) }
	syncTemp   = (*os.File).Sync
	renameTemp = os.Rename
)

// WriteFile validates f and writes Marshal() to path atomically: the bytes
// go to a temporary file in the same directory, which is fsynced and then
// renamed over path (and the directory fsynced). On any error the old file,
// if any, is left as it was and the temporary file is removed. When path
// already holds exactly these bytes it is not touched at all. A new file
// gets mode 0644; an existing file keeps its mode.
func (f *File) WriteFile(path string) (err error) {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("writing lockfile %s: %w", path, err)
	}
	data := f.Marshal()
	mode := fs.FileMode(0o644)
	if old, err := os.ReadFile(path); err == nil {
		if bytes.Equal(old, data) {
			return nil
		}
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing lockfile: %w", err)
	}

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing lockfile: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := writeTemp(tmp, data); err != nil {
		return fmt.Errorf("writing lockfile: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("writing lockfile: %w", err)
	}
	if err := syncTemp(tmp); err != nil {
		return fmt.Errorf("writing lockfile: syncing: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing lockfile: %w", err)
	}
	if err := renameTemp(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing lockfile: %w", err)
	}
	// Make the rename durable. Not every system can sync a directory;
	// the file itself is complete either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
