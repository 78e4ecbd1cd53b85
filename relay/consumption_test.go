package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

const testTxID = "2000000123456789"

// consumptionPath is where Send Consumption Information goes; failures are
// scoped to it, since the relay checks its key against Apple at start.
const consumptionPath = "/inApps/v2/transactions/consumption/"

// consumptionEnv is a relay whose app answers CONSUMPTION_REQUEST, a fake
// App Store Server API it talks to, and the clock both run on.
type consumptionEnv struct {
	ca    *appletest.CA
	cfg   *config.Config
	clock *testClock
	fake  *appletest.FakeAPI
	api   *httptest.Server
	// puts records the Send Consumption Information requests, and how
	// many were in flight at once per transaction at most.
	mu          sync.Mutex
	puts        []consumptionPut
	inFlight    map[string]int
	maxInFlight int
}

type consumptionPut struct {
	txid string
	body map[string]any
}

// newConsumptionEnv prepares (not starts) the relay: consumption enabled,
// dry_run off, no review delay, an In-App Purchase key minted for this test
// and written as a .p8 file; edit changes the app.
func newConsumptionEnv(t *testing.T, edit func(app *config.App)) *consumptionEnv {
	t.Helper()
	e := &consumptionEnv{ca: newCA(t), clock: newTestClock(t0), inFlight: map[string]int{}}
	fake, err := appletest.NewFakeAPI(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	fake.BundleID, fake.Now = testBundle, e.clock.now
	fake.Transactions = []apple.Transaction{{TransactionID: testTxID, OriginalTransactionID: testTxID, ProductID: "coins"}}
	e.fake = fake
	e.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			fake.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		txid := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		var doc map[string]any
		json.Unmarshal(body, &doc)
		e.mu.Lock()
		e.inFlight[txid]++
		e.maxInFlight = max(e.maxInFlight, e.inFlight[txid])
		e.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		fake.ServeHTTP(w, r)
		e.mu.Lock()
		e.inFlight[txid]--
		e.puts = append(e.puts, consumptionPut{txid: txid, body: doc})
		e.mu.Unlock()
	}))
	t.Cleanup(e.api.Close)

	e.cfg = testConfig(t, e.ca)
	keyFile := filepath.Join(t.TempDir(), "SubscriptionKey_"+fake.KeyID+".p8")
	if err := os.WriteFile(keyFile, fake.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	app := &e.cfg.Apps[0]
	app.API = &config.API{IssuerID: fake.IssuerID, KeyID: fake.KeyID, PrivateKeyFile: keyFile, PrivateKey: fake.KeyPEM(), BaseURL: e.api.URL}
	app.Consumption.Enabled, app.Consumption.DryRun = true, false
	app.Consumption.RefundPreference = config.RefundPreference{Default: "DECLINE", ByReason: map[string]string{"UNINTENDED_PURCHASE": "GRANT_FULL"}}
	if edit != nil {
		edit(app)
	}
	return e
}

