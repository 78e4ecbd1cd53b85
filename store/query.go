package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxScan bounds the records one query reads. A query whose filters match
// little stops there and hands back a cursor, so that no request walks the
// whole file in one read transaction.
const MaxScan = 10000

// NotificationFilter selects notifications. Zero fields match everything.
type NotificationFilter struct {
	App         string
	Environment string
	// Type matches notificationType, or "TYPE.SUBTYPE" both of them.
	Type  string
	State State
	// Since and Until bound ReceivedAt: Since <= ReceivedAt < Until.
	Since, Until time.Time
}

// Match reports whether n passes the filter.
func (f NotificationFilter) Match(n Notification) bool {
	return (f.App == "" || n.App == f.App) &&
		(f.Environment == "" || n.Environment == f.Environment) &&
		matchType(f.Type, n.Type, n.Subtype) &&
		(f.State == "" || n.State == f.State) &&
		(f.Since.IsZero() || !n.ReceivedAt.Before(f.Since)) &&
		(f.Until.IsZero() || n.ReceivedAt.Before(f.Until))
}

// matchType matches "TYPE" or "TYPE.SUBTYPE".
func matchType(want, typ, subtype string) bool {
	if want == "" {
		return true
	}
	if t, s, ok := strings.Cut(want, "."); ok {
		return t == typ && s == subtype
	}
	return want == typ
}

