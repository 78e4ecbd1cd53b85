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

// trimmer lets go of the mapped file pages every interval until Close.
// bbolt reads through a shared read-only mapping of the whole file, so every
// page a read touches stays resident in the process until the kernel needs
// the memory: the bodies processed and delivered, and the pages
// each commit writes to new places (copy on write), which the next
// transaction reads. With a large store, resident memory grew by about
// 9 KiB per notification at 1 000 req/s and by up to 200 MiB a second while
// the backlog of a flood was delivered, although none of it is the relay's
// own. Dropping the mapping's pages leaves them in the page cache, where the
// next read finds them again at the cost of a minor fault. Each trim is
// followed by a burst of them, as the next transactions map the pages every
// commit reads again, so trimming more often costs the ack tail: every 100 ms
// the backlog of a flood peaked at 72–77 MiB instead of 93–104, but ack p99
// at 1 000 req/s was 7.5, 8.5 and 3.9 ms against 4.3, 6.8 and 4.6 at 250 ms.
func (db *DB) trimmer(interval time.Duration) {
	defer close(db.trimDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-db.stopTrim:
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
