package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// Tunables of the consumption worker.
const (
	// ConsumptionConcurrency bounds the transactions answered at once.
	ConsumptionConcurrency = 8
	// ConsumptionRetryInitial and ConsumptionRetryMax bound the backoff
	// between tries after a retryable failure (the API client has already
	// retried within the call); retries stop at the deadline.
	ConsumptionRetryInitial = time.Minute
	ConsumptionRetryMax     = 30 * time.Minute
	// consumptionPoll is the longest the worker sleeps without looking at
	// the store, so that a clock jump cannot strand a due answer.
	consumptionPoll = time.Minute
	// consumptionStoreRetry is the wait after a store error.
	consumptionStoreRetry = time.Second
)

// consumptionWorker answers CONSUMPTION_REQUEST notifications with Send
// Consumption Information, from the jobs the processor stored. Each
// transaction has at most one answer in flight; everything it knows lives
// in the store, so a restart resumes where it stopped.
type consumptionWorker struct {
	db      *store.DB
	apps    map[string]*config.App
	client  func(app string, env apple.Environment) (*apple.Client, bool)
	log     zerolog.Logger
	metrics *metrics
	now     func() time.Time

	providerHTTP    *http.Client
	providerTimeout time.Duration
	userAgent       string

	wakeCh   chan struct{}
	mu       sync.Mutex      // guards inFlight; held while the admin API changes a job
	inFlight map[string]bool // transaction ids being answered
	wg       sync.WaitGroup
}

func newConsumptionWorker(db *store.DB, apps map[string]*config.App, client func(string, apple.Environment) (*apple.Client, bool),
	log zerolog.Logger, m *metrics, now func() time.Time, httpClient *http.Client, userAgent string) *consumptionWorker {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &consumptionWorker{
		db: db, apps: apps, client: client, log: log, metrics: m, now: now,
		providerHTTP: httpClient, providerTimeout: ProviderTimeout, userAgent: userAgent,
		wakeCh: make(chan struct{}, 1), inFlight: make(map[string]bool),
	}
}

// wake makes the worker look for due answers now.
func (w *consumptionWorker) wake() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *consumptionWorker) busy(txid string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inFlight[txid]
}

// claim marks txid in flight; false when it already is or every slot is
// taken.
func (w *consumptionWorker) claim(txid string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight[txid] || len(w.inFlight) >= ConsumptionConcurrency {
		return false
	}
	w.inFlight[txid] = true
	return true
}

func (w *consumptionWorker) release(txid string) {
	w.mu.Lock()
	delete(w.inFlight, txid)
	w.mu.Unlock()
	w.wake()
}

// run answers due requests until ctx ends, then waits for those in flight.
func (w *consumptionWorker) run(ctx context.Context) {
	defer w.wg.Wait()
	for {
		wait := consumptionPoll
		due, next, err := w.db.ConsumptionDue(w.now(), ConsumptionConcurrency, w.busy)
		if err != nil {
			w.log.Error().Err(err).Msg("read due consumption answers; retrying")
			wait = consumptionStoreRetry
		}
		for _, j := range due {
			if !w.claim(j.TransactionID) {
				continue
			}
			txid := j.TransactionID
			w.wg.Go(func() {
				defer w.release(txid)
				w.answer(ctx, txid)
			})
		}
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(w.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wakeCh:
		case <-t.C:
		}
		t.Stop()
	}
}

// answer tries to answer the oldest pending request of txid, if it is due,
// and records the outcome.
func (w *consumptionWorker) answer(ctx context.Context, txid string) {
	j, err := w.db.ConsumptionJob(txid)
	if err != nil {
		w.log.Error().Err(err).Str("transaction_id", txid).Msg("read consumption job")
		pause(ctx, consumptionStoreRetry)
		return
	}
	h := j.Head()
	if h < 0 || j.Requests[h].SendAt.After(w.now()) {
		return // answered, cancelled or rescheduled meanwhile
	}
	req := j.Requests[h]
	res, ok := w.try(ctx, j, req)
	if !ok {
		return // interrupted by shutdown: still pending, tried again after restart
	}
	if _, err := w.db.RecordConsumption(txid, req.N, res); err != nil {
		if errors.Is(err, store.ErrNothingPending) {
			// Apple decided the refund while the answer was on its way.
			w.log.Warn().Err(err).Str("app", j.App).Str("transaction_id", txid).Str("state", string(res.State)).
				Msg("consumption answer finished after the request was cancelled")
			return
		}
		w.log.Error().Err(err).Str("app", j.App).Str("transaction_id", txid).Msg("record consumption answer")
		// Still pending: wait, so that a failing store does not turn into
		// a loop of answers to Apple.
		pause(ctx, consumptionPoll)
		return
	}
	w.observe(j, req, res)
}