// Notifications returns up to limit notifications matching f, newest first,
// starting below seq before (0: from the newest). next is the cursor for the
// following page, 0 when there is none. A page may hold fewer than limit
// notifications while next is not 0: the scan stops after MaxScan records.
// With f.Since set, the scan ends at the first notification received before
// it, since sequence numbers follow arrival.
func (db *DB) Notifications(f NotificationFilter, before uint64, limit int) (out []Notification, next uint64, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		out, next = out[:0], 0
		scanned := 0
		return newestFirst(tx, before, func(n Notification) (bool, error) {
			if len(out) == limit || scanned == MaxScan {
				next = n.Seq + 1 // resume at n
				return false, nil
			}
			scanned++
			if !f.Since.IsZero() && n.ReceivedAt.Before(f.Since) {
				return false, nil
			}
			if f.Match(n) {
				out = append(out, n)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list notifications: %w", err)
	}
	return out, next, nil
}

// DeliveryFilter selects deliveries. Zero fields match everything.
type DeliveryFilter struct {
	Target string
	State  DeliveryState
	// Seq selects the deliveries of one notification.
	Seq         uint64
	App         string
	Environment string
	Type        string // notificationType
	// Since and Until bound CreatedAt: Since <= CreatedAt < Until.
	Since, Until time.Time
}

// Match reports whether d passes the filter.
func (f DeliveryFilter) Match(d Delivery) bool {
	return (f.Target == "" || d.Target == f.Target) &&
		(f.State == "" || d.State == f.State) &&
		(f.Seq == 0 || d.Seq == f.Seq) &&
		(f.App == "" || d.App == f.App) &&
		(f.Environment == "" || d.Environment == f.Environment) &&
		(f.Type == "" || d.Type == f.Type) &&
		(f.Since.IsZero() || !d.CreatedAt.Before(f.Since)) &&
		(f.Until.IsZero() || d.CreatedAt.Before(f.Until))
}

// Deliveries returns up to limit deliveries matching f, newest first,
// starting below id before (0: from the newest), and the cursor of the next
// page (0 when there is none). Like Notifications it reads at most MaxScan
// records. With f.Seq set it reads only that notification's deliveries.
func (db *DB) Deliveries(f DeliveryFilter, before uint64, limit int) (out []Delivery, next uint64, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		out, next = out[:0], 0
		if f.Seq != 0 {
			var err error
			out, next, err = notificationPage(tx, f, before, limit)
			return err
		}
		c := tx.Bucket(bucketDeliveries).Cursor()
		start := before
		if start == 0 {
			start = ^uint64(0)
		}
		k, _ := c.Seek(u64(start))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for scanned := 0; k != nil; k, _ = c.Prev() {
			id := readU64(k)
			if len(out) == limit || scanned == MaxScan {
				next = id + 1
				return nil
			}
			scanned++
			d, err := getDelivery(tx, id)
			if err != nil {
				return err
			}
			if !f.Since.IsZero() && d.CreatedAt.Before(f.Since) {
				return nil // ids follow creation
			}
			if f.Match(d) {
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list deliveries: %w", err)
	}
	return out, next, nil
}

// NotificationDeliveries returns every delivery of notification seq, oldest
// first.
func (db *DB) NotificationDeliveries(seq uint64) ([]Delivery, error) {
	var out []Delivery
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		out, err = notificationDeliveries(tx, seq)
		return err
	})
	return out, err
}

func notificationDeliveries(tx *bolt.Tx, seq uint64) ([]Delivery, error) {
	ids, err := deliveryIDsOf(tx, seq)
	if err != nil {
		return nil, err
	}
	var out []Delivery
	for _, id := range ids {
		d, err := getDelivery(tx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted by retention
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// notificationPage is Deliveries for one notification (f.Seq).
func notificationPage(tx *bolt.Tx, f DeliveryFilter, before uint64, limit int) ([]Delivery, uint64, error) {
	ds, err := notificationDeliveries(tx, f.Seq)
	if err != nil {
		return nil, 0, err
	}
	var out []Delivery
	for _, d := range slices.Backward(ds) {
		if before != 0 && d.ID >= before || !f.Match(d) {
			continue
		}
		if len(out) == limit {
			return out, d.ID + 1, nil
		}
		out = append(out, d)
	}
	return out, 0, nil
}

// deliveryIDsOf returns the ids of notification seq's deliveries, oldest
// first, whether or not they still exist (see deliveryIDs).
func deliveryIDsOf(tx *bolt.Tx, seq uint64) ([]uint64, error) {
	n, _, err := getJSON[Notification](tx.Bucket(bucketNotifications), u64(seq))
	if err != nil {
		return nil, fmt.Errorf("notification %d: %w", seq, err)
	}
	return deliveryIDs(tx, seq, n.DeliveryIDs), nil
}

// deliveryIDs returns, oldest first, the ids listed in notification seq's
// record and those notif_deliveries indexes for it (files written before
// schema 3, and deliveries created before the notification had a record).
func deliveryIDs(tx *bolt.Tx, seq uint64, listed []uint64) []uint64 {
	ids := slices.Clone(listed)
	prefix := u64(seq)
	c := tx.Bucket(bucketNotifDelivery).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, readU64(k[8:]))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// DeadLetters returns up to limit dead deliveries of target not yet replayed,
// matching f, with ids above after, oldest first. Pass the last id returned
// as after to read on.
func (db *DB) DeadLetters(target string, f DeliveryFilter, after uint64, limit int) ([]Delivery, error) {
	var out []Delivery
	err := db.bolt.View(func(tx *bolt.Tx) error {
		out = out[:0]
		dead := tx.Bucket(bucketDead).Bucket([]byte(target))
		if dead == nil {
			return nil
		}
		c := dead.Cursor()
		for k, _ := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, _ = c.Next() {
			d, err := getDelivery(tx, readU64(k))
			if err != nil {
				return err
			}
			if f.Match(d) {
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead deliveries of %s: %w", target, err)
	}
	return out, nil
}

// InInbox reports whether notification seq still waits to be processed.
func (db *DB) InInbox(seq uint64) (bool, error) {
	var in bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		key := u64(seq)
		in = tx.Bucket(bucketInbox).Get(key) != nil
		if in || seq <= processedThrough(tx) || tx.Bucket(bucketNotifications).Get(key) != nil {
			return nil
		}
		_, inLog, err := logEntryAt(tx, seq)
		in = inLog
		return err
	})
	return in, err
}

// NotificationCounts is a breakdown of recent notifications.
type NotificationCounts struct {
	// Stored is how many notifications the file holds; Inbox how many of
	// them wait to be processed; LastSeq the newest sequence number.
	Stored, Inbox int
	LastSeq       uint64
	// Scanned is how many recent notifications the breakdown covers;
	// Complete is false when MaxScan cut it short of Since.
	Scanned  int
	Complete bool
	ByState  map[State]int
	// ByAppType counts by app, then by notificationType ("" while received).
	ByAppType map[string]map[string]int
}

// CountNotifications counts the notifications received since since by state
// and by app and type, reading at most MaxScan of them, newest first.
func (db *DB) CountNotifications(since time.Time) (NotificationCounts, error) {
	c := NotificationCounts{ByState: map[State]int{}, ByAppType: map[string]map[string]int{}, Complete: true}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNotifications)
		pending, err := unprocessedCount(tx)
		if err != nil {
			return err
		}
		c.Stored = b.Stats().KeyN + pending
		c.Inbox = tx.Bucket(bucketInbox).Stats().KeyN + pending
		c.LastSeq = b.Sequence()
		return newestFirst(tx, 0, func(n Notification) (bool, error) {
			if c.Scanned == MaxScan {
				c.Complete = false
				return false, nil
			}
			if n.ReceivedAt.Before(since) {
				return false, nil
			}
			c.Scanned++
			c.ByState[n.State]++
			byType := c.ByAppType[n.App]
			if byType == nil {
				byType = map[string]int{}
				c.ByAppType[n.App] = byType
			}
			byType[n.Type]++
			return true, nil
		})
	})
	if err != nil {
		return c, fmt.Errorf("count notifications: %w", err)
	}
	return c, nil
}

// TargetBacklog is what the store knows of one target's deliveries.
type TargetBacklog struct {
	Pending int
	// OldestPending is when the oldest pending delivery was created (zero
	// when none is pending).
	OldestPending time.Time
	// Dead counts dead deliveries not yet replayed.
	Dead int
	// LastError is the error of the oldest failing pending delivery, else of
	// the newest dead one (preferring one that was tried); LastErrorDelivery
	// names that delivery.
	LastError         string
	LastErrorDelivery uint64
}

// lastErrorScan bounds the pending deliveries read for Backlog's LastError.
const lastErrorScan = 100

// Backlog reads target's pending and dead indexes.
func (db *DB) Backlog(target string) (TargetBacklog, error) {
	var tb TargetBacklog
	err := db.bolt.View(func(tx *bolt.Tx) error {
		name := []byte(target)
		if pending := tx.Bucket(bucketPending).Bucket(name); pending != nil {
			tb.Pending = pending.Stats().KeyN
			c := pending.Cursor()
			n := 0
			for k, _ := c.First(); k != nil && n < lastErrorScan; k, _ = c.Next() {
				d, err := getDelivery(tx, readU64(k))
				if err != nil {
					return err
				}
				if n == 0 {
					tb.OldestPending = d.CreatedAt
				}
				n++
				if d.LastError != "" {
					tb.LastError, tb.LastErrorDelivery = d.LastError, d.ID
					break
				}
			}
		}
		if dead := tx.Bucket(bucketDead).Bucket(name); dead != nil {
			tb.Dead = dead.Stats().KeyN
			if tb.LastError == "" {
				d, ok, err := newestDeadError(tx, dead)
				if err != nil {
					return err
				}
				if ok {
					tb.LastError, tb.LastErrorDelivery = d.LastError, d.ID
				}
			}
		}
		return nil
	})
	if err != nil {
		return tb, fmt.Errorf("backlog of %s: %w", target, err)
	}
	return tb, nil
}

// newestDeadError returns the newest dead delivery that was tried at least
// once, among the newest lastErrorScan, else the newest: "max_age passed
// before any attempt" says less than the target's own answer.
func newestDeadError(tx *bolt.Tx, dead *bolt.Bucket) (Delivery, bool, error) {
	var newest Delivery
	c := dead.Cursor()
	n := 0
	for k, _ := c.Last(); k != nil && n < lastErrorScan; k, _ = c.Prev() {
		d, err := getDelivery(tx, readU64(k))
		if err != nil {
			return Delivery{}, false, err
		}
		if d.Attempts > 0 {
			return d, true, nil
		}
		if n == 0 {
			newest = d
		}
		n++
	}
	return newest, n > 0, nil
}

// indexDeliveries builds notif_deliveries from the deliveries bucket, for
// files written before the index existed.
func indexDeliveries(tx *bolt.Tx) error {
	idx := tx.Bucket(bucketNotifDelivery)
	return tx.Bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("delivery %d: %w", readU64(k), err)
		}
		return idx.Put(notifDeliveryKey(d.Seq, d.ID), nil)
	})
}
