package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ledger event types: the notificationTypes that update the refund ledger.
const (
	RefundEventConsumptionRequest = "CONSUMPTION_REQUEST"
	RefundEventRefund             = "REFUND"
	RefundEventDeclined           = "REFUND_DECLINED"
	RefundEventReversed           = "REFUND_REVERSED"
	RefundEventRevoke             = "REVOKE"
)

// RefundOutcome is the latest word on a transaction in the ledger.
type RefundOutcome string

// Refund outcomes, one per ledger event type.
const (
	RefundRequested RefundOutcome = "requested" // the customer asked; Apple has not decided
	RefundRefunded  RefundOutcome = "refunded"  // Apple refunded (REFUND)
	RefundDeclined  RefundOutcome = "declined"  // Apple declined (REFUND_DECLINED): won back
	RefundReversed  RefundOutcome = "reversed"  // Apple reversed a refund (REFUND_REVERSED)
	RefundRevoked   RefundOutcome = "revoked"   // Family Sharing access revoked (REVOKE)
)

// RefundOutcomes lists every outcome.
var RefundOutcomes = []RefundOutcome{RefundRequested, RefundRefunded, RefundDeclined, RefundReversed, RefundRevoked}

// outcomeOf maps a ledger event type to the outcome it sets.
var outcomeOf = map[string]RefundOutcome{
	RefundEventConsumptionRequest: RefundRequested,
	RefundEventRefund:             RefundRefunded,
	RefundEventDeclined:           RefundDeclined,
	RefundEventReversed:           RefundReversed,
	RefundEventRevoke:             RefundRevoked,
}

// IsRefundEvent reports whether notificationType typ updates the ledger.
func IsRefundEvent(typ string) bool {
	_, ok := outcomeOf[typ]
	return ok
}

