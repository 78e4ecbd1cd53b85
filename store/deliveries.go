package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DeliveryState is where a delivery is in its life.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryDead      DeliveryState = "dead"
)

// Payload kinds a target can receive.
const (
	PayloadRaw     = "raw"
	PayloadDecoded = "decoded"
)

// NewDelivery asks for one notification to be sent to one target.
type NewDelivery struct {
	Seq         uint64 `json:"seq"`
	Target      string `json:"target"`
	Payload     string `json:"payload"`
	App         string `json:"app"`
	Environment string `json:"environment,omitempty"`
	Type        string `json:"type,omitempty"`
	UUID        string `json:"notification_uuid,omitempty"`
	// ReplayOf links a replay to the delivery it repeats (0 for none).
	ReplayOf uint64 `json:"replay_of,omitempty"`
}

// Delivery is one notification on its way to one target.
type Delivery struct {
	ID uint64 `json:"id"`
	NewDelivery
	State         DeliveryState `json:"state"`
	CreatedAt     time.Time     `json:"created_at"`
	NextAttemptAt time.Time     `json:"next_attempt_at,omitzero"`
	Attempts      int           `json:"attempts"`
	LastStatus    int           `json:"last_status,omitempty"`
	LastError     string        `json:"last_error,omitempty"`
	FinishedAt    time.Time     `json:"finished_at,omitzero"`
	// ReplayedBy is the latest delivery created to repeat this one (0 for
	// none). A replayed dead delivery leaves the dead index but stays dead.
	ReplayedBy uint64 `json:"replayed_by,omitempty"`
	// Log holds the latest attempts, at most maxKeptAttempts: Attempts
	// counts them all. Files written before it hold earlier attempts in
	// the attempts bucket.
	Log []Attempt `json:"log,omitempty"`
}

// maxKeptAttempts bounds the attempts a delivery keeps. A delivery is written
// again at every attempt, with its log: kept in the record, an attempt costs
// the commit that records it no page of another bucket, and most deliveries
// make one.
const maxKeptAttempts = 20

// Attempt is the record of one HTTP attempt of a delivery.
type Attempt struct {
	N        int           `json:"n"`
	At       time.Time     `json:"at"`
	Status   int           `json:"status,omitempty"`
	Latency  time.Duration `json:"latency_ns"`
	Error    string        `json:"error,omitempty"`
	Response string        `json:"response,omitempty"` // first bytes of the response body
}

// Next says what happens to a delivery after an attempt.
type Next struct {
	State DeliveryState
	// At is the next attempt time when State is DeliveryPending.
	At time.Time
}

func createDelivery(tx *bolt.Tx, nd NewDelivery, now time.Time) (Delivery, error) {
	b := tx.Bucket(bucketDeliveries)
	id, err := b.NextSequence()
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{ID: id, NewDelivery: nd, State: DeliveryPending, CreatedAt: now, NextAttemptAt: now}
	if err := putDelivery(tx, d); err != nil {
		return Delivery{}, err
	}
	due, err := tx.Bucket(bucketDue).CreateBucketIfNotExists([]byte(nd.Target))
	if err != nil {
		return Delivery{}, err
	}
	if err := due.Put(dueKey(d.NextAttemptAt, id), nil); err != nil {
		return Delivery{}, err
	}
	pending, err := tx.Bucket(bucketPending).CreateBucketIfNotExists([]byte(nd.Target))
	if err != nil {
		return Delivery{}, err
	}
	return d, pending.Put(u64(id), nil)
}

// linkDelivery adds delivery id to its notification's record. A notification
// not processed yet has no record: its index entry stands in.
func linkDelivery(tx *bolt.Tx, seq, id uint64) error {
	records := tx.Bucket(bucketNotifications)
	n, found, err := getJSON[Notification](records, u64(seq))
	if err != nil {
		return fmt.Errorf("notification %d: %w", seq, err)
	}
	if !found {
		return growing(tx, bucketNotifDelivery).Put(notifDeliveryKey(seq, id), nil)
	}
	n.DeliveryIDs = append(n.DeliveryIDs, id)
	v, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return records.Put(u64(seq), v)
}

