package relay

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

// Actions of POST /api/v1/consumption/{transactionId}.
const (
	ConsumptionActionSendNow  = "send_now"
	ConsumptionActionCancel   = "cancel"
	ConsumptionActionOverride = "override"
)

// DefaultConsumptionPage is how many transactions GET /api/v1/consumption
// lists unless ?limit= says otherwise.
const DefaultConsumptionPage = 100

// cursorRefunds marks a cursor of GET /api/v1/refunds.
const cursorRefunds = 'r'

// ConsumptionInfo is one CONSUMPTION_REQUEST and its answer, as
// GET /api/v1/consumption lists them. Amounts are in milliunits.
type ConsumptionInfo struct {
	TransactionID         string `json:"transaction_id"`
	OriginalTransactionID string `json:"original_transaction_id,omitempty"`
	App                   string `json:"app"`
	Environment           string `json:"environment"`
	ProductID             string `json:"product_id,omitempty"`
	Price                 int64  `json:"price"`
	Currency              string `json:"currency,omitempty"`
	// Request is 1 for the transaction's first CONSUMPTION_REQUEST.
	Request          int       `json:"request"`
	Notification     uint64    `json:"notification"`
	NotificationUUID string    `json:"notification_uuid"`
	Reason           string    `json:"reason,omitempty"`
	State            string    `json:"state"`
	ReceivedAt       time.Time `json:"received_at"`
	Deadline         time.Time `json:"deadline"`
	// SendAt and SecondsLeft (before the deadline) are set while pending.
	SendAt      time.Time `json:"send_at,omitzero"`
	SecondsLeft float64   `json:"seconds_left,omitempty"`
	InFlight    bool      `json:"in_flight,omitempty"`
	// Planned is what a pending request will answer by policy and override
	// (provider_url is asked only when it is sent). Answer is what was sent,
	// or would have been (dry_run, skipped).
	Planned       *store.ConsumptionAnswer `json:"planned,omitempty"`
	Answer        *store.ConsumptionAnswer `json:"answer,omitempty"`
	Source        string                   `json:"source,omitempty"`
	ProviderError string                   `json:"provider_error,omitempty"`
	Override      *store.ConsumptionFields `json:"override,omitempty"`
	Attempts      int                      `json:"attempts"`
	LastStatus    int                      `json:"last_status,omitempty"`
	LatencyMS     float64                  `json:"latency_ms,omitempty"`
	Error         string                   `json:"error,omitempty"`
	FinishedAt    time.Time                `json:"finished_at,omitzero"`
}

// ConsumptionList is the answer of GET /api/v1/consumption: one entry per
// request, the transactions with the latest requests first. Complete is
// false when the scan stopped at its bound.
type ConsumptionList struct {
	Consumption []ConsumptionInfo `json:"consumption"`
	Complete    bool              `json:"complete"`
}

// ConsumptionActionRequest is the body of POST
// /api/v1/consumption/{transactionId}: every pending request of the
// transaction is sent now (send_now), cancelled, or given the fields set
// (override; send_now takes fields too). Fields replace the policy's and
// the provider's; "refund_preference": "" leaves it out of the answer.
type ConsumptionActionRequest struct {
	Action string `json:"action"`
	// Note is recorded with a cancellation.
	Note string `json:"note,omitempty"`
	store.ConsumptionFields
}

// ConsumptionActionResult is the answer of POST
// /api/v1/consumption/{transactionId}.
type ConsumptionActionResult struct {
	TransactionID string            `json:"transaction_id"`
	Action        string            `json:"action"`
	Updated       int               `json:"updated"`
	Consumption   []ConsumptionInfo `json:"consumption"`
}

// RefundList is the answer of GET /api/v1/refunds: ledger records, the most
// recently first seen first; NextCursor is empty on the last page.
type RefundList struct {
	Refunds    []store.Refund `json:"refunds"`
	NextCursor string         `json:"next_cursor"`
}

// registerRefundAPI adds the consumption and refund endpoints.
func (r *Relay) registerRefundAPI(mux *http.ServeMux) {
	for pattern, fn := range map[string]apiFunc{
		"GET /api/v1/consumption":                  r.apiConsumption,
		"GET /api/v1/consumption/{transactionId}":  r.apiConsumptionJob,
		"POST /api/v1/consumption/{transactionId}": r.apiConsumptionAction,
		"GET /api/v1/refunds":                      r.apiRefunds,
		"GET /api/v1/refunds/stats":                r.apiRefundStats,
		"GET /api/v1/refunds/{transactionId}":      r.apiRefund,
	} {
		mux.Handle(pattern, r.guard(r.authorized(r.apiHandler(fn))))
	}
}

var consumptionStates = func() []string {
	var out []string
	for _, s := range store.ConsumptionStates {
		out = append(out, string(s))
	}
	return out
}()