// RefundEvent is one verified notification for the ledger. The processor
// fills it from the notification and its transaction; Process writes it.
type RefundEvent struct {
	Type                  string `json:"type"` // one of the RefundEvent* types
	TransactionID         string `json:"transaction_id"`
	OriginalTransactionID string `json:"original_transaction_id,omitempty"`
	App                   string `json:"app"`
	Environment           string `json:"environment"`
	ProductID             string `json:"product_id,omitempty"`
	Price                 int64  `json:"price,omitempty"` // milliunits of Currency
	Currency              string `json:"currency,omitempty"`
	// Reason is the consumptionRequestReason of a CONSUMPTION_REQUEST.
	Reason string `json:"reason,omitempty"`
	// Revocation fields of the transaction (REFUND, REVOKE).
	RevocationType       string `json:"revocation_type,omitempty"`
	RevocationReason     *int32 `json:"revocation_reason,omitempty"`
	RevocationPercentage int64  `json:"revocation_percentage,omitempty"` // milliunits: 100000 is 100 %

	UUID       string    `json:"notification_uuid"`
	SignedDate time.Time `json:"signed_date,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
}

// Refund is the ledger's record of one transaction: what the customer
// asked, what we answered, and what Apple decided.
type Refund struct {
	TransactionID         string `json:"transaction_id"`
	OriginalTransactionID string `json:"original_transaction_id,omitempty"`
	App                   string `json:"app"`
	Environment           string `json:"environment"`
	ProductID             string `json:"product_id,omitempty"`
	Price                 int64  `json:"price"` // milliunits of Currency
	Currency              string `json:"currency,omitempty"`

	// Requests counts CONSUMPTION_REQUEST notifications; Reasons lists
	// their reasons in order.
	Requests int      `json:"requests"`
	Reasons  []string `json:"reasons,omitempty"`
	// Outcome is set by the latest event; OutcomeAt is when it arrived.
	Outcome   RefundOutcome `json:"outcome"`
	OutcomeAt time.Time     `json:"outcome_at"`
	// RefundedAmount is what Apple refunded and did not reverse, in
	// milliunits of Currency.
	RefundedAmount int64 `json:"refunded_amount"`

	Events  []RefundEntry  `json:"events"`
	Answers []RefundAnswer `json:"answers,omitempty"`

	FirstSeen time.Time `json:"first_seen"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RefundEntry is one notification in a ledger record.
type RefundEntry struct {
	Type             string    `json:"type"`
	Seq              uint64    `json:"seq"`
	UUID             string    `json:"notification_uuid"`
	At               time.Time `json:"at"` // received
	SignedDate       time.Time `json:"signed_date,omitzero"`
	Reason           string    `json:"reason,omitempty"`
	RevocationType   string    `json:"revocation_type,omitempty"`
	RevocationReason *int32    `json:"revocation_reason,omitempty"`
	// Amount is the money the event moved, in milliunits: refunded
	// (REFUND), kept (REFUND_DECLINED) or given back (REFUND_REVERSED).
	Amount int64 `json:"amount,omitempty"`
}

// RefundAnswer is the final state of one answer to a CONSUMPTION_REQUEST.
type RefundAnswer struct {
	N                int              `json:"n"`
	State            ConsumptionState `json:"state"`
	RefundPreference string           `json:"refund_preference,omitempty"`
	Source           string           `json:"source,omitempty"`
	At               time.Time        `json:"at"`
	Deadline         time.Time        `json:"deadline"`
	InTime           bool             `json:"in_time"`
	Status           int              `json:"status,omitempty"`
	Error            string           `json:"error,omitempty"`
}

// refundTimeKey sorts ledger records by when they were first seen.
func refundTimeKey(at time.Time, txid string) []byte {
	b := make([]byte, 8, 8+len(txid))
	ns := at.UnixNano()
	if ns < 0 {
		ns = 0
	}
	binary.BigEndian.PutUint64(b, uint64(ns))
	return append(b, txid...)
}

func getRefund(tx *bolt.Tx, txid string) (Refund, bool, error) {
	r, found, err := getJSON[Refund](tx.Bucket(bucketRefunds), []byte(txid))
	if err != nil {
		return r, false, fmt.Errorf("refund %s: %w", txid, err)
	}
	return r, found, nil
}

func putRefund(tx *bolt.Tx, r Refund, isNew bool) error {
	if isNew {
		if err := tx.Bucket(bucketRefundsByTime).Put(refundTimeKey(r.FirstSeen, r.TransactionID), nil); err != nil {
			return err
		}
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketRefunds).Put([]byte(r.TransactionID), v)
}

// recordAppleWork writes the Apple work of a verified notification: its
// ledger event and its consumption request.
func recordAppleWork(tx *bolt.Tx, o Outcome, now time.Time) error {
	if o.Refund != nil {
		if err := addRefundEvent(tx, o.Seq, *o.Refund, now); err != nil {
			return err
		}
	}
	if o.Consumption != nil {
		return addConsumption(tx, o.Seq, *o.Consumption)
	}
	return nil
}

// addRefundEvent updates the ledger record of the event's transaction. A
// decision by Apple cancels the consumption answers still pending for it.
func addRefundEvent(tx *bolt.Tx, seq uint64, ev RefundEvent, now time.Time) error {
	outcome, ok := outcomeOf[ev.Type]
	if !ok || ev.TransactionID == "" {
		return nil
	}
	at := ev.ReceivedAt
	if at.IsZero() {
		at = now
	}
	r, found, err := getRefund(tx, ev.TransactionID)
	if err != nil {
		return err
	}
	if !found {
		r = Refund{TransactionID: ev.TransactionID, FirstSeen: at}
	}
	r.App, r.Environment = ev.App, ev.Environment
	if ev.OriginalTransactionID != "" {
		r.OriginalTransactionID = ev.OriginalTransactionID
	}
	if ev.ProductID != "" {
		r.ProductID = ev.ProductID
	}
	if ev.Currency != "" {
		r.Price, r.Currency = ev.Price, ev.Currency
	}
	entry := RefundEntry{
		Type: ev.Type, Seq: seq, UUID: ev.UUID, At: at, SignedDate: ev.SignedDate, Reason: ev.Reason,
		RevocationType: ev.RevocationType, RevocationReason: ev.RevocationReason,
	}
	switch ev.Type {
	case RefundEventConsumptionRequest:
		r.Requests++
		r.Reasons = append(r.Reasons, ev.Reason)
	case RefundEventRefund:
		entry.Amount = refundedAmount(ev)
		r.RefundedAmount = entry.Amount
	case RefundEventDeclined:
		entry.Amount = r.Price
	case RefundEventReversed:
		entry.Amount = r.RefundedAmount
		if entry.Amount == 0 {
			entry.Amount = r.Price
		}
		r.RefundedAmount = 0
	}
	r.Events = append(r.Events, entry)
	r.Outcome, r.OutcomeAt, r.UpdatedAt = outcome, at, at
	if err := putRefund(tx, r, !found); err != nil {
		return err
	}
	switch ev.Type {
	case RefundEventRefund, RefundEventDeclined, RefundEventRevoke:
		return cancelPendingConsumption(tx, ev.TransactionID, "Apple decided first: "+ev.Type, now)
	}
	return nil
}

// refundedAmount is the money a REFUND gave back: the price, or its share
// for a prorated refund.
func refundedAmount(ev RefundEvent) int64 {
	if ev.RevocationType == "REFUND_PRORATED" && ev.RevocationPercentage > 0 && ev.RevocationPercentage < 100_000 {
		return ev.Price * ev.RevocationPercentage / 100_000
	}
	return ev.Price
}

// ledgerAnswer adds the final state of a consumption request to the ledger.
func ledgerAnswer(tx *bolt.Tx, j ConsumptionJob, req ConsumptionRequest) error {
	r, found, err := getRefund(tx, j.TransactionID)
	if err != nil {
		return err
	}
	if !found {
		r = Refund{
			TransactionID: j.TransactionID, OriginalTransactionID: j.OriginalTransactionID, App: j.App,
			Environment: j.Environment, ProductID: j.ProductID, Price: j.Price, Currency: j.Currency,
			Outcome: RefundRequested, OutcomeAt: req.ReceivedAt, FirstSeen: req.ReceivedAt,
		}
	}
	a := RefundAnswer{
		N: req.N, State: req.State, Source: req.Source, At: req.FinishedAt, Deadline: req.Deadline,
		InTime: req.InTime(), Status: req.LastStatus, Error: req.Error,
	}
	if req.Answer != nil {
		a.RefundPreference = req.Answer.RefundPreference
	}
	r.Answers = append(r.Answers, a)
	if req.FinishedAt.After(r.UpdatedAt) {
		r.UpdatedAt = req.FinishedAt
	}
	return putRefund(tx, r, !found)
}

// Refund returns the ledger record of transaction txid.
func (db *DB) Refund(txid string) (Refund, error) {
	var r Refund
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var found bool
		var err error
		r, found, err = getRefund(tx, txid)
		if err == nil && !found {
			err = fmt.Errorf("refund record of transaction %s: %w", txid, ErrNotFound)
		}
		return err
	})
	return r, err
}

