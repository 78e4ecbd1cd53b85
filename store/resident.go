package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultTrimInterval is how often a DB lets go of the file pages its reads
// have mapped, and trimAbove the file size under which it does not bother:
// a small file fits in memory whole.
const (
	DefaultTrimInterval = 250 * time.Millisecond
	trimAbove           = 64 << 20
)

// trimmer lets go of the mapped file pages every interval until stop is
// closed. bbolt reads through a shared read-only mapping of the whole file,
// so every body a process step or a delivery reads stays resident in the
// process until the kernel needs the memory: with a large store, resident
// memory grows by every notification handled (about 9 KiB each), although
// none of it is the relay's own. Dropping the mapping's pages leaves them in
// the page cache, where the next read finds them again at the cost of a
// minor fault.
func (db *DB) trimmer(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			// A failed trim costs only memory, and the next tick tries again.
			_ = db.trim(trimAbove)
		}
	}
}

// trim drops the mapped pages of a file larger than above bytes. It holds a
// read transaction so that bbolt cannot remap the file meanwhile.
func (db *DB) trim(above int64) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Size() <= above {
			return nil
		}
		return dropMapped(db.bolt.Info().Data, tx.Size())
	})
}