// start runs a relay on the env's config and clock; tweak, if given, sees
// it before it runs.
func (e *consumptionEnv) start(t *testing.T, tweak func(r *Relay)) *harness {
	t.Helper()
	r, err := New(e.cfg, zerolog.Nop(), Options{Version: "test", Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{r: r, url: "http://" + r.Addr().String(), admin: "http://" + r.AdminAddr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (e *consumptionEnv) sent() []consumptionPut {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]consumptionPut(nil), e.puts...)
}

// request is a signed CONSUMPTION_REQUEST for testTxID, signed now.
func (e *consumptionEnv) request(t *testing.T, uuid, reason string) []byte {
	t.Helper()
	return body(t, e.ca, appletest.Notification{
		Type: "CONSUMPTION_REQUEST", UUID: uuid, SignedDate: e.clock.now(), ConsumptionRequestReason: reason,
		Transaction: &apple.Transaction{TransactionID: testTxID, OriginalTransactionID: testTxID, ProductID: "coins",
			Type: apple.ProductTypeConsumable, Price: 4990, Currency: "EUR"},
	})
}

// advance moves the clock and makes the worker look.
func (e *consumptionEnv) advance(h *harness, d time.Duration) {
	e.clock.add(d)
	h.r.consumption.wake()
}

func waitJob(t *testing.T, h *harness, txid string, cond func(store.ConsumptionJob) bool) store.ConsumptionJob {
	t.Helper()
	var j store.ConsumptionJob
	waitFor(t, "consumption job of "+txid, func() bool {
		var err error
		j, err = h.r.db.ConsumptionJob(txid)
		return err == nil && cond(j)
	})
	return j
}

func requestState(n int, s store.ConsumptionState) func(store.ConsumptionJob) bool {
	return func(j store.ConsumptionJob) bool { return len(j.Requests) >= n && j.Requests[n-1].State == s }
}

func TestRefundPreferenceByReason(t *testing.T) {
	policy := config.Consumption{
		CustomerConsented: true, DeliveryStatus: "DELIVERED",
		RefundPreference: config.RefundPreference{Default: "DECLINE", ByReason: map[string]string{
			"UNINTENDED_PURCHASE": "GRANT_FULL", "FULFILLMENT_ISSUE": "GRANT_PRORATED", "LEGAL": "",
		}},
	}
	noDefault := policy
	noDefault.RefundPreference = config.RefundPreference{ByReason: map[string]string{"OTHER": "DECLINE"}}
	for _, tc := range []struct {
		policy config.Consumption
		reason string
		want   apple.RefundPreference
	}{
		{policy, "UNINTENDED_PURCHASE", apple.RefundPreferenceGrantFull},
		{policy, "FULFILLMENT_ISSUE", apple.RefundPreferenceGrantProrated},
		{policy, "UNSATISFIED_WITH_PURCHASE", apple.RefundPreferenceDecline}, // default
		{policy, "OTHER", apple.RefundPreferenceDecline},
		{policy, "LEGAL", ""}, // by_reason "" leaves it out
		{policy, "", apple.RefundPreferenceDecline},
		{policy, "SOMETHING_NEW", apple.RefundPreferenceDecline}, // a reason Apple adds later
		{noDefault, "OTHER", apple.RefundPreferenceDecline},
		{noDefault, "UNINTENDED_PURCHASE", ""},
	} {
		a := policyAnswer(tc.policy, tc.reason)
		if a.RefundPreference != tc.want {
			t.Errorf("reason %q: refundPreference %q, want %q", tc.reason, a.RefundPreference, tc.want)
		}
		if !a.CustomerConsented || a.DeliveryStatus != apple.DeliveryStatusDelivered || a.ConsumptionPercentage != nil {
			t.Errorf("reason %q: answer %+v", tc.reason, a)
		}
		b, _ := json.Marshal(a)
		if strings.Contains(string(b), "consumptionPercentage") || (tc.want == "") == strings.Contains(string(b), "refundPreference") {
			t.Errorf("reason %q: body %s", tc.reason, b)
		}
	}
}

func TestConsumptionSchedule(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		signed                 time.Time
		delay                  time.Duration
		wantDeadline, wantSend time.Time
	}{
		{"no delay", t0, 0, t0.Add(12 * time.Hour), t0},
		{"review delay", t0, 2 * time.Hour, t0.Add(12 * time.Hour), t0.Add(2 * time.Hour)},
		{"delay capped before the deadline", t0, 11*time.Hour + 45*time.Minute, t0.Add(12 * time.Hour), t0.Add(11*time.Hour + 30*time.Minute)},
		{"Apple retried: the clock started at signedDate", t0.Add(-time.Hour), 11 * time.Hour, t0.Add(11 * time.Hour), t0.Add(10*time.Hour + 30*time.Minute)},
		{"signedDate ahead of our clock", t0.Add(time.Minute), 0, t0.Add(12 * time.Hour), t0},
		{"no time left: send at once", t0.Add(-12 * time.Hour), time.Hour, t0, t0},
	} {
		deadline, sendAt := consumptionSchedule(t0, tc.signed, tc.delay)
		if !deadline.Equal(tc.wantDeadline) || !sendAt.Equal(tc.wantSend) {
			t.Errorf("%s: deadline %v send %v, want %v %v", tc.name, deadline, sendAt, tc.wantDeadline, tc.wantSend)
		}
	}
}

func TestConsumptionAnswerSentAfterReviewDelay(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ReviewDelay = time.Hour })
	h := e.start(t, nil)
	if got := h.post(t, "myapp", e.request(t, "c1", "UNINTENDED_PURCHASE")); got != 200 {
		t.Fatalf("status %d", got)
	}
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionPending))
	if r := j.Requests[0]; !r.SendAt.Equal(t0.Add(time.Hour)) || !r.Deadline.Equal(t0.Add(12*time.Hour)) || r.Reason != "UNINTENDED_PURCHASE" {
		t.Fatalf("request = %+v", r)
	}
	if j.Price != 4990 || j.Currency != "EUR" || j.ProductID != "coins" || !bytes.Contains(j.Transaction, []byte(testTxID)) {
		t.Errorf("job = %+v", j)
	}
	e.advance(h, 59*time.Minute)
	if due, _, _ := h.r.db.ConsumptionDue(e.clock.now(), 10, nil); len(due) != 0 {
		t.Fatal("due before the review delay ended")
	}
	e.advance(h, time.Minute)
	j = waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
	r := j.Requests[0]
	if r.LastStatus != http.StatusAccepted || r.Attempts != 1 || r.Source != sourcePolicy || !r.InTime() || !r.FinishedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("request = %+v", r)
	}
	puts := e.sent()
	if len(puts) != 1 || puts[0].txid != testTxID {
		t.Fatalf("Apple got %d answers", len(puts))
	}
	want := map[string]any{"customerConsented": true, "deliveryStatus": "DELIVERED", "sampleContentProvided": false, "refundPreference": "GRANT_FULL"}
	if fmt.Sprint(puts[0].body) != fmt.Sprint(want) {
		t.Errorf("Apple got %v, want %v", puts[0].body, want)
	}
	for _, req := range e.fake.Requests() {
		if strings.HasPrefix(req.Path, consumptionPath) && req.AuthError != "" {
			t.Errorf("token refused: %s", req.AuthError)
		}
	}
	waitCounter(t, h.r.metrics.consumptionAnswers, 1, "myapp", "GRANT_FULL", "sent")
	rec, err := h.r.db.Refund(testTxID)
	if err != nil || len(rec.Answers) != 1 || !rec.Answers[0].InTime || rec.Answers[0].RefundPreference != "GRANT_FULL" {
		t.Errorf("ledger = %+v, %v", rec, err)
	}
}

