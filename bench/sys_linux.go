package main

import (
	"fmt"
	"os"
	"syscall"
)

// dieWithParent makes a server get SIGKILL if the benchmark dies first, so
// no server outlives it.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// evictCache drops path's pages from the page cache (its pages only, not
// the machine's), so the next start reads the file from disk as after a
// reboot. The file must have no dirty pages: the store fsyncs every commit.
func evictCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	const posixFadvDontneed = 4
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, posixFadvDontneed, 0, 0); errno != 0 {
		return fmt.Errorf("fadvise %s: %w", path, errno)
	}
	return nil
}
