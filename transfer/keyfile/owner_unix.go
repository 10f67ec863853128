//go:build unix

package keyfile

import (
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives the file at path the owner and group of old, so a key file
// replaced by root stays readable by the service account that owned it.
func keepOwner(path string, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if now, ok := info.Sys().(*syscall.Stat_t); ok && now.Uid == st.Uid && now.Gid == st.Gid {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

// linkCount is how many directory entries still name the open file.
func linkCount(fh *os.File) (uint64, bool) {
	info, err := fh.Stat()
	if err != nil {
		return 0, false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