func TestConsumptionWithoutConsentIsNotSent(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.CustomerConsented = false })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "OTHER"))
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSkipped))
	if r := j.Requests[0]; !strings.Contains(r.Error, "customer_consented is false") || r.Answer == nil || r.Answer.CustomerConsented || r.Attempts != 0 {
		t.Errorf("request = %+v", r)
	}
	if n := len(e.sent()); n != 0 {
		t.Errorf("Apple got %d answers without consent", n)
	}
}

func TestConsumptionDryRunSendsNothing(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.DryRun = true })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "FULFILLMENT_ISSUE"))
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionDryRun))
	if r := j.Requests[0]; r.Answer == nil || r.Answer.RefundPreference != "DECLINE" || r.Attempts != 0 {
		t.Errorf("request = %+v", r)
	}
	if n := len(e.sent()); n != 0 {
		t.Errorf("dry run sent Apple %d answers", n)
	}
	waitCounter(t, h.r.metrics.consumptionAnswers, 1, "myapp", "DECLINE", "dry_run")
}

func TestConsumptionProviderOverridesPolicy(t *testing.T) {
	var (
		mu  sync.Mutex
		got []ProviderRequest
	)
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var pr ProviderRequest
		if err := json.NewDecoder(r.Body).Decode(&pr); err != nil {
			t.Errorf("provider request: %v", err)
		}
		mu.Lock()
		got = append(got, pr)
		mu.Unlock()
		w.Write([]byte(`{"refund_preference":"GRANT_PRORATED","consumption_percentage":25000,"unknown":"ignored"}`))
	}))
	t.Cleanup(provider.Close)
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ProviderURL = provider.URL })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "UNINTENDED_PURCHASE"))
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
	if r := j.Requests[0]; r.Source != sourceProvider || r.ProviderError != "" || r.Answer.RefundPreference != "GRANT_PRORATED" {
		t.Errorf("request = %+v", r)
	}
	puts := e.sent()
	if len(puts) != 1 || puts[0].body["refundPreference"] != "GRANT_PRORATED" || puts[0].body["consumptionPercentage"] != 25000.0 ||
		puts[0].body["deliveryStatus"] != "DELIVERED" || puts[0].body["customerConsented"] != true {
		t.Errorf("Apple got %v", puts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("provider called %d times", len(got))
	}
	pr := got[0]
	if pr.App != "myapp" || pr.TransactionID != testTxID || pr.Reason != "UNINTENDED_PURCHASE" || pr.NotificationUUID != "c1" ||
		pr.Request != 1 || !pr.Deadline.Equal(t0.Add(12*time.Hour)) || pr.Policy.RefundPreference != "GRANT_FULL" || pr.Environment != "Sandbox" {
		t.Errorf("provider got %+v", pr)
	}
	var tx apple.Transaction
	if err := json.Unmarshal(pr.Transaction, &tx); err != nil || tx.Price != 4990 || tx.Currency != "EUR" {
		t.Errorf("provider transaction %s: %v", pr.Transaction, err)
	}
}

func TestConsumptionProviderConsentFalseSkips(t *testing.T) {
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"customer_consented":false}`))
	}))
	t.Cleanup(provider.Close)
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ProviderURL = provider.URL })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "OTHER"))
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSkipped))
	if r := j.Requests[0]; r.Source != sourceProvider || !strings.Contains(r.Error, "from the provider") {
		t.Errorf("request = %+v", r)
	}
	if n := len(e.sent()); n != 0 {
		t.Errorf("Apple got %d answers", n)
	}
}

func TestConsumptionProviderFailureFallsBackToPolicy(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers in time
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"refund_preference":"MAYBE"}`))
	}))
	t.Cleanup(bad.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(broken.Close)
	for _, tc := range []struct {
		name, url, wantErr string
	}{
		{"timeout", slow.URL, "no answer within the timeout"},
		{"invalid value", bad.URL, `refund_preference "MAYBE"`},
		{"HTTP 502", broken.URL, "HTTP 502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ProviderURL = tc.url })
			h := e.start(t, func(r *Relay) { r.consumption.providerTimeout = 50 * time.Millisecond })
			h.post(t, "myapp", e.request(t, "c1", "UNINTENDED_PURCHASE"))
			j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
			r := j.Requests[0]
			if r.Source != sourcePolicy || !strings.Contains(r.ProviderError, tc.wantErr) || !strings.Contains(r.ProviderError, "used the policy") {
				t.Errorf("source %q, provider error %q; want policy and %q", r.Source, r.ProviderError, tc.wantErr)
			}
			if puts := e.sent(); len(puts) != 1 || puts[0].body["refundPreference"] != "GRANT_FULL" {
				t.Errorf("Apple got %v, want the policy's GRANT_FULL", puts)
			}
		})
	}
}

