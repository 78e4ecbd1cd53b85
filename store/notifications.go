package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// State is where a notification is in processing.
type State string

// Notification states.
const (
	// StateReceived: stored and acknowledged, not yet processed.
	StateReceived State = "received"
	// StateVerified: the signature and the app's identity checked out.
	StateVerified State = "verified"
	// StateUnverified: kept, but not trusted; Reason says why.
	StateUnverified State = "unverified"
	// StateDuplicate: a notificationUUID already held; nothing delivered.
	StateDuplicate State = "duplicate"
)

// Incoming is a request body to append, as received.
type Incoming struct {
	App         string
	Body        []byte
	RemoteAddr  string
	ContentType string
	ReceivedAt  time.Time
}

// Notification is the metadata of one stored body. Fields after State are
// filled in by processing.
type Notification struct {
	Seq         uint64    `json:"seq"`
	App         string    `json:"app"`
	ReceivedAt  time.Time `json:"received_at"`
	RemoteAddr  string    `json:"remote_addr,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Size        int       `json:"size"`
	State       State     `json:"state"`

	Reason      string    `json:"reason,omitempty"`
	UUID        string    `json:"notification_uuid,omitempty"`
	Type        string    `json:"type,omitempty"`
	Subtype     string    `json:"subtype,omitempty"`
	Environment string    `json:"environment,omitempty"`
	BundleID    string    `json:"bundle_id,omitempty"`
	ProcessedAt time.Time `json:"processed_at,omitzero"`
	// DeliveryIDs are the deliveries created for it, oldest first (some
	// may since have been deleted by retention). Files written before
	// schema 3 index them in notif_deliveries instead.
	DeliveryIDs []uint64 `json:"delivery_ids,omitempty"`
}

// Append stores a body and its metadata durably and queues it for processing.
// It returns once the commit holding it is fsynced.
func (db *DB) Append(in Incoming) (uint64, error) {
	w := &write{in: &in, err: make(chan error, 1)}
	if err := db.queue(db.appends, w); err != nil {
		return 0, fmt.Errorf("append notification: %w", err)
	}
	return w.seq, nil
}

// Notification returns the metadata of notification seq.
func (db *DB) Notification(seq uint64) (Notification, error) {
	var n Notification
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = getNotification(tx, seq)
		return err
	})
	return n, err
}

// getNotification reads seq's record, or its log entry while it has none.
func getNotification(tx *bolt.Tx, seq uint64) (Notification, error) {
	n, found, err := getJSON[Notification](tx.Bucket(bucketNotifications), u64(seq))
	if err == nil && !found && seq > processedThrough(tx) {
		var e logEntry
		if e, found, err = logEntryAt(tx, seq); found {
			n = e.notification()
		}
	}
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return n, fmt.Errorf("notification %d: %w", seq, err)
	}
	return n, nil
}

// Body returns a copy of the exact bytes received for notification seq.
func (db *DB) Body(seq uint64) ([]byte, error) {
	var body []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		body, err = getBody(tx, seq)
		if err != nil {
			return err
		}
		body = bytes.Clone(body)
		return nil
	})
	return body, err
}

// getBody finds seq's body in the ingest log, or in the bodies bucket of a
// file written before the log. The bytes are valid inside tx only.
func getBody(tx *bolt.Tx, seq uint64) ([]byte, error) {
	if v := tx.Bucket(bucketBodies).Get(u64(seq)); v != nil {
		return v, nil
	}
	if seq <= processedThrough(tx) && tx.Bucket(bucketNotifications).Get(u64(seq)) == nil {
		// Deleted by retention; its batch may still hold the bytes for others.
		return nil, fmt.Errorf("body %d: %w", seq, ErrNotFound)
	}
	e, found, err := logEntryAt(tx, seq)
	if err != nil {
		return nil, fmt.Errorf("body %d: %w", seq, err)
	}
	if !found {
		return nil, fmt.Errorf("body %d: %w", seq, ErrNotFound)
	}
	return e.Body, nil
}

// Decoded returns the decoded document stored for notification seq.
func (db *DB) Decoded(seq uint64) ([]byte, error) {
	var doc []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDecoded).Get(u64(seq))
		if v == nil {
			return fmt.Errorf("decoded %d: %w", seq, ErrNotFound)
		}
		doc = bytes.Clone(v)
		return nil
	})
	return doc, err
}

// Received is a notification waiting in the inbox, with its body.
type Received struct {
	Notification
	Body []byte
}

// MaxInboxBytes bounds the body bytes one Inbox call returns, so a batch of
// large bodies cannot take much memory.
const MaxInboxBytes = 8 << 20

// Inbox returns up to limit notifications not yet processed, with at most
// about MaxInboxBytes of bodies (always at least one): first those put back
// by Requeue, then the ingest log's, each oldest first.
func (db *DB) Inbox(limit int) ([]Received, error) {
	var out []Received
	err := db.bolt.View(func(tx *bolt.Tx) error {
		size := 0
		full := func() bool { return len(out) >= limit || size >= MaxInboxBytes }
		c := tx.Bucket(bucketInbox).Cursor()
		for k, _ := c.First(); k != nil && !full(); k, _ = c.Next() {
			seq := readU64(k)
			n, err := getNotification(tx, seq)
			if err != nil {
				return err
			}
			body, err := getBody(tx, seq)
			if err != nil {
				return err
			}
			size += len(body)
			out = append(out, Received{Notification: n, Body: bytes.Clone(body)})
		}
		if full() {
			return nil
		}
		return unprocessedLog(tx, func(e logEntry) (bool, error) {
			size += len(e.Body)
			out = append(out, Received{Notification: e.notification(), Body: bytes.Clone(e.Body)})
			return !full(), nil
		})
	})
	return out, err
}

// Outcome is the result of processing one notification: its new metadata, the
// decoded document (optional) and the deliveries it creates.
type Outcome struct {
	Seq         uint64
	State       State
	Reason      string
	UUID        string
	Type        string
	Subtype     string
	Environment string
	BundleID    string
	// Verified marks a UUID that may make later notifications duplicates.
	Verified bool
	// Decoded is stored for `payload: decoded` targets when not nil.
	Decoded []byte
	// Deliveries to create, one per matching target.
	Deliveries []NewDelivery
	// Refund and Consumption are Apple work (a refund ledger event, a
	// CONSUMPTION_REQUEST to answer), written only if the notification
	// ends up verified, not duplicate.
	Refund      *RefundEvent
	Consumption *NewConsumption
}

// Processed is the state a notification ended up in, as committed.
type Processed struct {
	Seq        uint64
	State      State
	Deliveries int
}

// Process commits outcomes: it updates each notification, removes it from the
// inbox, records its UUID, and creates its deliveries, all in one transaction.
// Dedupe happens here, inside the write transaction, so two copies processed in
// the same batch cannot both be delivered: an outcome whose UUID is already held
// becomes StateDuplicate and creates no deliveries.
func (db *DB) Process(outcomes []Outcome) ([]Processed, error) {
	var result []Processed
	err := db.update(func(tx *bolt.Tx) error {
		result = result[:0]
		now := db.opts.Now()
		for _, o := range outcomes {
			p, err := processOne(tx, o, now)
			if err != nil {
				return err
			}
			result = append(result, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("process notifications: %w", err)
	}
	return result, nil
}

func processOne(tx *bolt.Tx, o Outcome, now time.Time) (Processed, error) {
	key := u64(o.Seq)
	n, err := getNotification(tx, o.Seq)
	if err != nil {
		return Processed{}, err
	}
	n.State, n.Reason = o.State, o.Reason
	n.UUID, n.Type, n.Subtype = o.UUID, o.Type, o.Subtype
	n.Environment, n.BundleID = o.Environment, o.BundleID
	n.ProcessedAt = now

	deliveries := o.Deliveries
	if o.UUID != "" && o.State != StateDuplicate {
		if held, ok := heldUUID(tx, o.UUID); ok && held.seq != o.Seq && (held.verified || !o.Verified) {
			reason := fmt.Sprintf("notificationUUID already held by %d", held.seq)
			if !o.Verified && o.Reason != "" {
				// A forged copy of a held UUID must not pass for Apple's retry.
				reason += "; this copy is unverified: " + o.Reason
			}
			n.State, n.Reason, deliveries = StateDuplicate, reason, nil
		} else if err := tx.Bucket(bucketUUIDs).Put([]byte(o.UUID), uuidValue(o.Seq, o.Verified)); err != nil {
			return Processed{}, err
		}
	}
	if o.Decoded != nil && n.State != StateDuplicate {
		if err := growing(tx, bucketDecoded).Put(key, o.Decoded); err != nil {
			return Processed{}, err
		}
	}
	// The deliveries first, so that the record, written once, lists them.
	for _, d := range deliveries {
		d.Seq = o.Seq
		created, err := createDelivery(tx, d, now)
		if err != nil {
			return Processed{}, err
		}
		n.DeliveryIDs = append(n.DeliveryIDs, created.ID)
	}
	meta, err := json.Marshal(n)
	if err != nil {
		return Processed{}, err
	}
	if err := growing(tx, bucketNotifications).Put(key, meta); err != nil {
		return Processed{}, err
	}
	if err := tx.Bucket(bucketInbox).Delete(key); err != nil {
		return Processed{}, err
	}
	if err := advanceProcessed(tx); err != nil {
		return Processed{}, err
	}
	if n.State == StateVerified {
		if err := recordAppleWork(tx, o, now); err != nil {
			return Processed{}, err
		}
	}
	return Processed{Seq: o.Seq, State: n.State, Deliveries: len(deliveries)}, nil
}

type heldEntry struct {
	seq      uint64
	verified bool
}

func heldUUID(tx *bolt.Tx, uuid string) (heldEntry, bool) {
	v := tx.Bucket(bucketUUIDs).Get([]byte(uuid))
	if len(v) != 9 {
		return heldEntry{}, false
	}
	return heldEntry{seq: readU64(v), verified: v[8] == 1}, true
}

func uuidValue(seq uint64, verified bool) []byte {
	v := append(u64(seq), 0)
	if verified {
		v[8] = 1
	}
	return v
}

// HasUUID reports whether a verified notification with this UUID is stored.
func (db *DB) HasUUID(uuid string) (bool, error) {
	var ok bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		held, found := heldUUID(tx, uuid)
		ok = found && held.verified
		return nil
	})
	return ok, err
}

// NotificationCount returns how many notifications are stored.
func (db *DB) NotificationCount() (int, error) {
	var n int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		pending, err := unprocessedCount(tx)
		n = tx.Bucket(bucketNotifications).Stats().KeyN + pending
		return err
	})
	return n, err
}
