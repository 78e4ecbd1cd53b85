package store

import (
	"fmt"
	"syscall"
)

// dropMapped tells the kernel that the process no longer needs the pages of
// the size bytes mapped at data. The mapping is bbolt's shared read-only one,
// so its pages are the file's and nothing is lost: a later read maps them
// again from the page cache (or the disk).
func dropMapped(data uintptr, size int64) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("release mapped pages: %w", errno)
	}
	return nil
}
