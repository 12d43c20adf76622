//go:build !linux

package serve

import "io/fs"

// fileStamp is what identifies a file's content short of hashing it; off
// Linux, its size and modification time only (see stamp_linux.go).
type fileStamp struct {
	size, mtime int64
}

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
