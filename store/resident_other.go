//go:build !linux

package store

// dropMapped does nothing where resident memory is not trimmed.
func dropMapped(data uintptr, size int64) error { return nil }
