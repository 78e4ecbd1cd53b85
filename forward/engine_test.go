package forward

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/store"
)

// clock is a settable clock shared by the store and the engine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sink is a target that records requests and answers with respond(n), n
// counting from 1.
type sink struct {
	*httptest.Server
	mu          sync.Mutex
	bodies      [][]byte
	headers     []http.Header
	requests    atomic.Int64
	active      atomic.Int64
	maxActive   atomic.Int64
	respond     func(n int, w http.ResponseWriter)
	respondLock sync.Mutex
}

func newSink(t *testing.T, respond func(n int, w http.ResponseWriter)) *sink {
	s := &sink{respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := s.active.Add(1)
		defer s.active.Add(-1)
		for m := s.maxActive.Load(); a > m && !s.maxActive.CompareAndSwap(m, a); m = s.maxActive.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		n := int(s.requests.Add(1))
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		s.respondLock.Lock()
		respond := s.respond
		s.respondLock.Unlock()
		if respond != nil {
			respond(n, w)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) setRespond(f func(n int, w http.ResponseWriter)) {
	s.respondLock.Lock()
	s.respond = f
	s.respondLock.Unlock()
}

type fixture struct {
	db       *store.DB
	engine   *Engine
	clock    *clock
	recorded atomic.Int64
	cancel   context.CancelFunc
	done     chan struct{}
}

// start opens a store, builds an engine for targets and runs it until the test ends.
func start(t *testing.T, clk *clock, targets ...Target) *fixture {
	t.Helper()
	return startWith(t, clk, Options{}, targets...)
}

// startWith is start with opts; it sets their clock, user agent and OnAttempt.
func startWith(t *testing.T, clk *clock, opts Options, targets ...Target) *fixture {
	t.Helper()
	return startStore(t, clk, store.Options{}, opts, targets...)
}

// startStore is startWith with the store's options too; it sets their clock.
func startStore(t *testing.T, clk *clock, sopts store.Options, opts Options, targets ...Target) *fixture {
	t.Helper()
	f := &fixture{clock: clk, done: make(chan struct{})}
	now := time.Now
	if clk != nil {
		now = clk.Now
	}
	sopts.Now = now
	db, err := store.Open(filepath.Join(t.TempDir(), "asnrelay.db"), sopts)
	if err != nil {
		t.Fatal(err)
	}
	f.db = db
	opts.Now, opts.UserAgent = now, "asnrelay/test"
	opts.OnAttempt = func(store.Delivery, store.Attempt, string) { f.recorded.Add(1) }
	f.engine, err = New(db, targets, zerolog.Nop(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { defer close(f.done); f.engine.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-f.done
		if err := db.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		db.Close()
	})
	return f
}

// deliver stores body and creates one delivery of it per target.
func (f *fixture) deliver(t *testing.T, body []byte, targets ...string) []store.Delivery {
	t.Helper()
	seq, err := f.db.Append(store.Incoming{App: "myapp", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	var nds []store.NewDelivery
	for _, name := range targets {
		nds = append(nds, store.NewDelivery{Seq: seq, Target: name, Payload: store.PayloadRaw, App: "myapp",
			Environment: "Sandbox", Type: "DID_RENEW", UUID: "uuid-" + strconv.FormatUint(seq, 10)})
	}
	ds, err := f.db.CreateDeliveries(nds)
	if err != nil {
		t.Fatal(err)
	}
	f.engine.Wake()
	return ds
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fixture) state(t *testing.T, id uint64) store.Delivery {
	t.Helper()
	d, err := f.db.Delivery(id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeliversExactBytesAndHeadersToEveryTarget(t *testing.T) {
	a := newSink(t, nil)
	b := newSink(t, nil)
	key := []byte("0123456789abcdef0123456789abcdef")
	f := start(t, nil,
		Target{Name: "a", URL: a.URL, Headers: map[string]string{"Authorization": "Bearer tok"}},
		Target{Name: "b", URL: b.URL, Secret: "whsec_" + base64.StdEncoding.EncodeToString(key)},
	)
	body := []byte("{ \"signedPayload\":\"e30.e30.sig\",  \"z\": \"\\u00e9\\n\", \"a\" : [ ] }\n")
	ds := f.deliver(t, body, "a", "b")
	waitFor(t, "both deliveries to succeed", func() bool {
		return f.state(t, ds[0].ID).State == store.DeliverySucceeded && f.state(t, ds[1].ID).State == store.DeliverySucceeded
	})
	for _, s := range []*sink{a, b} {
		s.mu.Lock()
		if len(s.bodies) != 1 || string(s.bodies[0]) != string(body) {
			t.Errorf("target got %q, want %q", s.bodies, body)
		}
		h := s.headers[0]
		s.mu.Unlock()
		for k, want := range map[string]string{
			"Content-Type": "application/json", "User-Agent": "asnrelay/test", "Asnrelay-App": "myapp",
			"Asnrelay-Environment": "Sandbox", "Asnrelay-Notification-Type": "DID_RENEW", "Asnrelay-Attempt": "1",
			"Webhook-Id": ds[0].UUID,
		} {
			if got := h.Get(k); got != want {
				t.Errorf("header %s = %q, want %q", k, got, want)
			}
		}
	}
	if got := a.headers[0].Get("Authorization"); got != "Bearer tok" {
		t.Errorf("configured header: Authorization = %q", got)
	}
	if got := a.headers[0].Get("Webhook-Signature"); got != "" {
		t.Errorf("unsigned target got a signature %q", got)
	}
	// Standard Webhooks: base64(HMAC-SHA256(key, id.timestamp.body)).
	h := b.headers[0]
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, h.Get("Webhook-Id")+"."+h.Get("Webhook-Timestamp")+".")
	mac.Write(body)
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); h.Get("Webhook-Signature") != want {
		t.Errorf("webhook-signature = %q, want %q", h.Get("Webhook-Signature"), want)
	}
}

func TestFailingThenSucceedingTargetGetsOneSuccess(t *testing.T) {
	s := newSink(t, func(n int, w http.ResponseWriter) {
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "boom")
		}
	})
	f := start(t, nil, Target{Name: "t", URL: s.URL, Retry: Retry{Initial: time.Millisecond, MaxInterval: 2 * time.Millisecond}})
	ds := f.deliver(t, []byte(`{"signedPayload":"x"}`), "t")
	waitFor(t, "success", func() bool { return f.state(t, ds[0].ID).State == store.DeliverySucceeded })
	atts, err := f.db.Attempts(ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 4 {
		t.Fatalf("recorded %d attempts, want 4", len(atts))
	}
	for i, a := range atts[:3] {
		if a.Status != 500 || a.Error != "HTTP 500" || a.Response != "boom" || a.N != i+1 {
			t.Errorf("attempt %d = %+v", i+1, a)
		}
	}
	if atts[3].Status != 200 || atts[3].Error != "" {
		t.Errorf("last attempt = %+v", atts[3])
	}
	if got := s.requests.Load(); got != 4 {
		t.Errorf("target saw %d requests, want 4", got)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.headers[3].Get("Asnrelay-Attempt"); got != "4" {
		t.Errorf("Asnrelay-Attempt on the 4th request = %q", got)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	s := newSink(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	f := start(t, clk, Target{Name: "t", URL: s.URL, Retry: Retry{Initial: time.Second, MaxInterval: 2 * time.Second}})
	ds := f.deliver(t, []byte(`{"signedPayload":"x"}`), "t")
	waitFor(t, "first attempt", func() bool { return f.recorded.Load() == 1 })
	d := f.state(t, ds[0].ID)
	if wait := d.NextAttemptAt.Sub(clk.Now()); wait < 120*time.Second {
		t.Fatalf("next attempt in %v, want at least the 120s of Retry-After", wait)
	}
	clk.Add(121 * time.Second)
	f.engine.Wake()
	waitFor(t, "second attempt", func() bool { return f.state(t, ds[0].ID).State == store.DeliverySucceeded })
}

func TestMaxAgeMakesDeliveriesDeadEvenBehindAProbe(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	s := newSink(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	f := start(t, clk, Target{Name: "t", URL: s.URL, Concurrency: 1,
		Retry: Retry{Initial: time.Minute, MaxInterval: time.Hour, MaxAge: 24 * time.Hour}})
	var ids []uint64
	for range 5 {
		ids = append(ids, f.deliver(t, []byte(`{"signedPayload":"x"}`), "t")[0].ID)
	}
	waitFor(t, "first failure", func() bool { return f.recorded.Load() >= 1 })
	clk.Add(25 * time.Hour)
	f.engine.Wake()
	waitFor(t, "all dead", func() bool {
		for _, id := range ids {
			if f.state(t, id).State != store.DeliveryDead {
				return false
			}
		}
		return true
	})
	if n, _, _ := f.db.PendingStats("t"); n != 0 {
		t.Errorf("%d still pending", n)
	}
	// Four of them never got an attempt: they waited behind the probe.
	if got := s.requests.Load(); got > 2 {
		t.Errorf("target saw %d requests while failing, want at most 2", got)
	}
}

func TestFailingTargetIsProbedThenDrainedAtConcurrency(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	release := make(chan struct{})
	fail := func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }
	s := newSink(t, fail)
	f := start(t, clk, Target{Name: "t", URL: s.URL, Concurrency: 4,
		Retry: Retry{Initial: time.Second, MaxInterval: 10 * time.Second, MaxAge: 7 * 24 * time.Hour}})
	var ids []uint64
	for range 20 {
		ids = append(ids, f.deliver(t, []byte(`{"signedPayload":"x"}`), "t")[0].ID)
	}
	// First wave: at most Concurrency requests, then the target is failing.
	waitFor(t, "first wave", func() bool { return f.engine.Health()["t"].Failing && f.engine.Health()["t"].InFlight == 0 })
	first := s.requests.Load()
	if first > 4 {
		t.Fatalf("first wave sent %d requests, want at most 4", first)
	}
	// The clock has not moved, so nothing may be sent until the probe is due.
	f.engine.Wake()
	f.engine.Wake()
	if h := f.engine.Health()["t"]; h.InFlight != 0 || s.requests.Load() != first {
		t.Fatalf("sent while waiting for the probe: %+v, %d requests", h, s.requests.Load())
	}
	// Each probe is one request.
	for probe := int64(1); probe <= 3; probe++ {
		clk.Add(time.Minute)
		f.engine.Wake()
		waitFor(t, "probe", func() bool { return f.recorded.Load() == first+probe })
		if got := s.requests.Load(); got != first+probe {
			t.Fatalf("after probe %d: %d requests, want %d", probe, got, first+probe)
		}
	}
	// The target recovers; the backlog drains, never more than 4 at once.
	s.setRespond(func(int, http.ResponseWriter) { <-release })
	close(release)
	clk.Add(time.Hour)
	f.engine.Wake()
	waitFor(t, "backlog drained", func() bool {
		for _, id := range ids {
			if f.state(t, id).State != store.DeliverySucceeded {
				return false
			}
		}
		return true
	})
	if m := s.maxActive.Load(); m > 4 {
		t.Errorf("saw %d concurrent requests, want at most 4", m)
	}
}

// A delivered request gives its slot back before its attempt is recorded:
// with one request at a time and the store's writer held once the first
// record has committed, the second delivery still goes out.
func TestDeliveredSlotIsFreeWhileItsAttemptIsRecorded(t *testing.T) {
	s := newSink(t, nil)
	var hold atomic.Bool
	held, release, begin := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	f := startStore(t, nil, store.Options{OnCommit: func(int, time.Duration) {
		if hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			<-release
		}
	}}, Options{Yield: func(ctx context.Context) {
		select {
		case <-begin:
		case <-ctx.Done():
		}
	}}, Target{Name: "t", URL: s.URL, Concurrency: 1})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before the engine stops: it waits for the record
	first := f.deliver(t, []byte(`{"signedPayload":"1"}`), "t")[0]
	second := f.deliver(t, []byte(`{"signedPayload":"2"}`), "t")[0]
	hold.Store(true) // the next commit is the first attempt's record
	close(begin)
	<-held
	waitFor(t, "the second request while the first is recorded", func() bool { return s.requests.Load() == 2 })
	if h := f.engine.Health()["t"]; h.InFlight != 2 {
		t.Errorf("in flight = %d, want 2 (one recording, one sent)", h.InFlight)
	}
	unhold()
	for _, d := range []store.Delivery{first, second} {
		waitFor(t, "both recorded", func() bool { return f.state(t, d.ID).State == store.DeliverySucceeded })
	}
	if m := s.maxActive.Load(); m != 1 {
		t.Errorf("saw %d concurrent requests, want 1", m)
	}
}

// While the relay is busy, a delivered request keeps its slot until its
// attempt is recorded: the store paces deliveries, and acknowledgements keep
// the CPU.
func TestBusyRelayHoldsTheSlotUntilTheRecord(t *testing.T) {
	var hold atomic.Bool
	held, release, begin := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	s := newSink(t, func(n int, _ http.ResponseWriter) {
		if n == 2 {
			select {
			case <-release:
			default:
				t.Error("the second request went out before the first attempt was recorded")
			}
		}
	})
	var idleCalls atomic.Int64
	f := startStore(t, nil, store.Options{OnCommit: func(int, time.Duration) {
		if hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			<-release
		}
	}}, Options{
		Yield: func(ctx context.Context) {
			select {
			case <-begin:
			case <-ctx.Done():
			}
		},
		Idle: func() bool { idleCalls.Add(1); return false },
	}, Target{Name: "t", URL: s.URL, Concurrency: 1})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold)
	first := f.deliver(t, []byte(`{"signedPayload":"1"}`), "t")[0]
	second := f.deliver(t, []byte(`{"signedPayload":"2"}`), "t")[0]
	hold.Store(true) // the next commit is the first attempt's record
	close(begin)
	<-held
	if idleCalls.Load() == 0 {
		t.Fatal("the attempt did not ask whether the relay is idle")
	}
	// Nothing may go out until the record is answered. A negative cannot be
	// waited for: watch for a moment.
	time.Sleep(50 * time.Millisecond)
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("target got %d requests while the first attempt was being recorded, want 1", n)
	}
	unhold()
	for _, d := range []store.Delivery{first, second} {
		waitFor(t, "both delivered", func() bool { return f.state(t, d.ID).State == store.DeliverySucceeded })
	}
}

func TestHangingTargetTimesOutAndIsRetried(t *testing.T) {
	unblock := make(chan struct{})
	s := newSink(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			<-unblock
		}
	})
	t.Cleanup(func() { close(unblock) }) // runs before the sink's Close
	f := start(t, nil, Target{Name: "t", URL: s.URL, Timeout: 50 * time.Millisecond,
		Retry: Retry{Initial: time.Millisecond, MaxInterval: time.Millisecond}})
	ds := f.deliver(t, []byte(`{"signedPayload":"x"}`), "t")
	waitFor(t, "success after a timeout", func() bool { return f.state(t, ds[0].ID).State == store.DeliverySucceeded })
	atts, _ := f.db.Attempts(ds[0].ID)
	if len(atts) != 2 || atts[0].Error == "" || atts[0].Status != 0 {
		t.Fatalf("attempts = %+v; want a timeout then a success", atts)
	}
}

func TestRefusedConnectionIsRetriedLikeA5xx(t *testing.T) {
	s := newSink(t, nil)
	url := s.URL
	s.Close() // nothing listens there now
	f := start(t, nil, Target{Name: "t", URL: url, Retry: Retry{Initial: time.Millisecond, MaxInterval: time.Millisecond}})
	ds := f.deliver(t, []byte(`{"signedPayload":"x"}`), "t")
	waitFor(t, "two failed attempts", func() bool { return f.state(t, ds[0].ID).Attempts >= 2 })
	if d := f.state(t, ds[0].ID); d.State != store.DeliveryPending || d.LastError == "" {
		t.Fatalf("delivery = %+v; want pending with an error", d)
	}
}

func TestYieldHoldsAttemptsBack(t *testing.T) {
	s := newSink(t, nil)
	release := make(chan struct{})
	var yields atomic.Int64
	f := startWith(t, nil, Options{Yield: func(ctx context.Context) {
		yields.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
	}}, Target{Name: "a", URL: s.URL})
	d := f.deliver(t, []byte(`{"signedPayload":"x"}`), "a")[0]
	waitFor(t, "the attempt to ask to go", func() bool { return yields.Load() == 1 })
	if n := s.requests.Load(); n != 0 {
		t.Fatalf("target got %d requests while Yield held the attempt", n)
	}
	close(release)
	waitFor(t, "the delivery", func() bool { return f.state(t, d.ID).State == store.DeliverySucceeded })
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("target got %d requests, want 1", n)
	}
}

