package relay

import (
	"sort"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// appleWork adds to o the Apple work of a verified notification: a refund
// ledger event for CONSUMPTION_REQUEST, REFUND, REFUND_DECLINED,
// REFUND_REVERSED and REVOKE, and for a CONSUMPTION_REQUEST of an app with
// consumption enabled, the request to answer. The store writes them with the
// notification's state, and only if it ends up verified rather than a
// duplicate.
func appleWork(o *store.Outcome, r store.Received, app *config.App, n *apple.Notification) {
	t := n.Transaction
	if !store.IsRefundEvent(o.Type) || t == nil || clean(t.TransactionID) == "" {
		return
	}
	var signed time.Time
	if !n.SignedDate.IsZero() {
		signed = n.SignedDate.Time()
	}
	reason := ""
	if n.Data != nil {
		reason = clean(string(n.Data.ConsumptionRequestReason))
	}
	ev := &store.RefundEvent{
		Type: o.Type, TransactionID: clean(t.TransactionID), OriginalTransactionID: clean(t.OriginalTransactionID),
		App: r.App, Environment: o.Environment, ProductID: clean(t.ProductID), Price: t.Price, Currency: clean(t.Currency),
		RevocationType: clean(string(t.RevocationType)), RevocationPercentage: t.RevocationPercentage,
		UUID: o.UUID, SignedDate: signed, ReceivedAt: r.ReceivedAt,
	}
	if o.Type == store.RefundEventConsumptionRequest {
		ev.Reason = reason
	}
	if t.RevocationReason != nil {
		rr := int32(*t.RevocationReason)
		ev.RevocationReason = &rr
	}
	o.Refund = ev
	if o.Type != store.RefundEventConsumptionRequest || !app.Consumption.Enabled {
		return
	}
	deadline, sendAt := consumptionSchedule(r.ReceivedAt, signed, app.Consumption.ReviewDelay)
	o.Consumption = &store.NewConsumption{
		TransactionID: ev.TransactionID, OriginalTransactionID: ev.OriginalTransactionID, App: r.App,
		Environment: o.Environment, ProductID: ev.ProductID, Price: t.Price, Currency: ev.Currency,
		Transaction: t.Raw, Reason: reason, UUID: o.UUID, SignedDate: signed, ReceivedAt: r.ReceivedAt,
		Deadline: deadline, SendAt: sendAt,
	}
}

// RefundStatsDoc is the answer of GET /api/v1/refunds/stats: the ledger's
// figures per app and in total, over events since Since.
type RefundStatsDoc struct {
	Now   time.Time         `json:"now"`
	Since time.Time         `json:"since"`
	Apps  []AppRefundStats  `json:"apps"`
	Total RefundStatsFigure `json:"total"`
}

// AppRefundStats are one app's figures.
type AppRefundStats struct {
	App string `json:"app"`
	RefundStatsFigure
}

// RefundStatsFigure are the figures of one app, or of all. Amounts are in
// milliunits of their currency (1990 is 1.99).
type RefundStatsFigure struct {
	// Requests counts CONSUMPTION_REQUEST notifications received.
	Requests int `json:"requests"`
	// Answers by final state; AnsweredInTime were accepted by Apple before
	// the deadline.
	Sent           int `json:"sent"`
	AnsweredInTime int `json:"answered_in_time"`
	DryRun         int `json:"dry_run"`
	Skipped        int `json:"skipped"`
	Failed         int `json:"failed"`
	Cancelled      int `json:"cancelled"`
	// Apple's decisions. Declined refunds are won back.
	Refunded int `json:"refunded"`
	Declined int `json:"declined"`
	Reversed int `json:"reversed"`
	Revoked  int `json:"revoked"`
	// WinBackRate is declined / (refunded + declined); 0 without decisions.
	WinBackRate float64                   `json:"win_back_rate"`
	Amounts     map[string]CurrencyAmount `json:"amounts"`
}

// CurrencyAmount is money in one currency, in milliunits.
type CurrencyAmount struct {
	Refunded int64 `json:"refunded"` // given back by REFUND
	Declined int64 `json:"declined"` // kept: REFUND_DECLINED
	Reversed int64 `json:"reversed"` // refunds Apple reversed (REFUND_REVERSED)
}

func refundStatsFigure(s store.RefundStats) RefundStatsFigure {
	f := RefundStatsFigure{
		Requests: s.Requests, Sent: s.Sent, AnsweredInTime: s.AnsweredInTime, DryRun: s.DryRun, Skipped: s.Skipped,
		Failed: s.Failed, Cancelled: s.Cancelled, Refunded: s.Refunded, Declined: s.Declined, Reversed: s.Reversed,
		Revoked: s.Revoked, WinBackRate: s.WinBackRate(), Amounts: map[string]CurrencyAmount{},
	}
	for cur, a := range s.Amounts {
		f.Amounts[cur] = CurrencyAmount(a)
	}
	return f
}

// refundStats gathers the ledger's figures since since, for app ("" for
// every app).
func (r *Relay) refundStats(app string, since time.Time) (RefundStatsDoc, error) {
	doc := RefundStatsDoc{Now: r.now(), Since: since, Apps: []AppRefundStats{}}
	byApp, err := r.db.RefundStats(since)
	if err != nil {
		return doc, err
	}
	var total store.RefundStats
	for name, s := range byApp {
		if app != "" && name != app {
			continue
		}
		doc.Apps = append(doc.Apps, AppRefundStats{App: name, RefundStatsFigure: refundStatsFigure(*s)})
		total.Add(*s)
	}
	sort.Slice(doc.Apps, func(i, j int) bool { return doc.Apps[i].App < doc.Apps[j].App })
	doc.Total = refundStatsFigure(total)
	return doc, nil
}