// try builds the answer to req and sends it, unless something says not to.
// ok is false when ctx ended the try before it had an outcome.
func (w *consumptionWorker) try(ctx context.Context, j store.ConsumptionJob, req store.ConsumptionRequest) (res store.ConsumptionResult, ok bool) {
	now := w.now()
	res = store.ConsumptionResult{At: now}
	final := func(state store.ConsumptionState, format string, args ...any) (store.ConsumptionResult, bool) {
		res.State, res.Error = state, fmt.Sprintf(format, args...)
		return res, true
	}
	if !now.Before(req.Deadline) {
		return final(store.ConsumptionFailed, "deadline %s passed before an answer was sent", req.Deadline.UTC().Format(time.RFC3339))
	}
	app, found := w.apps[j.App]
	if !found {
		return final(store.ConsumptionFailed, "app %q is no longer configured", j.App)
	}
	c := app.Consumption
	if !c.Enabled {
		return final(store.ConsumptionSkipped, "consumption is no longer enabled for app %q", j.App)
	}

	answer, source := policyAnswer(c, req.Reason), sourcePolicy
	if c.ProviderURL != "" {
		fields, err := w.askProvider(ctx, c.ProviderURL, j, req, answer)
		if ctx.Err() != nil {
			return res, false
		}
		switch {
		case err != nil:
			res.ProviderError = err.Error() + "; used the policy"
		default:
			merged := applyFields(answer, fields)
			consented := merged
			consented.CustomerConsented = true // no consent is an answer, not a mistake
			if err := consented.Validate(); err != nil {
				res.ProviderError = fmt.Sprintf("provider_url answer refused: %v; used the policy", err)
			} else if !fields.IsZero() {
				answer, source = merged, sourceProvider
			}
		}
	}
	if req.Override != nil {
		answer, source = applyFields(answer, *req.Override), sourceOverride
	}
	res.Answer, res.Source = storedAnswer(answer), source

	if !answer.CustomerConsented {
		return final(store.ConsumptionSkipped, "customer_consented is false (from the %s): Apple refuses answers without the customer's consent, so none was sent", source)
	}
	if err := answer.Validate(); err != nil {
		return final(store.ConsumptionFailed, "%v", err)
	}
	if c.DryRun {
		res.State = store.ConsumptionDryRun // the answer is recorded, not sent
		return res, true
	}
	env := apple.Environment(j.Environment)
	if apple.IsUnsignedEnvironment(string(env)) {
		return final(store.ConsumptionSkipped, "%s data: the App Store Server API has no %s environment", env, env)
	}
	client, found := w.client(j.App, env)
	if !found {
		return final(store.ConsumptionFailed, "app %q has no api block: add apps[].api (an In-App Purchase key) to send consumption information", j.App)
	}

	// The time left is read on the relay's clock, which may not be the
	// wall clock (tests inject one): a deadline is not a wall-clock instant.
	sendCtx, cancel := context.WithTimeout(ctx, req.Deadline.Sub(now))
	defer cancel()
	start := time.Now()
	err := client.SendConsumptionInformation(sendCtx, j.TransactionID, answer)
	res.Latency, res.Attempted = time.Since(start), true
	res.At = w.now()
	if err == nil {
		res.State, res.Status = store.ConsumptionSent, http.StatusAccepted
		return res, true
	}
	if ctx.Err() != nil {
		return res, false
	}
	var ae *apple.APIError
	if errors.As(err, &ae) {
		res.Status = ae.Status
	}
	res.Error = err.Error()
	if !apple.IsRetryable(err) {
		res.State = store.ConsumptionFailed
		return res, true
	}
	next := res.At.Add(consumptionBackoff(req.Attempts + 1))
	if ae != nil && ae.RetryAfter > 0 {
		if after := res.At.Add(ae.RetryAfter); after.After(next) {
			next = after
		}
	}
	if !next.Before(req.Deadline) {
		res.State = store.ConsumptionFailed
		res.Error = fmt.Sprintf("gave up: the next try would be after the deadline %s; last error: %v", req.Deadline.UTC().Format(time.RFC3339), err)
		return res, true
	}
	res.State, res.NextAt = store.ConsumptionPending, next
	return res, true
}

