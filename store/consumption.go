package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ConsumptionState is where the answer to one CONSUMPTION_REQUEST is.
type ConsumptionState string

// Consumption states. Every state but ConsumptionPending is final.
const (
	// ConsumptionPending waits for its send time (the review delay) or for
	// a retry.
	ConsumptionPending ConsumptionState = "pending"
	// ConsumptionSent: Apple accepted the answer (HTTP 202).
	ConsumptionSent ConsumptionState = "sent"
	// ConsumptionFailed: given up; Apple refused the answer, the deadline
	// passed, or the app has no API key. Error says which.
	ConsumptionFailed ConsumptionState = "failed"
	// ConsumptionSkipped: deliberately not sent, e.g. without the
	// customer's consent, which Apple requires.
	ConsumptionSkipped ConsumptionState = "skipped"
	// ConsumptionDryRun: the answer was built and recorded, not sent.
	ConsumptionDryRun ConsumptionState = "dry_run"
	// ConsumptionCancelled: cancelled by an operator, or Apple decided the
	// refund before the answer went out.
	ConsumptionCancelled ConsumptionState = "cancelled"
)

// ConsumptionStates lists every state, pending first.
var ConsumptionStates = []ConsumptionState{
	ConsumptionPending, ConsumptionSent, ConsumptionFailed, ConsumptionSkipped, ConsumptionDryRun, ConsumptionCancelled,
}

// ErrNothingPending is returned by UpdatePendingConsumption when the
// transaction has no request waiting for an answer.
var ErrNothingPending = errors.New("no pending consumption request")

// ConsumptionAnswer is the body of a Send Consumption Information request,
// as recorded.
type ConsumptionAnswer struct {
	CustomerConsented     bool   `json:"customer_consented"`
	DeliveryStatus        string `json:"delivery_status"`
	SampleContentProvided bool   `json:"sample_content_provided"`
	ConsumptionPercentage *int32 `json:"consumption_percentage,omitempty"`
	RefundPreference      string `json:"refund_preference,omitempty"`
}

// ConsumptionFields are answer fields that replace the policy's: an
// operator's override, or what a provider_url answered. Nil fields keep
// what they would replace; an empty RefundPreference leaves it out.
type ConsumptionFields struct {
	CustomerConsented     *bool   `json:"customer_consented,omitempty"`
	DeliveryStatus        *string `json:"delivery_status,omitempty"`
	SampleContentProvided *bool   `json:"sample_content_provided,omitempty"`
	ConsumptionPercentage *int32  `json:"consumption_percentage,omitempty"`
	RefundPreference      *string `json:"refund_preference,omitempty"`
}

// IsZero reports whether f replaces nothing.
func (f ConsumptionFields) IsZero() bool { return f == ConsumptionFields{} }

// Merge returns f with the fields set in g replacing its own.
func (f ConsumptionFields) Merge(g ConsumptionFields) ConsumptionFields {
	if g.CustomerConsented != nil {
		f.CustomerConsented = g.CustomerConsented
	}
	if g.DeliveryStatus != nil {
		f.DeliveryStatus = g.DeliveryStatus
	}
	if g.SampleContentProvided != nil {
		f.SampleContentProvided = g.SampleContentProvided
	}
	if g.ConsumptionPercentage != nil {
		f.ConsumptionPercentage = g.ConsumptionPercentage
	}
	if g.RefundPreference != nil {
		f.RefundPreference = g.RefundPreference
	}
	return f
}