// RefundFilter selects ledger records. Zero fields match everything.
type RefundFilter struct {
	App     string
	Outcome RefundOutcome
	// Since matches records updated at or after it.
	Since time.Time
}

// Match reports whether r passes the filter.
func (f RefundFilter) Match(r Refund) bool {
	return (f.App == "" || r.App == f.App) && (f.Outcome == "" || r.Outcome == f.Outcome) &&
		(f.Since.IsZero() || !r.UpdatedAt.Before(f.Since))
}

// Refunds returns up to limit ledger records matching f, the most recently
// first seen first, starting at cursor from (nil: from the newest). next is
// the cursor of the following page, nil when there is none; a page may
// hold fewer than limit records while next is not nil (the scan stops
// after MaxScan records).
func (db *DB) Refunds(f RefundFilter, from []byte, limit int) (out []Refund, next []byte, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		out, next = out[:0], nil
		c := tx.Bucket(bucketRefundsByTime).Cursor()
		var k []byte
		if from == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Seek(from)
			if k == nil || !bytes.Equal(k, from) {
				k, _ = c.Prev()
			}
		}
		for scanned := 0; k != nil; k, _ = c.Prev() {
			if len(out) == limit || scanned == MaxScan {
				next = bytes.Clone(k)
				return nil
			}
			scanned++
			r, found, err := getRefund(tx, string(k[8:]))
			if err != nil {
				return err
			}
			if found && f.Match(r) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, next, err
}

