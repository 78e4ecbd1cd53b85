package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta          = []byte("meta")
	bucketBodies        = []byte("bodies")
	bucketNotifications = []byte("notifications")
	bucketInbox         = []byte("inbox")
	bucketLog           = []byte("log")
	bucketUUIDs         = []byte("uuids")
	bucketDecoded       = []byte("decoded")
	bucketDeliveries    = []byte("deliveries")
	bucketDue           = []byte("due")
	bucketPending       = []byte("pending")
	bucketDead          = []byte("dead")
	bucketAttempts      = []byte("attempts")
	bucketNotifDelivery = []byte("notif_deliveries")

	// Apple work: consumption answers and the refund ledger (consumption.go, refunds.go).
	bucketConsumption    = []byte("consumption")
	bucketConsumptionDue = []byte("consumption_due")
	bucketRefunds        = []byte("refunds")
	bucketRefundsByTime  = []byte("refunds_by_time")

	keySchema    = []byte("schema")
	keyProcessed = []byte("processed")
)

// topBuckets are created when a file is opened for the first time.
var topBuckets = [][]byte{
	bucketMeta, bucketLog, bucketBodies, bucketNotifications, bucketInbox, bucketUUIDs,
	bucketDecoded, bucketDeliveries, bucketDue, bucketPending, bucketDead, bucketAttempts,
	bucketNotifDelivery, bucketConsumption, bucketConsumptionDue, bucketRefunds, bucketRefundsByTime,
}

// growing returns the top-level bucket name of tx for writing at the end of
// its key order, as every bucket keyed by sequence number is written. bbolt
// splits a page at its bucket's FillPercent, by default half-full; for keys
// that only grow, that leaves every page behind the last one half empty, and
// the last one, which each commit rebuilds in memory from its page, holds
// 50–100 % of a page's entries. Filling pages whole halves the pages behind
// and keeps the last one at 0–100 %: a third fewer entries to rebuild on
// average, and less to collect afterwards.
func growing(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = 1
	return b
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func readU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// dueKey sorts by time first so a cursor finds the earliest due delivery first.
func dueKey(at time.Time, id uint64) []byte {
	b := make([]byte, 16)
	ns := at.UnixNano()
	if ns < 0 {
		ns = 0
	}
	binary.BigEndian.PutUint64(b, uint64(ns))
	binary.BigEndian.PutUint64(b[8:], id)
	return b
}

func parseDueKey(k []byte) (time.Time, uint64) {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))), binary.BigEndian.Uint64(k[8:])
}

func attemptKey(id uint64, n int) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, id)
	binary.BigEndian.PutUint32(b[8:], uint32(n))
	return b
}

// notifDeliveryKey indexes delivery id under notification seq, so a prefix
// scan of seq finds every delivery of one notification.
func notifDeliveryKey(seq, id uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], id)
	return b
}
