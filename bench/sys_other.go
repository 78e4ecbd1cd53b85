//go:build !linux

package main

import (
	"errors"
	"syscall"
)

func dieWithParent() *syscall.SysProcAttr { return nil }

func evictCache(string) error { return errors.New("evicting a file from the page cache needs Linux") }
