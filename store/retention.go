package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention sizes: a sweep deletes at most SweepKeys keys per transaction
// and reads at most sweepScan records to find them, so that it never holds
// the writer (and the ingest path behind it) for long.
const (
	SweepKeys = 500
	sweepScan = 2000
)

// RetentionPolicy says what a sweep deletes. A zero cutoff deletes nothing
// of its kind.
type RetentionPolicy struct {
	// Succeeded and Dead delete deliveries in that state that finished
	// before the cutoff, with their attempts.
	Succeeded, Dead time.Time
	// Notifications deletes processed notifications received before the
	// cutoff that have no delivery left (body, metadata, decoded document,
	// and the notificationUUID entry they hold); Unverified is the cutoff
	// for unverified ones. A notification in the inbox, or with any delivery
	// still stored (pending, or finished but kept), is never deleted.
	Notifications, Unverified time.Time
}

// SweepResult counts what a sweep deleted.
type SweepResult struct {
	Deliveries, Notifications int
}

// Sweep deletes what p says in small transactions through the writer, and
// stops early when ctx ends.
func (db *DB) Sweep(ctx context.Context, p RetentionPolicy) (SweepResult, error) {
	var res SweepResult
	n, err := db.sweepDeliveries(ctx, p)
	res.Deliveries = n
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	n, err = db.sweepNotifications(ctx, p)
	res.Notifications = n
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	return res, nil
}

func (p RetentionPolicy) deliveryExpired(d Delivery) bool {
	switch d.State {
	case DeliverySucceeded:
		return !p.Succeeded.IsZero() && d.FinishedAt.Before(p.Succeeded)
	case DeliveryDead:
		return !p.Dead.IsZero() && d.FinishedAt.Before(p.Dead)
	}
	return false
}

func (p RetentionPolicy) notificationExpired(n Notification) bool {
	cutoff := p.Notifications
	switch n.State {
	case StateReceived:
		return false
	case StateUnverified:
		cutoff = p.Unverified
	}
	return !cutoff.IsZero() && n.ReceivedAt.Before(cutoff)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sweepDeliveries walks deliveries oldest first. Ids follow creation and a
// delivery finishes after it is created, so the walk ends at the first one
// created after both cutoffs.
func (db *DB) sweepDeliveries(ctx context.Context, p RetentionPolicy) (int, error) {
	stop := later(p.Succeeded, p.Dead)
	if stop.IsZero() {
		return 0, nil
	}
	return db.sweepBucket(ctx, bucketDeliveries,
		func(_ *bolt.Tx, id uint64, v []byte) (int, bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return 0, false, fmt.Errorf("delivery %d: %w", id, err)
			}
			if !d.CreatedAt.Before(stop) {
				return 0, true, nil
			}
			if p.deliveryExpired(d) {
				return 3 + d.Attempts, false, nil // the record, its indexes, its attempts
			}
			return 0, false, nil
		},
		func(tx *bolt.Tx, id uint64) (bool, error) {
			d, err := getDelivery(tx, id)
			if err != nil || !p.deliveryExpired(d) {
				return false, nil // gone already, or changed since it was read
			}
			return true, deleteDelivery(tx, d)
		})
}

// sweepBucket walks bucket oldest first, in rounds that never hold a
// transaction long. A read transaction scans at most sweepScan records, asking
// pick of each whether to delete it (a cost in keys, 0 for no) and whether
// the walk is over; a write transaction then hands the candidates, at most
// SweepKeys keys' worth, to remove, which checks each again (it may have
// changed in between) and deletes it. It returns how many remove deleted.
func (db *DB) sweepBucket(ctx context.Context, bucket []byte,
	pick func(tx *bolt.Tx, id uint64, v []byte) (cost int, done bool, err error),
	remove func(tx *bolt.Tx, id uint64) (bool, error),
) (int, error) {
	deleted := 0
	var after uint64
	for {
		if ctx.Err() != nil {
			return deleted, nil
		}
		var (
			ids  []uint64
			keys int
			more bool
		)
		err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			scanned := 0
			for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
				if scanned == sweepScan || keys >= SweepKeys {
					more = true
					return nil
				}
				scanned++
				after = readU64(k)
				cost, done, err := pick(tx, after, v)
				if err != nil || done {
					return err
				}
				if cost > 0 {
					ids = append(ids, after)
					keys += cost
				}
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		if len(ids) > 0 {
			n := 0
			err := db.update(func(tx *bolt.Tx) error {
				n = 0
				for _, id := range ids {
					ok, err := remove(tx, id)
					if err != nil {
						return err
					}
					if ok {
						n++
					}
				}
				return nil
			})
			if err != nil {
				return deleted, err
			}
			deleted += n
		}
		if !more {
			return deleted, nil
		}
	}
}

func deleteDelivery(tx *bolt.Tx, d Delivery) error {
	key := u64(d.ID)
	c := tx.Bucket(bucketAttempts).Cursor()
	for k, _ := c.Seek(key); k != nil && bytes.HasPrefix(k, key); k, _ = c.Seek(key) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	if dead := tx.Bucket(bucketDead).Bucket([]byte(d.Target)); dead != nil {
		if err := dead.Delete(key); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketNotifDelivery).Delete(notifDeliveryKey(d.Seq, d.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketDeliveries).Delete(key)
}

// sweepNotifications walks notifications oldest first and ends at the first
// one received after both of its cutoffs.
func (db *DB) sweepNotifications(ctx context.Context, p RetentionPolicy) (int, error) {
	stop := later(p.Notifications, p.Unverified)
	if stop.IsZero() {
		return 0, nil
	}
	return db.sweepBucket(ctx, bucketNotifications,
		func(tx *bolt.Tx, seq uint64, v []byte) (int, bool, error) {
			var n Notification
			if err := json.Unmarshal(v, &n); err != nil {
				return 0, false, fmt.Errorf("notification %d: %w", seq, err)
			}
			if !n.ReceivedAt.Before(stop) {
				return 0, true, nil
			}
			if deletableNotification(tx, n, p) {
				return 5, false, nil // about five keys: body, metadata, decoded document, UUID entry
			}
			return 0, false, nil
		},
		func(tx *bolt.Tx, seq uint64) (bool, error) {
			n, err := getNotification(tx, seq)
			if err != nil || !deletableNotification(tx, n, p) {
				return false, nil // gone, or changed since it was read
			}
			return true, deleteNotification(tx, n)
		})
}

// deletableNotification: old enough, processed, and no delivery left.
func deletableNotification(tx *bolt.Tx, n Notification, p RetentionPolicy) bool {
	if !p.notificationExpired(n) {
		return false
	}
	key := u64(n.Seq)
	if n.Seq > processedThrough(tx) || tx.Bucket(bucketInbox).Get(key) != nil {
		return false
	}
	deliveries := tx.Bucket(bucketDeliveries)
	for _, id := range deliveryIDs(tx, n.Seq, n.DeliveryIDs) {
		if deliveries.Get(u64(id)) != nil {
			return false
		}
	}
	return true
}

func deleteNotification(tx *bolt.Tx, n Notification) error {
	key := u64(n.Seq)
	if n.UUID != "" {
		if held, ok := heldUUID(tx, n.UUID); ok && held.seq == n.Seq {
			if err := tx.Bucket(bucketUUIDs).Delete([]byte(n.UUID)); err != nil {
				return err
			}
		}
	}
	for _, b := range [][]byte{bucketDecoded, bucketBodies, bucketNotifications} {
		if err := tx.Bucket(b).Delete(key); err != nil {
			return err
		}
	}
	return dropBatchIfDone(tx, n.Seq)
}