func (w *consumptionWorker) askProvider(ctx context.Context, providerURL string, j store.ConsumptionJob, req store.ConsumptionRequest, policy apple.ConsumptionRequest) (store.ConsumptionFields, error) {
	timeout := min(w.providerTimeout, req.Deadline.Sub(w.now()))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return askProvider(ctx, w.providerHTTP, providerURL, w.userAgent, ProviderRequest{
		App: j.App, Environment: j.Environment, TransactionID: j.TransactionID, NotificationUUID: req.UUID,
		Request: req.N, Reason: req.Reason, Deadline: req.Deadline, Transaction: j.Transaction,
		Policy: *storedAnswer(policy),
	})
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// consumptionBackoff is the wait before try n+1: exponential from
// ConsumptionRetryInitial to ConsumptionRetryMax, with ±20 % jitter.
func consumptionBackoff(n int) time.Duration {
	d := ConsumptionRetryInitial
	for i := 1; i < n && d < ConsumptionRetryMax; i++ {
		d *= 2
	}
	d = min(d, ConsumptionRetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// observe logs and counts the outcome of a try.
func (w *consumptionWorker) observe(j store.ConsumptionJob, req store.ConsumptionRequest, res store.ConsumptionResult) {
	result := string(res.State)
	if res.State == store.ConsumptionPending {
		result = "retry"
	}
	w.metrics.consumptionAnswers.WithLabelValues(j.App, preferenceLabel(res.Answer), result).Inc()
	ev := w.log.Info()
	switch res.State {
	case store.ConsumptionFailed:
		ev = w.log.Error()
	case store.ConsumptionPending, store.ConsumptionSkipped:
		ev = w.log.Warn()
	}
	ev = ev.Str("app", j.App).Str("environment", j.Environment).Str("transaction_id", j.TransactionID).
		Int("request", req.N).Str("notification_uuid", req.UUID).Str("reason", req.Reason).Str("state", result).
		Time("deadline", req.Deadline)
	if res.Answer != nil {
		ev = ev.Str("refund_preference", res.Answer.RefundPreference).Str("delivery_status", res.Answer.DeliveryStatus).
			Bool("customer_consented", res.Answer.CustomerConsented).Str("source", res.Source)
	}
	if res.Status != 0 {
		ev = ev.Int("status", res.Status).Dur("latency", res.Latency)
	}
	if res.ProviderError != "" {
		ev = ev.Str("provider_error", res.ProviderError)
	}
	if res.State == store.ConsumptionPending {
		ev = ev.Time("next_attempt_at", res.NextAt)
	}
	ev.Str("error", res.Error).Msg("consumption answer")
}

// errInFlight is the admin API's answer while an answer is being sent.
func errInFlight(txid string) error {
	return errConflict("the answer for transaction %s is being sent right now; look again in a moment", txid)
}

// update applies fn to the pending requests of txid, unless one of them is
// being answered right now, and wakes the worker.
func (w *consumptionWorker) update(txid string, fn func(r *store.ConsumptionRequest)) (store.ConsumptionJob, int, error) {
	w.mu.Lock()
	if w.inFlight[txid] {
		w.mu.Unlock()
		return store.ConsumptionJob{}, 0, errInFlight(txid)
	}
	// Holding mu keeps the worker from claiming txid until the change is
	// committed; it reads the job again after claiming.
	j, n, err := w.db.UpdatePendingConsumption(txid, fn)
	w.mu.Unlock()
	if err == nil {
		w.wake()
	}
	return j, n, err
}

var (
	descConsumptionDeadline = prometheus.NewDesc("asnrelay_consumption_deadline_seconds",
		"Time left before Apple's deadline on the oldest pending CONSUMPTION_REQUEST answer; absent when none is pending, negative when it passed.", nil, nil)
	descConsumptionPending = prometheus.NewDesc("asnrelay_consumption_pending",
		"CONSUMPTION_REQUEST answers waiting to be sent.", nil, nil)
)

// consumptionCollector reads the pending answers from the store at scrape
// time.
type consumptionCollector struct {
	db  func() *store.DB
	now func() time.Time
}

func (c *consumptionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConsumptionDeadline
	ch <- descConsumptionPending
}

func (c *consumptionCollector) Collect(ch chan<- prometheus.Metric) {
	db := c.db()
	if db == nil {
		return
	}
	b, err := db.ConsumptionBacklog()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descConsumptionPending, prometheus.GaugeValue, float64(b.Pending))
	if !b.EarliestDeadline.IsZero() {
		ch <- prometheus.MustNewConstMetric(descConsumptionDeadline, prometheus.GaugeValue, b.EarliestDeadline.Sub(c.now()).Seconds())
	}
}
