package spool

import "syscall"

// freeBytes is the space an unprivileged writer may still use on the
// filesystem holding path; ok is false when it cannot be told.
func freeBytes(path string) (n int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}
