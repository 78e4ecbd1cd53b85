package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// t0 anchors the test CA; verification runs at each payload's signedDate,
// so nothing depends on the machine's clock.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const testBundle = "com.example.app"

func newCA(t testing.TB) *appletest.CA {
	t.Helper()
	ca, err := appletest.New(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// testConfig is a valid config on loopback ports chosen by the kernel,
// trusting ca's root, with one app and the given targets.
func testConfig(t testing.TB, ca *appletest.CA, targets ...config.Target) *config.Config {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, ca.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.MaxBodyBytes = 64 << 10
	cfg.Apple.RootCerts = []string{root}
	app := config.DefaultApp()
	app.Name, app.BundleID, app.AppAppleID = "myapp", testBundle, 1234567890
	app.Environments = []string{"Production", "Sandbox"}
	cfg.Apps = []config.App{app}
	cfg.Targets = targets
	return &cfg
}

// target is a config.Target with defaults and fast retries.
func target(name, url string, edit ...func(*config.Target)) config.Target {
	tg := config.DefaultTarget()
	tg.Name, tg.URL = name, url
	tg.Retry = config.Retry{Initial: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxAge: time.Hour}
	for _, e := range edit {
		e(&tg)
	}
	return tg
}

// harness is a running relay.
type harness struct {
	r      *Relay
	url    string // public base URL
	admin  string // admin base URL
	cancel context.CancelFunc
	done   chan error
	// storeClosed skips the integrity check of a store a test closed itself.
	storeClosed bool
}

func startRelay(t testing.TB, cfg *config.Config) *harness {
	t.Helper()
	r, err := New(cfg, zerolog.Nop(), Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{r: r, url: "http://" + r.Addr().String(), admin: "http://" + r.AdminAddr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop shuts the relay down, checks it exited cleanly and the file is sound.
func (h *harness) stop(t testing.TB) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		t.Errorf("run: %v", err)
	}
	if err := h.r.db.Check(); err != nil && !h.storeClosed {
		t.Errorf("bbolt check: %v", err)
	}
	if err := h.r.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func (h *harness) post(t testing.TB, app string, body []byte) int {
	t.Helper()
	resp, err := http.Post(h.url+"/asn/"+app, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && len(got) != 0 {
		t.Errorf("200 with a body: %q", got)
	}
	return resp.StatusCode
}

func (h *harness) count(t testing.TB) int {
	t.Helper()
	n, err := h.r.db.NotificationCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitProcessed waits until notification seq has left the received state.
func (h *harness) waitProcessed(t testing.TB, seq uint64) store.Notification {
	t.Helper()
	var n store.Notification
	waitFor(t, "notification processed", func() bool {
		var err error
		n, err = h.r.db.Notification(seq)
		return err == nil && n.State != store.StateReceived
	})
	return n
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sink is a target that records what it receives.
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	status  int
}

func newSink(t testing.TB) *sink {
	s := &sink{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.headers = append(s.headers, r.Header.Clone())
		status := s.status
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func body(t testing.TB, ca *appletest.CA, n appletest.Notification) []byte {
	t.Helper()
	if n.BundleID == "" {
		n.BundleID = testBundle
	}
	b, err := ca.Body(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIngestAnswers(t *testing.T) {
	ca := newCA(t)
	h := startRelay(t, testConfig(t, ca))
	valid := body(t, ca, appletest.Notification{})
	for _, tc := range []struct {
		name, method, app string
		body              []byte
		chunked           bool
		want              int
		stored            int
	}{
		{"well-formed", "POST", "myapp", valid, false, 200, 1},
		{"well-formed, chunked", "POST", "myapp", valid, true, 200, 1},
		{"bad signature is still stored", "POST", "myapp", []byte(`{"signedPayload":"not.a.jws"}`), false, 200, 1},
		{"over the limit", "POST", "myapp", bytes.Repeat([]byte("a"), 64<<10+1), false, 413, 0},
		{"over the limit, chunked", "POST", "myapp", bytes.Repeat([]byte(" "), 200<<10), true, 413, 0},
		{"empty", "POST", "myapp", nil, false, 400, 0},
		{"garbage", "POST", "myapp", []byte("\x00\xff garbage"), false, 400, 0},
		{"JSON without signedPayload", "POST", "myapp", []byte(`{"payload":"x"}`), false, 400, 0},
		{"signedPayload not a string", "POST", "myapp", []byte(`{"signedPayload":42}`), false, 400, 0},
		{"truncated JSON", "POST", "myapp", []byte(`{"signedPayload":"a.b.c"`), false, 400, 0},
		{"unknown app", "POST", "other", valid, false, 404, 0},
		{"GET", "GET", "myapp", nil, false, 405, 0},
		{"PUT", "PUT", "myapp", valid, false, 405, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.count(t)
			var rd io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				rd = io.MultiReader(rd) // hides the length: chunked encoding
			}
			req, _ := http.NewRequest(tc.method, h.url+"/asn/"+tc.app, rd)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
			}
			if got := h.count(t) - before; got != tc.stored {
				t.Errorf("stored %d notifications, want %d", got, tc.stored)
			}
		})
	}
	// Exactly at the limit is accepted.
	atLimit := append([]byte(`{"signedPayload":"x`), bytes.Repeat([]byte("a"), 64<<10-21)...)
	atLimit = append(atLimit, '"', '}')
	if len(atLimit) != 64<<10 {
		t.Fatalf("test body is %d bytes", len(atLimit))
	}
	if got := h.post(t, "myapp", atLimit); got != 200 {
		t.Errorf("body of exactly max_body_bytes: %d, want 200", got)
	}
}

func TestClosedStoreAnswers503(t *testing.T) {
	ca := newCA(t)
	h := startRelay(t, testConfig(t, ca))
	h.r.db.Close() // as if the disk went away
	h.storeClosed = true
	if got := h.post(t, "myapp", body(t, ca, appletest.Notification{})); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
}

func TestVerifiedNotificationReachesTargetsByteIdentical(t *testing.T) {
	ca := newCA(t)
	a, b := newSink(t), newSink(t)
	h := startRelay(t, testConfig(t, ca, target("a", a.URL), target("b", b.URL)))
	signed, err := ca.SignNotification(appletest.Notification{Type: "DID_RENEW", BundleID: testBundle, UUID: "11111111-2222-3333-4444-555555555555"})
	if err != nil {
		t.Fatal(err)
	}
	// Odd whitespace, key order and escapes must survive untouched.
	raw := []byte("{\n  \"z\" : \"\\u00e9\\/\",\t\"signedPayload\" :\"" + signed + "\" , \"a\":[ ]}\r\n")
	if got := h.post(t, "myapp", raw); got != 200 {
		t.Fatalf("status %d", got)
	}
	waitFor(t, "both targets", func() bool { return len(a.received()) == 1 && len(b.received()) == 1 })
	for _, s := range []*sink{a, b} {
		if got := s.received()[0]; !bytes.Equal(got, raw) {
			t.Errorf("target got\n%q\nwant\n%q", got, raw)
		}
		hd := s.headers[0]
		if hd.Get("Webhook-Id") != "11111111-2222-3333-4444-555555555555" || hd.Get("Asnrelay-Notification-Type") != "DID_RENEW" ||
			hd.Get("Asnrelay-Environment") != "Sandbox" || hd.Get("Asnrelay-App") != "myapp" || hd.Get("User-Agent") != "asnrelay/test" {
			t.Errorf("headers = %v", hd)
		}
	}
	n := h.waitProcessed(t, 1)
	if n.State != store.StateVerified || n.Type != "DID_RENEW" || n.UUID == "" {
		t.Errorf("stored state = %+v", n)
	}
}

func TestUnverifiedIsStoredButOnlyForwardedToTargetsThatAskForIt(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	strict, loose := newSink(t), newSink(t)
	h := startRelay(t, testConfig(t, ca, target("strict", strict.URL),
		target("loose", loose.URL, func(tg *config.Target) { tg.VerifiedOnly = false })))
	forged := body(t, other, appletest.Notification{Type: "REFUND"}) // signed by a CA nobody trusts
	if got := h.post(t, "myapp", forged); got != 200 {
		t.Fatalf("status %d; a stored body is acknowledged whatever its signature", got)
	}
	n := h.waitProcessed(t, 1)
	if n.State != store.StateUnverified || apple.Reason(n.Reason[strings.Index(n.Reason, ": ")+2:][:len("untrusted_root")]) != apple.ReasonUntrustedRoot {
		t.Errorf("state %s, reason %q; want unverified, untrusted_root", n.State, n.Reason)
	}
	waitFor(t, "the loose target", func() bool { return len(loose.received()) == 1 })
	if got := strict.received(); len(got) != 0 {
		t.Errorf("verified_only target received %d unverified notifications", len(got))
	}
	if stored, _ := h.r.db.Body(1); !bytes.Equal(stored, forged) {
		t.Error("stored body differs from the one received")
	}
}

func TestIdentityMismatchIsUnverified(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelay(t, testConfig(t, ca, target("t", s.URL)))
	for i, tc := range []struct {
		n      appletest.Notification
		reason apple.Reason
	}{
		{appletest.Notification{BundleID: "com.other.app"}, apple.ReasonWrongBundle},
		{appletest.Notification{Environment: "Production", AppAppleID: 999}, apple.ReasonWrongAppAppleID},
		{appletest.Notification{Environment: "Xcode"}, apple.ReasonWrongEnvironment},
	} {
		if got := h.post(t, "myapp", body(t, ca, tc.n)); got != 200 {
			t.Fatalf("status %d", got)
		}
		n := h.waitProcessed(t, uint64(i+1))
		if n.State != store.StateUnverified || !strings.Contains(n.Reason, string(tc.reason)) {
			t.Errorf("case %d: state %s reason %q, want unverified %s", i, n.State, n.Reason, tc.reason)
		}
	}
	if got := len(s.received()); got != 0 {
		t.Errorf("target received %d mismatched notifications", got)
	}
}

func TestDuplicateUUIDIsDeliveredOnce(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelay(t, testConfig(t, ca, target("t", s.URL)))
	b := body(t, ca, appletest.Notification{UUID: "dup-uuid"})
	for range 3 { // Apple's retries keep the notificationUUID
		if got := h.post(t, "myapp", b); got != 200 {
			t.Fatalf("status %d", got)
		}
	}
	for seq := uint64(1); seq <= 3; seq++ {
		h.waitProcessed(t, seq)
	}
	n2, _ := h.r.db.Notification(2)
	if n2.State != store.StateDuplicate {
		t.Errorf("second copy is %s, want duplicate", n2.State)
	}
	// The target's 200 is recorded just after it answers: wait for both.
	waitFor(t, "one delivery, recorded", func() bool {
		count, _, _ := h.r.db.PendingStats("t")
		return len(s.received()) >= 1 && count == 0
	})
	if got := len(s.received()); got != 1 {
		t.Errorf("target received %d copies, want 1", got)
	}
}

func TestTargetFilters(t *testing.T) {
	ca := newCA(t)
	all, renew, offer, decoded := newSink(t), newSink(t), newSink(t), newSink(t)
	h := startRelay(t, testConfig(t, ca,
		target("all", all.URL),
		target("renew", renew.URL, func(tg *config.Target) { tg.Types = []string{"DID_RENEW"} }),
		target("offer", offer.URL, func(tg *config.Target) {
			tg.Types = []string{"SUBSCRIBED.RESUBSCRIBE"}
			tg.Environments = []string{"Sandbox"}
		}),
		target("decoded", decoded.URL, func(tg *config.Target) { tg.Payload = config.PayloadDecoded; tg.Apps = []string{"myapp"} }),
	))
	sends := []appletest.Notification{
		{Type: "DID_RENEW", UUID: "u1"},
		{Type: "SUBSCRIBED", Subtype: "RESUBSCRIBE", UUID: "u2"},
		{Type: "SUBSCRIBED", Subtype: "INITIAL_BUY", UUID: "u3"},
	}
	for _, n := range sends {
		h.post(t, "myapp", body(t, ca, n))
	}
	waitFor(t, "deliveries", func() bool {
		return len(all.received()) == 3 && len(renew.received()) == 1 && len(offer.received()) == 1 && len(decoded.received()) == 3
	})
	var doc struct {
		Notification struct {
			NotificationUUID string `json:"notificationUUID"`
			NotificationType string `json:"notificationType"`
		} `json:"notification"`
	}
	if err := json.Unmarshal(decoded.received()[0], &doc); err != nil || doc.Notification.NotificationUUID == "" {
		t.Errorf("decoded payload %s: %v", decoded.received()[0], err)
	}
	for i, want := range map[*sink]string{renew: "u1", offer: "u2"} {
		if got := i.headers[0].Get("Webhook-Id"); got != want {
			t.Errorf("filtered target got %s, want %s", got, want)
		}
	}
}

func TestXcodeDataAcceptedOnlyWhenTheAppListsIt(t *testing.T) {
	signer := newCA(t) // Xcode signs with its own certificate, which we do not trust
	s := newSink(t)
	cfg := testConfig(t, newCA(t), target("t", s.URL))
	cfg.Apps[0].Environments = []string{"Sandbox", "Xcode"}
	h := startRelay(t, cfg)
	h.post(t, "myapp", body(t, signer, appletest.Notification{Environment: "Xcode", UUID: "x1"}))
	h.post(t, "myapp", body(t, signer, appletest.Notification{Environment: "Sandbox", UUID: "x2"}))
	if n := h.waitProcessed(t, 1); n.State != store.StateVerified || !strings.Contains(n.Reason, "not signed by Apple") {
		t.Errorf("Xcode notification: %s %q", n.State, n.Reason)
	}
	if n := h.waitProcessed(t, 2); n.State != store.StateUnverified {
		t.Errorf("Sandbox notification from an untrusted CA: %s", n.State)
	}
	waitFor(t, "the Xcode notification", func() bool { return len(s.received()) == 1 })
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	ca := newCA(t)
	cfg := testConfig(t, ca)
	h := startRelay(t, cfg)
	b := body(t, ca, appletest.Notification{})
	pr, pw := io.Pipe()
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", h.url+"/asn/myapp", pr)
		req.ContentLength = int64(len(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	pw.Write(b[:10]) // the request is in flight
	waitFor(t, "request in flight", func() bool { return gaugeValue(h.r.metrics.ingestInFlight) == 1 })
	h.cancel() // SIGTERM
	waitFor(t, "shutdown started", func() bool { return !h.r.ready.Load() })
	pw.Write(b[10:])
	pw.Close()
	if got := <-result; got != 200 {
		t.Fatalf("in-flight request got %d during shutdown, want 200", got)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	h.cancel = nil
	if n := h.count(t); n != 1 {
		t.Errorf("stored %d, want 1", n)
	}
	h.r.Close()
}

func gaugeValue(g prometheus.Metric) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