// RefundStats are the ledger's figures for one app over a period.
type RefundStats struct {
	// Requests counts CONSUMPTION_REQUEST notifications received.
	Requests int
	// Answers by final state; AnsweredInTime are Sent before the deadline.
	Sent, AnsweredInTime, DryRun, Skipped, Failed, Cancelled int
	// Apple's decisions: Declined refunds were won back.
	Refunded, Declined, Reversed, Revoked int
	// Amounts by currency, in milliunits.
	Amounts map[string]RefundAmounts
}

// RefundAmounts are the money figures of one currency, in milliunits.
type RefundAmounts struct {
	Refunded int64 // given back by REFUND
	Declined int64 // kept by REFUND_DECLINED
	Reversed int64 // taken back again by REFUND_REVERSED
}

// WinBackRate is the share of Apple's refund decisions that declined the
// refund; 0 when Apple decided none.
func (s RefundStats) WinBackRate() float64 {
	if s.Refunded+s.Declined == 0 {
		return 0
	}
	return float64(s.Declined) / float64(s.Refunded+s.Declined)
}

// Add adds o's figures to s.
func (s *RefundStats) Add(o RefundStats) {
	s.Requests += o.Requests
	s.Sent += o.Sent
	s.AnsweredInTime += o.AnsweredInTime
	s.DryRun += o.DryRun
	s.Skipped += o.Skipped
	s.Failed += o.Failed
	s.Cancelled += o.Cancelled
	s.Refunded += o.Refunded
	s.Declined += o.Declined
	s.Reversed += o.Reversed
	s.Revoked += o.Revoked
	for cur, a := range o.Amounts {
		if s.Amounts == nil {
			s.Amounts = make(map[string]RefundAmounts)
		}
		b := s.Amounts[cur]
		b.Refunded += a.Refunded
		b.Declined += a.Declined
		b.Reversed += a.Reversed
		s.Amounts[cur] = b
	}
}

// RefundStats counts, per app, the ledger events received and the answers
// finished at or after since. It reads every record updated since then.
func (db *DB) RefundStats(since time.Time) (map[string]*RefundStats, error) {
	out := make(map[string]*RefundStats)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRefunds).ForEach(func(k, v []byte) error {
			var r Refund
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("refund %s: %w", k, err)
			}
			if r.UpdatedAt.Before(since) {
				return nil
			}
			s := out[r.App]
			if s == nil {
				s = &RefundStats{Amounts: make(map[string]RefundAmounts)}
				out[r.App] = s
			}
			countRefund(s, r, since)
			return nil
		})
	})
	return out, err
}

func countRefund(s *RefundStats, r Refund, since time.Time) {
	amounts := s.Amounts[r.Currency]
	for _, e := range r.Events {
		if e.At.Before(since) {
			continue
		}
		switch e.Type {
		case RefundEventConsumptionRequest:
			s.Requests++
		case RefundEventRefund:
			s.Refunded++
			amounts.Refunded += e.Amount
		case RefundEventDeclined:
			s.Declined++
			amounts.Declined += e.Amount
		case RefundEventReversed:
			s.Reversed++
			amounts.Reversed += e.Amount
		case RefundEventRevoke:
			s.Revoked++
		}
	}
	if amounts != (RefundAmounts{}) {
		s.Amounts[r.Currency] = amounts
	}
	for _, a := range r.Answers {
		if a.At.Before(since) {
			continue
		}
		switch a.State {
		case ConsumptionSent:
			s.Sent++
			if a.InTime {
				s.AnsweredInTime++
			}
		case ConsumptionDryRun:
			s.DryRun++
		case ConsumptionSkipped:
			s.Skipped++
		case ConsumptionFailed:
			s.Failed++
		case ConsumptionCancelled:
			s.Cancelled++
		}
	}
}