func TestShutdownWhileYieldingSendsNothing(t *testing.T) {
	s := newSink(t, nil)
	var yields atomic.Int64
	f := startWith(t, nil, Options{Yield: func(ctx context.Context) {
		yields.Add(1)
		<-ctx.Done() // ingest never goes quiet
	}}, Target{Name: "a", URL: s.URL})
	d := f.deliver(t, []byte(`{"signedPayload":"x"}`), "a")[0]
	waitFor(t, "the attempt to ask to go", func() bool { return yields.Load() == 1 })
	f.cancel()
	<-f.done
	if n := s.requests.Load(); n != 0 {
		t.Fatalf("target got %d requests from an attempt that had not begun at shutdown", n)
	}
	if got := f.state(t, d.ID); got.State != store.DeliveryPending || got.Attempts != 0 {
		t.Fatalf("delivery is %s after %d attempts, want pending and untried", got.State, got.Attempts)
	}
}

func TestRetryDelayGrowsAndStaysCapped(t *testing.T) {
	r := Retry{Initial: time.Second, MaxInterval: 30 * time.Second, MaxAge: time.Hour}
	for attempt := 1; attempt <= 20; attempt++ {
		for range 50 {
			d := r.delay(attempt)
			if d < 0 || d > r.MaxInterval {
				t.Fatalf("delay(%d) = %v outside [0, %v]", attempt, d, r.MaxInterval)
			}
		}
	}
	// Mean doubles: attempt 4's mean (8s) is well above attempt 1's (1s).
	var sum1, sum4 time.Duration
	for range 400 {
		sum1 += r.delay(1)
		sum4 += r.delay(4)
	}
	if sum4 < 4*sum1 {
		t.Errorf("mean delay at attempt 4 (%v) not well above attempt 1 (%v)", sum4/400, sum1/400)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"30", 30 * time.Second}, {"-5", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		h := http.Header{}
		if tc.in != "" {
			h.Set("Retry-After", tc.in)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("Retry-After %q = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBadSecretIsRefused(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "x.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(db, []Target{{Name: "t", URL: "http://x", Secret: "whsec_!!!"}}, zerolog.Nop(), Options{}); err == nil {
		t.Fatal("New accepted a secret that is not base64")
	}
}
