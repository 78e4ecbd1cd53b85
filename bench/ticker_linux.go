package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// timerfdTicker wakes every interval with microsecond precision: the timerfd
// is read through Go's network poller, which returns as soon as it fires,
// where time.Sleep below a millisecond waits about a millisecond.
type timerfdTicker struct {
	f   *os.File
	buf [8]byte
}

func newTicker(interval time.Duration) (ticker, error) {
	const clockMonotonic = 1
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, fmt.Errorf("timerfd_create: %w", errno)
	}
	// struct itimerspec { it_interval, it_value } of { tv_sec, tv_nsec }.
	spec := [4]int64{
		int64(interval / time.Second), int64(interval % time.Second),
		int64(interval / time.Second), int64(interval % time.Second),
	}
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("timerfd_settime: %w", errno)
	}
	return &timerfdTicker{f: os.NewFile(fd, "timerfd")}, nil
}

// Wait blocks until the next tick and returns how many ticks passed.
func (t *timerfdTicker) Wait() int {
	if _, err := t.f.Read(t.buf[:]); err != nil {
		return 0
	}
	return int(binary.LittleEndian.Uint64(t.buf[:]))
}

func (t *timerfdTicker) Stop() { t.f.Close() }