func TestConsumptionRestartDuringReviewDelayStillSendsBeforeTheDeadline(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ReviewDelay = 4 * time.Hour })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "OTHER"))
	waitJob(t, h, testTxID, requestState(1, store.ConsumptionPending))
	e.clock.add(2 * time.Hour) // down in the middle of the review delay
	h.stop(t)
	if n := len(e.sent()); n != 0 {
		t.Fatalf("sent during the review delay: %d", n)
	}

	e.clock.add(9 * time.Hour) // back 11 h after the request: due, deadline not passed
	h2 := e.start(t, nil)
	j := waitJob(t, h2, testTxID, requestState(1, store.ConsumptionSent))
	if r := j.Requests[0]; !r.InTime() || !r.FinishedAt.Equal(t0.Add(11*time.Hour)) {
		t.Errorf("request = %+v, want sent at +11h before the deadline", r)
	}
	if n := len(e.sent()); n != 1 {
		t.Errorf("Apple got %d answers", n)
	}
}

func TestConsumptionInterruptedByShutdownIsSentAfterRestart(t *testing.T) {
	e := newConsumptionEnv(t, nil)
	// Apple is slow to answer the first time: the daemon stops meanwhile.
	e.fake.Fail(appletest.Failure{Status: http.StatusAccepted, Delay: time.Minute, Path: consumptionPath})
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "OTHER"))
	waitFor(t, "the answer in flight", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.inFlight[testTxID] == 1
	})
	h.stop(t) // cancels the call; nothing is recorded, the answer stays pending
	h2 := e.start(t, nil)
	j := waitJob(t, h2, testTxID, requestState(1, store.ConsumptionSent))
	if r := j.Requests[0]; r.Attempts != 1 || r.LastStatus != http.StatusAccepted {
		t.Errorf("request = %+v; the interrupted try is not an outcome", r)
	}
}

func TestConsumptionPastTheDeadlineIsNotSent(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ReviewDelay = time.Hour })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "OTHER"))
	waitJob(t, h, testTxID, requestState(1, store.ConsumptionPending))
	h.stop(t)
	e.clock.add(13 * time.Hour) // down past the deadline
	h2 := e.start(t, nil)
	j := waitJob(t, h2, testTxID, requestState(1, store.ConsumptionFailed))
	if r := j.Requests[0]; !strings.Contains(r.Error, "deadline") {
		t.Errorf("request = %+v", r)
	}
	if n := len(e.sent()); n != 0 {
		t.Errorf("Apple got %d late answers", n)
	}
}

func TestConsumptionAppleErrors(t *testing.T) {
	t.Run("500 then success: one answer recorded", func(t *testing.T) {
		e := newConsumptionEnv(t, nil)
		e.fake.Fail(appletest.Failure{Status: http.StatusInternalServerError, ErrorCode: apple.ErrorCodeGeneralInternal, Path: consumptionPath})
		h := e.start(t, nil)
		h.post(t, "myapp", e.request(t, "c1", "OTHER"))
		j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
		if len(j.Requests) != 1 || j.Requests[0].LastStatus != http.StatusAccepted {
			t.Errorf("job = %+v", j)
		}
		if puts := e.sent(); len(puts) != 2 {
			t.Errorf("Apple got %d requests, want 2 (a 500, then the answer)", len(puts))
		}
		if rec, _ := h.r.db.Refund(testTxID); len(rec.Answers) != 1 || rec.Answers[0].State != store.ConsumptionSent {
			t.Errorf("ledger answers = %+v", rec.Answers)
		}
	})
	t.Run("429 for longer than the client waits: retried later", func(t *testing.T) {
		e := newConsumptionEnv(t, nil)
		retryAt := t0.Add(10 * time.Minute)
		e.fake.Fail(appletest.Failure{Status: http.StatusTooManyRequests, ErrorCode: apple.ErrorCodeRateLimitExceeded,
			RetryAfter: strconv.FormatInt(retryAt.UnixMilli(), 10), Path: consumptionPath})
		h := e.start(t, nil)
		h.post(t, "myapp", e.request(t, "c1", "OTHER"))
		j := waitJob(t, h, testTxID, func(j store.ConsumptionJob) bool { return len(j.Requests) == 1 && j.Requests[0].Attempts == 1 })
		r := j.Requests[0]
		if r.State != store.ConsumptionPending || r.LastStatus != http.StatusTooManyRequests || r.SendAt.Before(retryAt) {
			t.Fatalf("after the 429: %+v", r)
		}
		waitCounter(t, h.r.metrics.consumptionAnswers, 1, "myapp", "DECLINE", "retry")
		e.advance(h, r.SendAt.Sub(e.clock.now()))
		j = waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
		if j.Requests[0].Attempts != 2 {
			t.Errorf("attempts %d, want 2", j.Requests[0].Attempts)
		}
		if rec, _ := h.r.db.Refund(testTxID); len(rec.Answers) != 1 {
			t.Errorf("ledger answers = %+v", rec.Answers)
		}
	})
	t.Run("400 is final", func(t *testing.T) {
		e := newConsumptionEnv(t, nil)
		e.fake.Fail(appletest.Failure{Status: http.StatusBadRequest, ErrorCode: apple.ErrorCodeGeneralBadRequest, Path: consumptionPath})
		h := e.start(t, nil)
		h.post(t, "myapp", e.request(t, "c1", "OTHER"))
		j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionFailed))
		if r := j.Requests[0]; r.LastStatus != 400 || !strings.Contains(r.Error, "4000000") {
			t.Errorf("request = %+v", r)
		}
	})
}