// NewConsumption asks for one CONSUMPTION_REQUEST to be answered. The
// processor fills it from a verified notification; Process writes it.
type NewConsumption struct {
	TransactionID         string `json:"transaction_id"`
	OriginalTransactionID string `json:"original_transaction_id,omitempty"`
	App                   string `json:"app"`
	Environment           string `json:"environment"`
	ProductID             string `json:"product_id,omitempty"`
	Price                 int64  `json:"price,omitempty"` // milliunits of Currency
	Currency              string `json:"currency,omitempty"`
	// Transaction is the decoded transaction, handed to provider_url.
	Transaction json.RawMessage `json:"transaction,omitempty"`

	Reason     string    `json:"reason,omitempty"` // consumptionRequestReason
	UUID       string    `json:"notification_uuid"`
	SignedDate time.Time `json:"signed_date,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
	// Deadline is when Apple stops waiting for the answer; SendAt is when
	// it is due (after the review delay, before the deadline).
	Deadline time.Time `json:"deadline"`
	SendAt   time.Time `json:"send_at"`
}

// ConsumptionJob is the Apple work of one transaction: every
// CONSUMPTION_REQUEST Apple sent for it (each repeat has a new
// notificationUUID), answered one at a time, oldest first.
type ConsumptionJob struct {
	TransactionID         string               `json:"transaction_id"`
	OriginalTransactionID string               `json:"original_transaction_id,omitempty"`
	App                   string               `json:"app"`
	Environment           string               `json:"environment"`
	ProductID             string               `json:"product_id,omitempty"`
	Price                 int64                `json:"price,omitempty"`
	Currency              string               `json:"currency,omitempty"`
	Transaction           json.RawMessage      `json:"transaction,omitempty"`
	Requests              []ConsumptionRequest `json:"requests"`
}

// ConsumptionRequest is one CONSUMPTION_REQUEST and what became of its
// answer.
type ConsumptionRequest struct {
	N          int              `json:"n"` // 1 for the transaction's first request
	Seq        uint64           `json:"seq"`
	UUID       string           `json:"notification_uuid"`
	Reason     string           `json:"reason,omitempty"`
	SignedDate time.Time        `json:"signed_date,omitzero"`
	ReceivedAt time.Time        `json:"received_at"`
	Deadline   time.Time        `json:"deadline"`
	SendAt     time.Time        `json:"send_at"` // next attempt while pending
	State      ConsumptionState `json:"state"`

	// Override holds an operator's changes, applied last.
	Override *ConsumptionFields `json:"override,omitempty"`
	// Answer is what was sent (or would have been, for dry_run and skipped).
	Answer *ConsumptionAnswer `json:"answer,omitempty"`
	// Source says where the answer came from: policy, provider, override.
	Source        string `json:"source,omitempty"`
	ProviderError string `json:"provider_error,omitempty"`

	Attempts   int           `json:"attempts"`
	LastStatus int           `json:"last_status,omitempty"`
	Latency    time.Duration `json:"latency_ns,omitempty"`
	// Error says why the answer failed, was skipped or cancelled, or why
	// the last attempt of a pending one did not succeed.
	Error      string    `json:"error,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// InTime reports whether the request was answered before its deadline.
func (r ConsumptionRequest) InTime() bool {
	return r.State == ConsumptionSent && !r.FinishedAt.After(r.Deadline)
}

// Head returns the index of the oldest pending request, or -1.
func (j *ConsumptionJob) Head() int {
	return slices.IndexFunc(j.Requests, func(r ConsumptionRequest) bool { return r.State == ConsumptionPending })
}

// ConsumptionResult is the outcome of one try at answering a request.
type ConsumptionResult struct {
	// State is ConsumptionPending to try again at NextAt, or a final state.
	State  ConsumptionState
	NextAt time.Time
	At     time.Time // when the try ended

	Answer        *ConsumptionAnswer
	Source        string
	ProviderError string
	// Attempted marks a try that reached for Apple (counts in Attempts).
	Attempted bool
	Status    int
	Latency   time.Duration
	Error     string
}

// consumptionDueKey sorts by send time first, then transaction id: one key
// per transaction with a pending request, for its oldest one.
func consumptionDueKey(at time.Time, txid string) []byte {
	b := make([]byte, 8, 8+len(txid))
	ns := at.UnixNano()
	if ns < 0 {
		ns = 0
	}
	binary.BigEndian.PutUint64(b, uint64(ns))
	return append(b, txid...)
}

func parseConsumptionDueKey(k []byte) (time.Time, string) {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))), string(k[8:])
}

func getConsumptionJob(tx *bolt.Tx, txid string) (ConsumptionJob, bool, error) {
	j, found, err := getJSON[ConsumptionJob](tx.Bucket(bucketConsumption), []byte(txid))
	if err != nil {
		return j, false, fmt.Errorf("consumption job %s: %w", txid, err)
	}
	return j, found, nil
}

// putConsumptionJob stores j and keeps the due index pointing at its oldest
// pending request; old is the job as it was (nil for a new one).
func putConsumptionJob(tx *bolt.Tx, old *ConsumptionJob, j ConsumptionJob) error {
	due := tx.Bucket(bucketConsumptionDue)
	if old != nil {
		if h := old.Head(); h >= 0 {
			if err := due.Delete(consumptionDueKey(old.Requests[h].SendAt, old.TransactionID)); err != nil {
				return err
			}
		}
	}
	if h := j.Head(); h >= 0 {
		if err := due.Put(consumptionDueKey(j.Requests[h].SendAt, j.TransactionID), nil); err != nil {
			return err
		}
	}
	v, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketConsumption).Put([]byte(j.TransactionID), v)
}

