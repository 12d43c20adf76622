//go:build linux

package serve

import (
	"io/fs"
	"syscall"
)

// fileStamp is what identifies a file's content short of hashing it: its
// device and inode (a file replaced by a rename is another), size,
// modification time and change time. A write through the file system
// changes the change time, which no process can set back (utimes(2) sets
// it to now): a file whose stamp is the one recorded when it was verified
// holds the verified bytes, as far as the file system knows.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), uint64(sys.Ino) // not uint64 on every GOARCH
		st.ctime = sys.Ctim.Nano()
	}
	return st
}