func TestRepeatedConsumptionRequestsAreAnsweredOneAtATime(t *testing.T) {
	e := newConsumptionEnv(t, nil)
	e.fake.Delay = 50 * time.Millisecond // answers overlap if sent concurrently
	h := e.start(t, nil)
	for i := range 3 { // Apple asks again with new notificationUUIDs
		h.post(t, "myapp", e.request(t, fmt.Sprintf("c%d", i+1), "OTHER"))
	}
	j := waitJob(t, h, testTxID, func(j store.ConsumptionJob) bool {
		return len(j.Requests) == 3 && j.Requests[2].State == store.ConsumptionSent
	})
	for i, r := range j.Requests {
		if r.State != store.ConsumptionSent || r.UUID != fmt.Sprintf("c%d", i+1) || r.N != i+1 {
			t.Errorf("request %d = %+v", i+1, r)
		}
	}
	if n := len(e.sent()); n != 3 {
		t.Errorf("Apple got %d answers, want one per request", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.maxInFlight != 1 {
		t.Errorf("%d answers in flight at once for one transaction", e.maxInFlight)
	}
	if rec, _ := h.r.db.Refund(testTxID); rec.Requests != 3 || len(rec.Answers) != 3 {
		t.Errorf("ledger: %d requests, %d answers", rec.Requests, len(rec.Answers))
	}
}

func TestUnverifiedConsumptionRequestCreatesNoWork(t *testing.T) {
	e := newConsumptionEnv(t, nil)
	h := e.start(t, nil)
	other := newCA(t) // nobody trusts it
	forged := body(t, other, appletest.Notification{
		Type: "CONSUMPTION_REQUEST", UUID: "forged", SignedDate: t0, ConsumptionRequestReason: "OTHER",
		Transaction: &apple.Transaction{TransactionID: testTxID, Price: 4990, Currency: "EUR"},
	})
	h.post(t, "myapp", forged)
	if n := h.waitProcessed(t, 1); n.State != store.StateUnverified {
		t.Fatalf("state %s", n.State)
	}
	// A verified copy of a notification already held is a duplicate: no second request.
	genuine := e.request(t, "c1", "OTHER")
	h.post(t, "myapp", genuine)
	h.post(t, "myapp", genuine)
	h.waitProcessed(t, 3)
	if _, err := h.r.db.Refund("nope"); err == nil {
		t.Fatal("ledger lookup of an unknown transaction succeeded")
	}
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
	if len(j.Requests) != 1 || j.Requests[0].UUID != "c1" {
		t.Errorf("job = %+v; want only the verified request", j.Requests)
	}
	rec, _ := h.r.db.Refund(testTxID)
	if rec.Requests != 1 || len(rec.Events) != 1 {
		t.Errorf("ledger = %+v", rec)
	}
	waitCounter(t, h.r.metrics.refunds, 1, "myapp", "CONSUMPTION_REQUEST")
}

func TestConsumptionAdminActions(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ReviewDelay = 5 * time.Hour })
	const other = "2000000999"
	e.fake.Transactions = append(e.fake.Transactions, apple.Transaction{TransactionID: other})
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "UNINTENDED_PURCHASE"))
	h.post(t, "myapp", body(t, e.ca, appletest.Notification{Type: "CONSUMPTION_REQUEST", UUID: "c2", SignedDate: t0,
		ConsumptionRequestReason: "OTHER", Transaction: &apple.Transaction{TransactionID: other, Price: 990, Currency: "USD"}}))
	waitJob(t, h, other, requestState(1, store.ConsumptionPending))
	waitJob(t, h, testTxID, requestState(1, store.ConsumptionPending))

	var list ConsumptionList
	adminGetJSON(t, h, "/api/v1/consumption?state=pending", &list)
	if len(list.Consumption) != 2 || list.Consumption[0].SecondsLeft != 12*3600 || list.Consumption[0].Planned == nil {
		t.Fatalf("pending list = %+v", list)
	}

	// Override, then send now: Apple gets the override, at once.
	var res ConsumptionActionResult
	if st := adminPostJSON(t, h, "/api/v1/consumption/"+testTxID, `{"action":"override","refund_preference":"DECLINE"}`, &res); st != 200 || res.Updated != 1 {
		t.Fatalf("override: %d %+v", st, res)
	}
	if p := res.Consumption[0].Planned; p == nil || p.RefundPreference != "DECLINE" {
		t.Errorf("planned after override = %+v", p)
	}
	if st := adminPostJSON(t, h, "/api/v1/consumption/"+testTxID, `{"action":"send_now"}`, &res); st != 200 {
		t.Fatalf("send_now: %d", st)
	}
	j := waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
	if r := j.Requests[0]; r.Source != sourceOverride || r.Answer.RefundPreference != "DECLINE" {
		t.Errorf("sent = %+v", r)
	}
	if puts := e.sent(); len(puts) != 1 || puts[0].body["refundPreference"] != "DECLINE" {
		t.Errorf("Apple got %v", puts)
	}

	// Cancel: nothing is sent, even after the delay.
	if st := adminPostJSON(t, h, "/api/v1/consumption/"+other, `{"action":"cancel","note":"support refunded it"}`, &res); st != 200 || res.Consumption[0].State != "cancelled" {
		t.Fatalf("cancel: %d %+v", st, res)
	}
	if st := adminPostJSON(t, h, "/api/v1/consumption/"+other, `{"action":"cancel"}`, nil); st != http.StatusConflict {
		t.Errorf("second cancel: %d, want 409", st)
	}
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/consumption/" + other, `{"action":"explode"}`},
		{"/api/v1/consumption/" + other, `{"action":"override","refund_preference":"MAYBE"}`},
		{"/api/v1/consumption/" + other, `{"action":"override"}`},
		{"/api/v1/consumption/" + other, `{"action":"cancel","refund_preference":"DECLINE"}`},
		{"/api/v1/consumption/" + other, `{"action":"send_now","extra":1}`},
	} {
		if st := adminPostJSON(t, h, tc.path, tc.body, nil); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.body, st)
		}
	}
	if st := adminPostJSON(t, h, "/api/v1/consumption/404404", `{"action":"cancel"}`, nil); st != http.StatusNotFound {
		t.Errorf("unknown transaction: %d, want 404", st)
	}
	e.advance(h, 6*time.Hour)
	if rec, _ := h.r.db.Refund(other); len(rec.Answers) != 1 || rec.Answers[0].State != store.ConsumptionCancelled || !strings.Contains(rec.Answers[0].Error, "support refunded it") {
		t.Errorf("ledger of the cancelled one = %+v", rec.Answers)
	}
	adminGetJSON(t, h, "/api/v1/consumption", &list)
	if len(list.Consumption) != 2 {
		t.Errorf("list = %+v", list)
	}
	if n := len(e.sent()); n != 1 {
		t.Errorf("Apple got %d answers, want 1", n)
	}
	waitCounter(t, h.r.metrics.consumptionAnswers, 1, "myapp", "DECLINE", "cancelled")
}