// addConsumption appends a request to its transaction's job, creating the
// job for the first one.
func addConsumption(tx *bolt.Tx, seq uint64, nc NewConsumption) error {
	if nc.TransactionID == "" {
		return nil
	}
	j, found, err := getConsumptionJob(tx, nc.TransactionID)
	if err != nil {
		return err
	}
	var old *ConsumptionJob
	if found {
		prev := j
		prev.Requests = slices.Clone(j.Requests)
		old = &prev
	} else {
		j = ConsumptionJob{TransactionID: nc.TransactionID}
	}
	// The latest notification describes the transaction best.
	j.OriginalTransactionID, j.App, j.Environment = nc.OriginalTransactionID, nc.App, nc.Environment
	j.ProductID, j.Price, j.Currency, j.Transaction = nc.ProductID, nc.Price, nc.Currency, nc.Transaction
	j.Requests = append(j.Requests, ConsumptionRequest{
		N: len(j.Requests) + 1, Seq: seq, UUID: nc.UUID, Reason: nc.Reason, SignedDate: nc.SignedDate,
		ReceivedAt: nc.ReceivedAt, Deadline: nc.Deadline, SendAt: nc.SendAt, State: ConsumptionPending,
	})
	return putConsumptionJob(tx, old, j)
}

// ConsumptionJob returns the job of transaction txid.
func (db *DB) ConsumptionJob(txid string) (ConsumptionJob, error) {
	var j ConsumptionJob
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var found bool
		var err error
		j, found, err = getConsumptionJob(tx, txid)
		if err == nil && !found {
			err = fmt.Errorf("consumption job for transaction %s: %w", txid, ErrNotFound)
		}
		return err
	})
	return j, err
}

// ConsumptionDue returns up to limit jobs whose oldest pending request is
// due at or before now, earliest first, leaving out those for which skip is
// true (in flight). It also returns the send time of the earliest pending
// request not yet due, or the zero time when there is none.
func (db *DB) ConsumptionDue(now time.Time, limit int, skip func(txid string) bool) ([]ConsumptionJob, time.Time, error) {
	var (
		out  []ConsumptionJob
		next time.Time
	)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConsumptionDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			at, txid := parseConsumptionDueKey(k)
			if skip != nil && skip(txid) {
				continue
			}
			if at.After(now) {
				next = at
				return nil
			}
			if len(out) == limit {
				return nil
			}
			j, found, err := getConsumptionJob(tx, txid)
			if err != nil {
				return err
			}
			if found {
				out = append(out, j)
			}
		}
		return nil
	})
	return out, next, err
}

// RecordConsumption stores the outcome of a try at answering request n of
// transaction txid: pending again at res.NextAt, or final. A final outcome
// is added to the refund ledger in the same transaction, and the next
// pending request of the transaction (if any) becomes due.
func (db *DB) RecordConsumption(txid string, n int, res ConsumptionResult) (ConsumptionJob, error) {
	var j ConsumptionJob
	err := db.update(func(tx *bolt.Tx) error {
		var found bool
		var err error
		j, found, err = getConsumptionJob(tx, txid)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("consumption job for transaction %s: %w", txid, ErrNotFound)
		}
		old := j
		old.Requests = slices.Clone(j.Requests)
		i := n - 1
		if i < 0 || i >= len(j.Requests) {
			return fmt.Errorf("consumption request %d of transaction %s: %w", n, txid, ErrNotFound)
		}
		r := &j.Requests[i]
		if r.State != ConsumptionPending {
			return fmt.Errorf("consumption request %d of transaction %s is %s: %w", n, txid, r.State, ErrNothingPending)
		}
		if res.Attempted {
			r.Attempts++
		}
		if res.Answer != nil {
			r.Answer, r.Source, r.ProviderError = res.Answer, res.Source, res.ProviderError
		}
		r.LastStatus, r.Latency, r.Error = res.Status, res.Latency, res.Error
		r.State = res.State
		if res.State == ConsumptionPending {
			r.SendAt = res.NextAt
		} else {
			r.FinishedAt = res.At
		}
		if err := putConsumptionJob(tx, &old, j); err != nil {
			return err
		}
		if r.State != ConsumptionPending {
			return ledgerAnswer(tx, j, *r)
		}
		return nil
	})
	if err != nil {
		return j, fmt.Errorf("record consumption answer: %w", err)
	}
	return j, nil
}