var refundOutcomes = func() []string {
	var out []string
	for _, o := range store.RefundOutcomes {
		out = append(out, string(o))
	}
	return out
}()

// apiConsumption serves GET /api/v1/consumption.
func (r *Relay) apiConsumption(w http.ResponseWriter, req *http.Request) error {
	now := r.now()
	qr := newQueryReader(req.URL.Query(), now, "app", "state", "since", "limit")
	f := store.ConsumptionFilter{App: qr.str("app"), State: store.ConsumptionState(qr.oneOf("state", consumptionStates)), Since: qr.time("since")}
	limit := DefaultConsumptionPage
	if req.URL.Query().Has("limit") {
		limit = qr.limit()
	}
	if qr.err != nil {
		return qr.err
	}
	jobs, complete, err := r.db.ConsumptionJobs(f, limit)
	if err != nil {
		return err
	}
	list := ConsumptionList{Consumption: []ConsumptionInfo{}, Complete: complete}
	for _, j := range jobs {
		for _, info := range r.consumptionInfos(j, now) {
			if (f.State == "" || info.State == string(f.State)) && (f.Since.IsZero() || !info.ReceivedAt.Before(f.Since)) {
				list.Consumption = append(list.Consumption, info)
			}
		}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// apiConsumptionJob serves GET /api/v1/consumption/{transactionId}.
func (r *Relay) apiConsumptionJob(w http.ResponseWriter, req *http.Request) error {
	txid, err := transactionIDParam(req)
	if err != nil {
		return err
	}
	j, err := r.db.ConsumptionJob(txid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ConsumptionList{Consumption: r.consumptionInfos(j, r.now()), Complete: true})
	return nil
}

// apiConsumptionAction serves POST /api/v1/consumption/{transactionId}.
func (r *Relay) apiConsumptionAction(w http.ResponseWriter, req *http.Request) error {
	txid, err := transactionIDParam(req)
	if err != nil {
		return err
	}
	var in ConsumptionActionRequest
	if err := readJSON(w, req, &in); err != nil {
		return err
	}
	if err := checkFields(in.ConsumptionFields); err != nil {
		return errBadRequest("%v", err)
	}
	if len(in.Note) > 500 {
		return errBadRequest("note: longer than 500 bytes")
	}
	now := r.now()
	var (
		fn        func(rq *store.ConsumptionRequest)
		cancelled []store.ConsumptionRequest
	)
	switch in.Action {
	case ConsumptionActionOverride, ConsumptionActionSendNow:
		if in.Action == ConsumptionActionOverride && in.ConsumptionFields.IsZero() {
			return errBadRequest("override: set at least one of customer_consented, delivery_status, sample_content_provided, consumption_percentage, refund_preference")
		}
		fn = func(rq *store.ConsumptionRequest) {
			if !in.ConsumptionFields.IsZero() {
				var prev store.ConsumptionFields
				if rq.Override != nil {
					prev = *rq.Override
				}
				merged := prev.Merge(in.ConsumptionFields)
				rq.Override = &merged
			}
			if in.Action == ConsumptionActionSendNow && rq.SendAt.After(now) {
				rq.SendAt = now
			}
		}
	case ConsumptionActionCancel:
		if !in.ConsumptionFields.IsZero() {
			return errBadRequest("cancel takes no answer fields")
		}
		why := "cancelled by an operator"
		if in.Note != "" {
			why += ": " + in.Note
		}
		fn = func(rq *store.ConsumptionRequest) {
			rq.State, rq.Error, rq.FinishedAt = store.ConsumptionCancelled, why, now
			cancelled = append(cancelled, *rq)
		}
	default:
		return errBadRequest("action: want %s, %s or %s, got %q", ConsumptionActionSendNow, ConsumptionActionCancel, ConsumptionActionOverride, in.Action)
	}
	j, n, err := r.consumption.update(txid, fn)
	if errors.Is(err, store.ErrNothingPending) {
		return errConflict("transaction %s has no pending consumption answer: nothing to %s", txid, in.Action)
	}
	if err != nil {
		return err
	}
	for _, rq := range cancelled {
		r.metrics.consumptionAnswers.WithLabelValues(j.App, preferenceLabel(r.plannedAnswer(j, rq)), string(store.ConsumptionCancelled)).Inc()
	}
	r.log.Info().Str("app", j.App).Str("transaction_id", txid).Str("action", in.Action).Int("requests", n).Msg("consumption answer changed by an operator")
	writeJSON(w, http.StatusOK, ConsumptionActionResult{TransactionID: txid, Action: in.Action, Updated: n, Consumption: r.consumptionInfos(j, now)})
	return nil
}

func transactionIDParam(req *http.Request) (string, error) {
	txid := req.PathValue("transactionId")
	if txid == "" || len(txid) > maxFieldLength || clean(txid) != txid {
		return "", errBadRequest("transaction id %q: want Apple's transactionId", txid)
	}
	return txid, nil
}

// plannedAnswer is what a request answers by the app's policy and its
// override, or nil when the app is gone.
func (r *Relay) plannedAnswer(j store.ConsumptionJob, rq store.ConsumptionRequest) *store.ConsumptionAnswer {
	app, ok := r.apps[j.App]
	if !ok {
		return nil
	}
	a := policyAnswer(app.Consumption, rq.Reason)
	if rq.Override != nil {
		a = applyFields(a, *rq.Override)
	}
	return storedAnswer(a)
}

// consumptionInfos lists the requests of j, the latest first.
func (r *Relay) consumptionInfos(j store.ConsumptionJob, now time.Time) []ConsumptionInfo {
	inFlight := r.consumption.busy(j.TransactionID)
	out := make([]ConsumptionInfo, 0, len(j.Requests))
	for _, rq := range slices.Backward(j.Requests) {
		info := ConsumptionInfo{
			TransactionID: j.TransactionID, OriginalTransactionID: j.OriginalTransactionID, App: j.App,
			Environment: j.Environment, ProductID: j.ProductID, Price: j.Price, Currency: j.Currency,
			Request: rq.N, Notification: rq.Seq, NotificationUUID: rq.UUID, Reason: rq.Reason, State: string(rq.State),
			ReceivedAt: rq.ReceivedAt, Deadline: rq.Deadline, Answer: rq.Answer, Source: rq.Source,
			ProviderError: rq.ProviderError, Override: rq.Override, Attempts: rq.Attempts, LastStatus: rq.LastStatus,
			LatencyMS: float64(rq.Latency) / float64(time.Millisecond), Error: rq.Error, FinishedAt: rq.FinishedAt,
		}
		if rq.State == store.ConsumptionPending {
			info.SendAt, info.SecondsLeft = rq.SendAt, rq.Deadline.Sub(now).Seconds()
			info.Planned = r.plannedAnswer(j, rq)
			info.InFlight = inFlight
		}
		out = append(out, info)
	}
	return out
}

// apiRefunds serves GET /api/v1/refunds.
func (r *Relay) apiRefunds(w http.ResponseWriter, req *http.Request) error {
	qr := newQueryReader(req.URL.Query(), r.now(), "app", "outcome", "since", "limit", "cursor")
	f := store.RefundFilter{App: qr.str("app"), Outcome: store.RefundOutcome(qr.oneOf("outcome", refundOutcomes)), Since: qr.time("since")}
	limit := qr.limit()
	var from []byte
	if c := req.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) < 9 || b[0] != cursorRefunds {
			qr.fail("cursor: %q is not a next_cursor this list returned", c)
		} else {
			from = b[1:]
		}
	}
	if qr.err != nil {
		return qr.err
	}
	refunds, next, err := r.db.Refunds(f, from, limit)
	if err != nil {
		return err
	}
	list := RefundList{Refunds: refunds}
	if list.Refunds == nil {
		list.Refunds = []store.Refund{}
	}
	if next != nil {
		list.NextCursor = base64.RawURLEncoding.EncodeToString(append([]byte{cursorRefunds}, next...))
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// apiRefund serves GET /api/v1/refunds/{transactionId}.
func (r *Relay) apiRefund(w http.ResponseWriter, req *http.Request) error {
	txid, err := transactionIDParam(req)
	if err != nil {
		return err
	}
	rec, err := r.db.Refund(txid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// DefaultRefundStatsWindow is the period of GET /api/v1/refunds/stats
// unless ?since= says otherwise.
const DefaultRefundStatsWindow = 30 * 24 * time.Hour

// apiRefundStats serves GET /api/v1/refunds/stats.
func (r *Relay) apiRefundStats(w http.ResponseWriter, req *http.Request) error {
	now := r.now()
	qr := newQueryReader(req.URL.Query(), now, "app", "since")
	app, since := qr.str("app"), qr.time("since")
	if qr.err != nil {
		return qr.err
	}
	if app != "" && r.apps[app] == nil {
		return errNotFound("app %q is not configured (apps: %s)", app, strings.Join(r.appNames(), ", "))
	}
	if since.IsZero() {
		since = now.Add(-DefaultRefundStatsWindow)
	}
	doc, err := r.refundStats(app, since)
	if err != nil {
		return fmt.Errorf("refund stats: %w", err)
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

func (r *Relay) appNames() []string {
	out := make([]string, 0, len(r.cfg.Apps))
	for _, a := range r.cfg.Apps {
		out = append(out, a.Name)
	}
	return out
}