func TestRefundLedgerAndStatsThroughTheAPI(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.DryRun = true })
	h := e.start(t, nil)
	post := func(typ, uuid, txid string, price int64, currency string, edit func(*apple.Transaction)) {
		t.Helper()
		tx := &apple.Transaction{TransactionID: txid, OriginalTransactionID: txid, ProductID: "gems", Price: price, Currency: currency}
		if edit != nil {
			edit(tx)
		}
		n := appletest.Notification{Type: typ, UUID: uuid, SignedDate: e.clock.now(), Transaction: tx}
		if typ == "CONSUMPTION_REQUEST" {
			n.ConsumptionRequestReason = "UNSATISFIED_WITH_PURCHASE"
		}
		if got := h.post(t, "myapp", body(t, e.ca, n)); got != 200 {
			t.Fatalf("status %d", got)
		}
	}
	// A: asked and declined (won back). B: asked, refunded in full, then reversed.
	// C: refunded 50 % in USD without asking us. D: Family Sharing revoked.
	post("CONSUMPTION_REQUEST", "a1", "A", 9990, "EUR", nil)
	post("REFUND_DECLINED", "a2", "A", 9990, "EUR", nil)
	post("CONSUMPTION_REQUEST", "b1", "B", 4990, "EUR", nil)
	post("REFUND", "b2", "B", 4990, "EUR", func(tx *apple.Transaction) {
		tx.RevocationType, tx.RevocationDate = apple.RevocationTypeRefundFull, apple.TimestampOf(t0)
	})
	post("REFUND_REVERSED", "b3", "B", 4990, "EUR", nil)
	post("REFUND", "c1", "C", 2000, "USD", func(tx *apple.Transaction) {
		tx.RevocationType, tx.RevocationPercentage = apple.RevocationTypeRefundProrated, 50_000
	})
	post("REVOKE", "d1", "D", 0, "", func(tx *apple.Transaction) { tx.RevocationType = apple.RevocationTypeFamilyRevoke })
	post("DID_RENEW", "x1", "E", 100, "EUR", nil) // not ledger business
	h.waitProcessed(t, 8)
	waitFor(t, "dry-run answers", func() bool {
		a, _ := h.r.db.ConsumptionJob("A")
		b, _ := h.r.db.ConsumptionJob("B")
		return len(a.Requests) == 1 && len(b.Requests) == 1 && a.Requests[0].State != store.ConsumptionPending && b.Requests[0].State != store.ConsumptionPending
	})

	var stats RefundStatsDoc
	adminGetJSON(t, h, "/api/v1/refunds/stats?app=myapp&since=1h", &stats)
	if len(stats.Apps) != 1 {
		t.Fatalf("stats = %+v", stats)
	}
	s := stats.Apps[0]
	if s.Requests != 2 || s.Declined != 1 || s.Refunded != 2 || s.Reversed != 1 || s.Revoked != 1 || s.WinBackRate != 1.0/3 {
		t.Errorf("counts = %+v", s.RefundStatsFigure)
	}
	if eur := s.Amounts["EUR"]; eur != (CurrencyAmount{Refunded: 4990, Declined: 9990, Reversed: 4990}) {
		t.Errorf("EUR = %+v", eur)
	}
	if usd := s.Amounts["USD"]; usd != (CurrencyAmount{Refunded: 1000}) {
		t.Errorf("USD = %+v", usd)
	}
	// GET /api/v1/stats carries the same figures.
	var all Stats
	adminGetJSON(t, h, "/api/v1/stats?since=1h", &all)
	if all.Refunds.Total.Declined != 1 || all.Refunds.Total.Refunded != 2 || all.Refunds.Total.Amounts["EUR"] != s.Amounts["EUR"] {
		t.Errorf("stats.refunds.total = %+v", all.Refunds.Total)
	}
	// A was declined before its dry-run answer was due... or after; either way it is recorded once.
	if s.DryRun+s.Cancelled != 2 {
		t.Errorf("answers: dry_run %d cancelled %d, want 2 in all", s.DryRun, s.Cancelled)
	}

	var list RefundList
	adminGetJSON(t, h, "/api/v1/refunds?limit=2", &list)
	if len(list.Refunds) != 2 || list.NextCursor == "" {
		t.Fatalf("first page = %+v", list)
	}
	seen := len(list.Refunds)
	for list.NextCursor != "" {
		cursor := list.NextCursor
		list = RefundList{}
		adminGetJSON(t, h, "/api/v1/refunds?limit=2&cursor="+cursor, &list)
		seen += len(list.Refunds)
	}
	if seen != 4 {
		t.Errorf("paged through %d records, want 4", seen)
	}
	adminGetJSON(t, h, "/api/v1/refunds?outcome=reversed", &list)
	if len(list.Refunds) != 1 || list.Refunds[0].TransactionID != "B" || list.Refunds[0].RefundedAmount != 0 || len(list.Refunds[0].Events) != 3 {
		t.Errorf("reversed = %+v", list.Refunds)
	}
	var rec store.Refund
	adminGetJSON(t, h, "/api/v1/refunds/A", &rec)
	if rec.Outcome != store.RefundDeclined || rec.Price != 9990 || rec.Reasons[0] != "UNSATISFIED_WITH_PURCHASE" {
		t.Errorf("A = %+v", rec)
	}
	for _, q := range []string{"/api/v1/refunds?outcome=lost", "/api/v1/refunds?cursor=zzz", "/api/v1/refunds/stats?since=yesterday", "/api/v1/consumption?state=done"} {
		if st := adminGetJSON(t, h, q, nil); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, st)
		}
	}
	if st := adminGetJSON(t, h, "/api/v1/refunds/stats?app=nope", nil); st != http.StatusNotFound {
		t.Errorf("unknown app: %d, want 404", st)
	}
	for typ, want := range map[string]float64{"CONSUMPTION_REQUEST": 2, "REFUND": 2, "REFUND_DECLINED": 1, "REFUND_REVERSED": 1, "REVOKE": 1, "DID_RENEW": 0} {
		waitCounter(t, h.r.metrics.refunds, want, "myapp", typ)
	}
}

