package relay

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// scrape reads /metrics and returns every sample by name{labels}, labels
// sorted by name: `asnrelay_deliveries_total{result="success",target="good"}`.
func (h *harness) scrape(t testing.TB) map[string]float64 {
	t.Helper()
	status, body := h.call(t, "GET", "/metrics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[canonicalSample(line[:i])] = v
	}
	return out
}

// canonicalSample sorts the labels of `name{a="1",b="2"}`.
func canonicalSample(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok {
		return s
	}
	parts := strings.Split(strings.TrimSuffix(labels, "}"), ",")
	slices.Sort(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

func TestMetricsAfterAKnownSequence(t *testing.T) {
	ca := newCA(t)
	good, bad := newSink(t), newSink(t)
	bad.status = http.StatusInternalServerError
	clock := newTestClock(t0.Add(time.Hour))
	cfg := testConfig(t, ca,
		target("good", good.URL, func(tg *config.Target) { tg.Types = []string{"DID_RENEW"} }),
		target("bad", bad.URL, func(tg *config.Target) {
			tg.Types = []string{"SUBSCRIBED"}
			tg.Retry = config.Retry{Initial: time.Hour, MaxInterval: time.Hour, MaxAge: 2 * time.Hour}
		}),
		target("slow", bad.URL, func(tg *config.Target) {
			tg.Types = []string{"SUBSCRIBED"}
			tg.Retry = config.Retry{Initial: 10 * time.Hour, MaxInterval: 10 * time.Hour, MaxAge: 24 * time.Hour}
		}))
	h := startRelayWith(t, cfg, Options{Version: "test", Now: clock.now})

	if got := h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: "m1"})); got != 200 {
		t.Fatal(got)
	}
	if got := h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "SUBSCRIBED", Subtype: "INITIAL_BUY", UUID: "m2"})); got != 200 {
		t.Fatal(got)
	}
	if got := h.post(t, "myapp", []byte(`{"signedPayload":`)); got != 400 {
		t.Fatal(got)
	}
	deliveredTo(t, good, 1)
	// bad and slow fail their first attempt and wait an hour; then the clock
	// passes bad's max_age: its delivery dies, slow's waits on.
	h.waitDeliveries(t, store.DeliveryFilter{Target: "bad", State: store.DeliveryPending}, 1)
	waitFor(t, "first failed attempts", func() bool {
		ds, _, _ := h.r.db.Deliveries(store.DeliveryFilter{State: store.DeliveryPending}, 0, 10)
		return len(ds) == 2 && ds[0].Attempts == 1 && ds[1].Attempts == 1
	})
	clock.add(3 * time.Hour)
	h.r.forward.Wake()
	h.waitDeliveries(t, store.DeliveryFilter{Target: "bad", State: store.DeliveryDead}, 1)

	m := h.scrape(t)
	want := map[string]float64{
		`asnrelay_ingest_requests_total{app="myapp",code="200"}`:                                             2,
		`asnrelay_ingest_requests_total{app="myapp",code="400"}`:                                             1,
		`asnrelay_ingest_duration_seconds_count`:                                                             2,
		`asnrelay_notifications_total{app="myapp",environment="Sandbox",state="verified",type="DID_RENEW"}`:  1,
		`asnrelay_notifications_total{app="myapp",environment="Sandbox",state="verified",type="SUBSCRIBED"}`: 1,
		`asnrelay_deliveries_total{result="success",target="good"}`:                                          1,
		`asnrelay_deliveries_total{result="retry",target="bad"}`:                                             1,
		`asnrelay_deliveries_total{result="dead",target="bad"}`:                                              1,
		`asnrelay_deliveries_total{result="retry",target="slow"}`:                                            1,
		`asnrelay_delivery_attempt_duration_seconds_count{target="good"}`:                                    1,
		`asnrelay_delivery_attempt_duration_seconds_count{target="bad"}`:                                     1,
		`asnrelay_deliveries_pending{target="good"}`:                                                         0,
		`asnrelay_deliveries_pending{target="bad"}`:                                                          0,
		`asnrelay_deliveries_pending{target="slow"}`:                                                         1,
		`asnrelay_deliveries_dead{target="good"}`:                                                            0,
		`asnrelay_deliveries_dead{target="bad"}`:                                                             1,
		`asnrelay_deliveries_dead{target="slow"}`:                                                            0,
		`asnrelay_oldest_pending_seconds{target="good"}`:                                                     0,
		`asnrelay_oldest_pending_seconds{target="slow"}`:                                                     3 * 3600,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, k := range []string{"asnrelay_store_commit_duration_seconds_count", "asnrelay_store_batch_size_count", "asnrelay_ingest_in_flight_requests", "go_goroutines", "process_open_fds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	if m["asnrelay_store_commit_duration_seconds_count"] < 3 {
		t.Errorf("commits = %v, want at least the 2 appends and the processing", m["asnrelay_store_commit_duration_seconds_count"])
	}
	if _, ok := m[`asnrelay_ingest_requests_total{app="myapp",code="413"}`]; ok {
		t.Error("a code that never happened is exported")
	}

	// A replay of the dead one that succeeds moves the figures on.
	bad.mu.Lock()
	bad.status = http.StatusOK
	bad.mu.Unlock()
	var res ReplayResult
	h.postJSON(t, "/api/v1/replay", ReplayRequest{State: "dead", Target: "bad"}, &res)
	h.waitDeliveries(t, store.DeliveryFilter{Target: "bad", State: store.DeliverySucceeded}, 1)
	// The counter moves just after the attempt is recorded.
	waitFor(t, "the success counted", func() bool {
		m = h.scrape(t)
		return m[`asnrelay_deliveries_total{result="success",target="bad"}`] == 1
	})
	for k, v := range map[string]float64{
		`asnrelay_deliveries_total{result="success",target="bad"}`: 1,
		`asnrelay_deliveries_dead{target="bad"}`:                   0,
		`asnrelay_deliveries_pending{target="bad"}`:                0,
	} {
		if m[k] != v {
			t.Errorf("after replay: %s = %v, want %v", k, m[k], v)
		}
	}
}