func putDelivery(tx *bolt.Tx, d Delivery) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return growing(tx, bucketDeliveries).Put(u64(d.ID), v)
}

func getDelivery(tx *bolt.Tx, id uint64) (Delivery, error) {
	d, found, err := getJSON[Delivery](tx.Bucket(bucketDeliveries), u64(id))
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("delivery %d: %w", id, err)
	}
	return d, nil
}

// CreateDeliveries creates new pending deliveries, due now (replays, reverify).
func (db *DB) CreateDeliveries(nds []NewDelivery) ([]Delivery, error) {
	var out []Delivery
	err := db.update(func(tx *bolt.Tx) error {
		out = out[:0]
		now := db.opts.Now()
		for _, nd := range nds {
			if _, err := getNotification(tx, nd.Seq); err != nil {
				return err
			}
			d, err := createDelivery(tx, nd, now)
			if err != nil {
				return err
			}
			if err := linkDelivery(tx, nd.Seq, d.ID); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create deliveries: %w", err)
	}
	return out, nil
}

// Delivery returns delivery id.
func (db *DB) Delivery(id uint64) (Delivery, error) {
	var d Delivery
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		d, err = getDelivery(tx, id)
		return err
	})
	return d, err
}

// Due returns up to limit pending deliveries of target whose next attempt is at
// or before now, earliest first, leaving out those for which skip is true (in
// flight). It also returns the time of the earliest pending delivery not yet
// due, or the zero time when there is none.
func (db *DB) Due(target string, now time.Time, limit int, skip func(id uint64) bool) ([]Delivery, time.Time, error) {
	var (
		out  []Delivery
		next time.Time
	)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		due := tx.Bucket(bucketDue).Bucket([]byte(target))
		if due == nil {
			return nil
		}
		c := due.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			at, id := parseDueKey(k)
			if skip != nil && skip(id) {
				continue
			}
			if at.After(now) {
				next = at
				return nil
			}
			if len(out) == limit {
				// More are due; the caller asks again when a slot frees up.
				return nil
			}
			d, err := getDelivery(tx, id)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, next, err
}

// RecordAttempt stores an attempt of delivery id and moves the delivery on as
// next says: pending again at next.At, succeeded, or dead.
func (db *DB) RecordAttempt(id uint64, a Attempt, next Next) (Delivery, error) {
	var d Delivery
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		d, err = getDelivery(tx, id)
		if err != nil {
			return err
		}
		if d.State != DeliveryPending {
			return fmt.Errorf("delivery %d is %s", id, d.State)
		}
		d.Attempts++
		a.N = d.Attempts
		d.Log = append(d.Log, a)
		if drop := len(d.Log) - maxKeptAttempts; drop > 0 {
			d.Log = slices.Delete(d.Log, 0, drop)
		}
		d.LastStatus, d.LastError = a.Status, a.Error
		d, err = moveDelivery(tx, d, next, a.At)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("record attempt: %w", err)
	}
	return d, nil
}

// moveDelivery takes d out of the due index and puts it where next says.
func moveDelivery(tx *bolt.Tx, d Delivery, next Next, now time.Time) (Delivery, error) {
	target := []byte(d.Target)
	due := tx.Bucket(bucketDue).Bucket(target)
	if due != nil {
		if err := due.Delete(dueKey(d.NextAttemptAt, d.ID)); err != nil {
			return d, err
		}
	}
	d.State = next.State
	switch next.State {
	case DeliveryPending:
		d.NextAttemptAt = next.At
		if due == nil {
			var err error
			if due, err = tx.Bucket(bucketDue).CreateBucketIfNotExists(target); err != nil {
				return d, err
			}
		}
		if err := due.Put(dueKey(d.NextAttemptAt, d.ID), nil); err != nil {
			return d, err
		}
	default:
		d.NextAttemptAt = time.Time{}
		d.FinishedAt = now
		if pending := tx.Bucket(bucketPending).Bucket(target); pending != nil {
			if err := pending.Delete(u64(d.ID)); err != nil {
				return d, err
			}
		}
		if next.State == DeliveryDead {
			dead, err := tx.Bucket(bucketDead).CreateBucketIfNotExists(target)
			if err != nil {
				return d, err
			}
			if err := dead.Put(u64(d.ID), nil); err != nil {
				return d, err
			}
		}
	}
	return d, putDelivery(tx, d)
}