func TestConsumptionDeadlineGauge(t *testing.T) {
	e := newConsumptionEnv(t, func(app *config.App) { app.Consumption.ReviewDelay = 3 * time.Hour })
	h := e.start(t, nil)
	h.post(t, "myapp", e.request(t, "c1", "OTHER"))
	waitJob(t, h, testTxID, requestState(1, store.ConsumptionPending))
	e.clock.add(2 * time.Hour)
	metrics := scrapeText(t, h)
	if !strings.Contains(metrics, "asnrelay_consumption_deadline_seconds 36000\n") || !strings.Contains(metrics, "asnrelay_consumption_pending 1\n") {
		t.Errorf("metrics lack the deadline gauge at 10 h left:\n%s", linesWith(metrics, "asnrelay_consumption"))
	}
}

// apiGet GETs path from the admin API into out (when not nil) and returns the status.
func adminGetJSON(t *testing.T, h *harness, path string, out any) int {
	t.Helper()
	resp, err := http.Get(h.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func adminPostJSON(t *testing.T, h *harness, path, body string, out any) int {
	t.Helper()
	resp, err := http.Post(h.admin+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// waitCounter waits for a counter to reach want: metrics are counted just
// after the state they count is committed.
func waitCounter(t *testing.T, c *prometheus.CounterVec, want float64, labels ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("counter %v = %v", labels, want), func() bool { return vecValue(t, c, labels...) == want })
}

func vecValue(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func scrapeText(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func linesWith(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestConsumptionTryWithoutSending(t *testing.T) {
	zero, pct := int32(0), "GRANT_PRORATED"
	app := config.DefaultApp()
	app.Name, app.Consumption.Enabled, app.Consumption.DryRun = "myapp", true, false
	disabled := app
	disabled.Name, disabled.Consumption.Enabled = "off", false
	apps := map[string]*config.App{"myapp": &app, "off": &disabled}
	noClient := func(string, apple.Environment) (*apple.Client, bool) { return nil, false }
	w := newConsumptionWorker(nil, apps, noClient, zerolog.Nop(), nil, func() time.Time { return t0 }, nil, "test")
	req := store.ConsumptionRequest{N: 1, Reason: "OTHER", Deadline: t0.Add(time.Hour), SendAt: t0, State: store.ConsumptionPending}
	for _, tc := range []struct {
		name  string
		job   store.ConsumptionJob
		edit  func(r *store.ConsumptionRequest)
		state store.ConsumptionState
		err   string
	}{
		{"no api block", store.ConsumptionJob{App: "myapp", Environment: "Production"}, nil, store.ConsumptionFailed, "no api block"},
		{"Xcode data", store.ConsumptionJob{App: "myapp", Environment: "Xcode"}, nil, store.ConsumptionSkipped, "Xcode"},
		{"app gone", store.ConsumptionJob{App: "gone", Environment: "Sandbox"}, nil, store.ConsumptionFailed, "no longer configured"},
		{"consumption disabled since", store.ConsumptionJob{App: "off", Environment: "Sandbox"}, nil, store.ConsumptionSkipped, "no longer enabled"},
		{"deadline passed", store.ConsumptionJob{App: "myapp", Environment: "Sandbox"}, func(r *store.ConsumptionRequest) { r.Deadline = t0 }, store.ConsumptionFailed, "deadline"},
		{"invalid override", store.ConsumptionJob{App: "myapp", Environment: "Sandbox"}, func(r *store.ConsumptionRequest) {
			r.Override = &store.ConsumptionFields{RefundPreference: &pct, ConsumptionPercentage: &zero}
		}, store.ConsumptionFailed, "GRANT_PRORATED"},
	} {
		r := req
		if tc.edit != nil {
			tc.edit(&r)
		}
		res, ok := w.try(context.Background(), tc.job, r)
		if !ok || res.State != tc.state || !strings.Contains(res.Error, tc.err) || res.Attempted {
			t.Errorf("%s: %v %s %q, want %s %q", tc.name, ok, res.State, res.Error, tc.state, tc.err)
		}
	}
}

func FuzzParseProviderAnswer(f *testing.F) {
	f.Add([]byte(`{"customer_consented":false,"delivery_status":"UNDELIVERED_OTHER"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := parseProviderAnswer(data)
		if err != nil {
			if !fields.IsZero() {
				t.Fatalf("error %v with fields %+v", err, fields)
			}
			return
		}
		if err := checkFields(fields); err != nil {
			t.Fatalf("accepted an answer with %v", err)
		}
		// Whatever it sets, the answer stays one this package can record and check.
		a := applyFields(policyAnswer(config.Consumption{CustomerConsented: true, DeliveryStatus: "DELIVERED"}, "OTHER"), fields)
		_ = a.Validate()
		if _, err := json.Marshal(storedAnswer(a)); err != nil {
			t.Fatal(err)
		}
	})
}
