package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrLocked is returned by Compact while another process (a running
// asnrelay serve) holds the database file.
var ErrLocked = errors.New("database is in use by another process: stop asnrelay serve first")

// compactTxSize bounds the bytes copied per transaction while compacting.
const compactTxSize = 64 << 20

// CompactResult gives the file's size before and after compacting.
type CompactResult struct {
	Before, After int64
}

// Compact rewrites the database at path into a fresh file and renames it
// into place, reclaiming the space retention freed (bbolt never shrinks a
// file by itself). It needs the file to itself: it holds the file lock for
// the whole copy, and fails with ErrLocked when another process has it.
func Compact(path string, lockTimeout time.Duration) (CompactResult, error) {
	var res CompactResult
	if lockTimeout <= 0 {
		lockTimeout = time.Second
	}
	fi, err := os.Stat(path)
	if err != nil {
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	res.Before = fi.Size()
	// Read-only still takes a (shared) lock: no daemon can start meanwhile.
	src, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return res, fmt.Errorf("compact %s: %w", path, ErrLocked)
		}
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	defer src.Close()

	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		dst.Close()
		os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable
		d.Close()
	}
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	return res, nil
}