// ExpirePending marks dead the pending deliveries of target created before
// cutoff, oldest first, at most limit of them, whatever their next attempt
// time: a delivery waiting behind a failing target's probe still ages.
func (db *DB) ExpirePending(target string, cutoff time.Time, limit int, skip func(id uint64) bool) ([]Delivery, error) {
	var dead []Delivery
	err := db.update(func(tx *bolt.Tx) error {
		dead = dead[:0]
		pending := tx.Bucket(bucketPending).Bucket([]byte(target))
		if pending == nil {
			return nil
		}
		var ids []uint64
		c := pending.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < limit; k, _ = c.Next() {
			id := readU64(k)
			d, err := getDelivery(tx, id)
			if err != nil {
				return err
			}
			if !d.CreatedAt.Before(cutoff) {
				break // creation order: the rest are younger
			}
			if skip != nil && skip(id) {
				continue
			}
			ids = append(ids, id)
		}
		now := db.opts.Now()
		for _, id := range ids {
			d, err := getDelivery(tx, id)
			if err != nil {
				return err
			}
			if d.LastError == "" {
				d.LastError = "max_age passed before any attempt"
			}
			d, err = moveDelivery(tx, d, Next{State: DeliveryDead}, now)
			if err != nil {
				return err
			}
			dead = append(dead, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire deliveries: %w", err)
	}
	return dead, nil
}

// PendingStats returns how many deliveries of target are pending and when the
// oldest of them was created (zero when none).
func (db *DB) PendingStats(target string) (int, time.Time, error) {
	var (
		count  int
		oldest time.Time
	)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		pending := tx.Bucket(bucketPending).Bucket([]byte(target))
		if pending == nil {
			return nil
		}
		count = pending.Stats().KeyN
		if k, _ := pending.Cursor().First(); k != nil {
			d, err := getDelivery(tx, readU64(k))
			if err != nil {
				return err
			}
			oldest = d.CreatedAt
		}
		return nil
	})
	return count, oldest, err
}

// DeadCount returns how many dead deliveries of target are held.
func (db *DB) DeadCount(target string) (int, error) {
	var n int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if dead := tx.Bucket(bucketDead).Bucket([]byte(target)); dead != nil {
			n = dead.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// Attempts returns the recorded attempts of delivery id, in order: those the
// attempts bucket holds from before the log was kept in the record, then
// the record's.
func (db *DB) Attempts(id uint64) ([]Attempt, error) {
	var out []Attempt
	err := db.bolt.View(func(tx *bolt.Tx) error {
		prefix := u64(id)
		c := tx.Bucket(bucketAttempts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var a Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		d, err := getDelivery(tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		out = append(out, d.Log...)
		return err
	})
	return out, err
}

// Payload returns what a delivery sends: the exact stored body, or the
// decoded document for `payload: decoded`.
func (db *DB) Payload(d Delivery) ([]byte, error) {
	if d.Payload == PayloadDecoded {
		return db.Decoded(d.Seq)
	}
	return db.Body(d.Seq)
}

// OldestPending returns when the oldest pending delivery of target was
// created, or the zero time when none is pending. It reads one record.
func (db *DB) OldestPending(target string) (time.Time, error) {
	var oldest time.Time
	err := db.bolt.View(func(tx *bolt.Tx) error {
		pending := tx.Bucket(bucketPending).Bucket([]byte(target))
		if pending == nil {
			return nil
		}
		k, _ := pending.Cursor().First()
		if k == nil {
			return nil
		}
		d, err := getDelivery(tx, readU64(k))
		oldest = d.CreatedAt
		return err
	})
	return oldest, err
}
