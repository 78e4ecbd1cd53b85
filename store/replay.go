package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Replay asks for one notification to be sent to one target again.
type Replay struct {
	NewDelivery
	// Decoded is stored as the notification's decoded document when it has
	// none yet (a `payload: decoded` target that did not exist when it was
	// processed).
	Decoded []byte
}

// Replay creates a new pending delivery, due now, for each replay, in one
// transaction. History is kept: a delivery named by ReplayOf keeps its state
// and attempts and only records ReplayedBy; a dead one leaves the dead index,
// so that replaying dead deliveries twice does not send them twice.
func (db *DB) Replay(rs []Replay) ([]Delivery, error) {
	var out []Delivery
	err := db.update(func(tx *bolt.Tx) error {
		out = out[:0]
		now := db.opts.Now()
		for _, r := range rs {
			key := u64(r.Seq)
			if _, err := getNotification(tx, r.Seq); err != nil {
				return err
			}
			if r.Payload == PayloadDecoded && tx.Bucket(bucketDecoded).Get(key) == nil {
				if r.Decoded == nil {
					return fmt.Errorf("notification %d has no decoded document for a decoded payload", r.Seq)
				}
				if err := tx.Bucket(bucketDecoded).Put(key, r.Decoded); err != nil {
					return err
				}
			}
			d, err := createDelivery(tx, r.NewDelivery, now)
			if err != nil {
				return err
			}
			if err := linkDelivery(tx, r.Seq, d.ID); err != nil {
				return err
			}
			if r.ReplayOf != 0 {
				if err := markReplayed(tx, r.ReplayOf, d.ID); err != nil {
					return err
				}
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return out, nil
}

func markReplayed(tx *bolt.Tx, id, by uint64) error {
	old, err := getDelivery(tx, id)
	if err != nil {
		return err
	}
	old.ReplayedBy = by
	if old.State == DeliveryDead {
		if dead := tx.Bucket(bucketDead).Bucket([]byte(old.Target)); dead != nil {
			if err := dead.Delete(u64(id)); err != nil {
				return err
			}
		}
	}
	return putDelivery(tx, old)
}

// Requeue moves the unverified notifications among seqs back to the inbox,
// in state received, so that processing verifies them again (after a root
// certificate or an app's identity was fixed in the configuration). Others
// are left alone. It returns the seqs requeued, in one transaction.
func (db *DB) Requeue(seqs []uint64) ([]uint64, error) {
	var done []uint64
	err := db.update(func(tx *bolt.Tx) error {
		done = done[:0]
		for _, seq := range seqs {
			n, err := getNotification(tx, seq)
			if err != nil {
				return err
			}
			if n.State != StateUnverified {
				continue
			}
			n.State = StateReceived
			v, err := json.Marshal(n)
			if err != nil {
				return err
			}
			key := u64(seq)
			if err := tx.Bucket(bucketNotifications).Put(key, v); err != nil {
				return err
			}
			if err := tx.Bucket(bucketInbox).Put(key, nil); err != nil {
				return err
			}
			done = append(done, seq)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("requeue: %w", err)
	}
	return done, nil
}