// UpdatePendingConsumption calls fn on every pending request of transaction
// txid, in order, and stores the result; requests fn finishes are added to
// the refund ledger. It returns the job and how many requests fn saw, or
// ErrNothingPending when there were none.
func (db *DB) UpdatePendingConsumption(txid string, fn func(r *ConsumptionRequest)) (ConsumptionJob, int, error) {
	var (
		j     ConsumptionJob
		count int
	)
	err := db.update(func(tx *bolt.Tx) error {
		var found bool
		var err error
		count = 0
		j, found, err = getConsumptionJob(tx, txid)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("consumption job for transaction %s: %w", txid, ErrNotFound)
		}
		old := j
		old.Requests = slices.Clone(j.Requests)
		var finished []ConsumptionRequest
		for i := range j.Requests {
			r := &j.Requests[i]
			if r.State != ConsumptionPending {
				continue
			}
			count++
			fn(r)
			if r.State != ConsumptionPending {
				finished = append(finished, *r)
			}
		}
		if count == 0 {
			return fmt.Errorf("transaction %s: %w", txid, ErrNothingPending)
		}
		if err := putConsumptionJob(tx, &old, j); err != nil {
			return err
		}
		for _, r := range finished {
			if err := ledgerAnswer(tx, j, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return j, 0, fmt.Errorf("update consumption: %w", err)
	}
	return j, count, nil
}

// cancelPendingConsumption cancels the pending requests of txid, because
// Apple decided the refund before they were answered.
func cancelPendingConsumption(tx *bolt.Tx, txid, why string, now time.Time) error {
	j, found, err := getConsumptionJob(tx, txid)
	if err != nil || !found || j.Head() < 0 {
		return err
	}
	old := j
	old.Requests = slices.Clone(j.Requests)
	var finished []ConsumptionRequest
	for i := range j.Requests {
		r := &j.Requests[i]
		if r.State == ConsumptionPending {
			r.State, r.Error, r.FinishedAt = ConsumptionCancelled, why, now
			finished = append(finished, *r)
		}
	}
	if err := putConsumptionJob(tx, &old, j); err != nil {
		return err
	}
	for _, r := range finished {
		if err := ledgerAnswer(tx, j, r); err != nil {
			return err
		}
	}
	return nil
}

// ConsumptionFilter selects consumption jobs. Zero fields match everything.
type ConsumptionFilter struct {
	App string
	// State matches jobs with at least one request in that state.
	State ConsumptionState
	// Since matches jobs with a request received at or after it.
	Since time.Time
}

// Match reports whether j passes the filter.
func (f ConsumptionFilter) Match(j ConsumptionJob) bool {
	if f.App != "" && j.App != f.App {
		return false
	}
	return slices.ContainsFunc(j.Requests, func(r ConsumptionRequest) bool {
		return (f.State == "" || r.State == f.State) && (f.Since.IsZero() || !r.ReceivedAt.Before(f.Since))
	})
}

// ConsumptionJobs returns up to limit jobs matching f, those with the most
// recently received request first. It reads at most MaxScan jobs; complete
// is false when it stopped there.
func (db *DB) ConsumptionJobs(f ConsumptionFilter, limit int) (out []ConsumptionJob, complete bool, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		out, complete = out[:0], true
		c := tx.Bucket(bucketConsumption).Cursor()
		scanned := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if scanned == MaxScan {
				complete = false
				break
			}
			scanned++
			var j ConsumptionJob
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("consumption job %s: %w", k, err)
			}
			if f.Match(j) {
				out = append(out, j)
			}
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b ConsumptionJob) int {
		return lastReceived(b).Compare(lastReceived(a))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, complete, err
}

func lastReceived(j ConsumptionJob) time.Time {
	if len(j.Requests) == 0 {
		return time.Time{}
	}
	return j.Requests[len(j.Requests)-1].ReceivedAt
}

// ConsumptionBacklog is what waits to be answered.
type ConsumptionBacklog struct {
	Pending int // pending requests
	// EarliestDeadline is the deadline of the pending request Apple stops
	// waiting for first; zero when none is pending.
	EarliestDeadline time.Time
}

// ConsumptionBacklog reads the pending requests through the due index.
func (db *DB) ConsumptionBacklog() (ConsumptionBacklog, error) {
	var b ConsumptionBacklog
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConsumptionDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			_, txid := parseConsumptionDueKey(k)
			j, found, err := getConsumptionJob(tx, txid)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			for _, r := range j.Requests {
				if r.State != ConsumptionPending {
					continue
				}
				b.Pending++
				if b.EarliestDeadline.IsZero() || r.Deadline.Before(b.EarliestDeadline) {
					b.EarliestDeadline = r.Deadline
				}
			}
		}
		return nil
	})
	return b, err
}
