//go:build linux

package node

import (
	"os"
	"syscall"
	"time"
)

// changeTime returns a file's change time (ctime) and inode number.
func changeTime(fi os.FileInfo) (time.Time, uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, 0, false
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec), st.Ino, true
}
