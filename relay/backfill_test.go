package relay

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// history signs n notifications for testConfig's app, an hour apart ending
// an hour ago, and returns their request bodies.
func history(t testing.TB, ca *appletest.CA, n int) [][]byte {
	t.Helper()
	now := time.Now()
	var out [][]byte
	for i := range n {
		out = append(out, body(t, ca, appletest.Notification{
			Type: "DID_RENEW", AppAppleID: 1234567890,
			SignedDate: now.Add(-time.Duration(n-i) * time.Hour),
		}))
	}
	return out
}

// signedPayloads returns the signedPayload of each body.
func signedPayloads(t testing.TB, bodies [][]byte) []string {
	t.Helper()
	var out []string
	for _, b := range bodies {
		var v struct{ SignedPayload string }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.SignedPayload)
	}
	return out
}

// waitDelivered waits until the relay holds n processed notifications and
// no delivery is pending.
func waitDelivered(t testing.TB, h *harness, n int, targets ...string) {
	t.Helper()
	waitFor(t, "all delivered", func() bool {
		list, _, err := h.r.db.Notifications(store.NotificationFilter{}, 0, 1000)
		if err != nil || len(list) != n {
			return false
		}
		for _, x := range list {
			if x.State == store.StateReceived {
				return false
			}
		}
		for _, tg := range targets {
			if pending, _, err := h.r.db.PendingStats(tg); err != nil || pending != 0 {
				return false
			}
		}
		return true
	})
}

// waitChecked waits for the key check the relay makes at start, so that its
// requests to the fake API are done.
func waitChecked(t testing.TB, h *harness) {
	t.Helper()
	waitFor(t, "the key check at start", func() bool { return len(h.r.appleState.checksOf("myapp")) > 0 })
}

func postBackfill(t testing.TB, h *harness, req BackfillRequest) (int, []byte) {
	t.Helper()
	data, _ := json.Marshal(req)
	resp, err := http.Post(h.admin+"/api/v1/backfill", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func TestBackfillStoresOnlyWhatIsMissing(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	bodies := history(t, ca, 3)
	fake.Update(func(f *appletest.FakeAPI) { f.NotificationHistory = signedPayloads(t, bodies) })
	s := newSink(t)
	cfg := testConfig(t, ca, target("backend", s.URL))
	withAPI(t, cfg, fake, url)
	h := startRelay(t, cfg)
	waitChecked(t, h)

	if code := h.post(t, "myapp", bodies[1]); code != http.StatusOK {
		t.Fatalf("ingest: %d", code)
	}
	waitDelivered(t, h, 1, "backend")

	status, answer := postBackfill(t, h, BackfillRequest{App: "myapp", Environment: "Sandbox", Start: time.Now().Add(-72 * time.Hour)})
	if status != http.StatusOK {
		t.Fatalf("backfill: %d %s", status, answer)
	}
	var res BackfillResult
	if err := json.Unmarshal(answer, &res); err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 3 || res.Stored != 2 || res.Skipped != 1 || !slices.Equal(res.Environments, []string{"Sandbox"}) {
		t.Errorf("backfill answered %+v, want 3 fetched, 2 stored, 1 skipped in Sandbox", res)
	}
	waitDelivered(t, h, 3, "backend")

	got := s.received()
	if len(got) != 3 {
		t.Fatalf("target received %d bodies, want 3", len(got))
	}
	for _, b := range bodies {
		if n := countBodies(got, b); n != 1 {
			t.Errorf("target received a notification %d times, want exactly once", n)
		}
	}
	list, _, _ := h.r.db.Notifications(store.NotificationFilter{}, 0, 10)
	backfilled := 0
	for _, n := range list {
		if n.State != store.StateVerified {
			t.Errorf("notification %d is %s (%s), want verified", n.Seq, n.State, n.Reason)
		}
		if n.RemoteAddr == backfillRemoteAddr {
			backfilled++
		}
	}
	if backfilled != 2 {
		t.Errorf("%d notifications came from the backfill, want 2", backfilled)
	}

	// Again: nothing is missing any more.
	status, answer = postBackfill(t, h, BackfillRequest{App: "myapp", Environment: "Sandbox", Start: time.Now().Add(-72 * time.Hour)})
	if err := json.Unmarshal(answer, &res); status != http.StatusOK || err != nil || res.Stored != 0 || res.Skipped != 3 {
		t.Errorf("second backfill: %d %s, want nothing stored", status, answer)
	}
	if n := h.count(t); n != 3 {
		t.Errorf("relay holds %d notifications, want 3", n)
	}
	// The history request had the window and filters asked for.
	var req struct {
		StartDate, EndDate int64
		OnlyFailures       bool
	}
	reqs := fake.Requests()
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &req); err != nil || req.StartDate == 0 || req.EndDate <= req.StartDate || req.OnlyFailures {
		t.Errorf("history request %s", reqs[len(reqs)-1].Body)
	}
}

func countBodies(list [][]byte, b []byte) int {
	n := 0
	for _, x := range list {
		if bytes.Equal(x, b) {
			n++
		}
	}
	return n
}

func TestBackfillPagesAndBothEnvironments(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	bodies := history(t, ca, 5)
	fake.Update(func(f *appletest.FakeAPI) {
		f.NotificationHistory = signedPayloads(t, bodies)
		f.PageSize = 2
	})
	s := newSink(t)
	cfg := testConfig(t, ca, target("backend", s.URL))
	withAPI(t, cfg, fake, url)
	h := startRelay(t, cfg)
	waitChecked(t, h)

	// No environment: Production and Sandbox, here the same fake, so the
	// second walk finds everything already stored.
	status, answer := postBackfill(t, h, BackfillRequest{App: "myapp", Start: time.Now().Add(-24 * time.Hour), OnlyFailures: true})
	var res BackfillResult
	if err := json.Unmarshal(answer, &res); status != http.StatusOK || err != nil {
		t.Fatalf("backfill: %d %s", status, answer)
	}
	if res.Fetched != 10 || res.Stored != 5 || res.Skipped != 5 || !slices.Equal(res.Environments, []string{"Production", "Sandbox"}) {
		t.Errorf("backfill answered %+v", res)
	}
	waitDelivered(t, h, 5, "backend")
	if got := s.received(); len(got) != 5 {
		t.Errorf("target received %d, want 5", len(got))
	}
	// Besides the key check at start (an hour, one page each), 3 pages per
	// environment, all with onlyFailures.
	pages := 0
	for _, r := range fake.Requests() {
		if r.Path == "/inApps/v1/notifications/history" && strings.Contains(string(r.Body), `"onlyFailures":true`) {
			pages++
		}
	}
	if pages != 6 {
		t.Errorf("%d history pages with onlyFailures asked for, want 3 per environment", pages)
	}
}

func TestBackfillRequestErrors(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	cfg := testConfig(t, ca)
	withAPI(t, cfg, fake, url)
	noAPI := config.DefaultApp()
	noAPI.Name, noAPI.BundleID, noAPI.Environments = "plain", "com.example.plain", []string{"Sandbox"}
	cfg.Apps = append(cfg.Apps, noAPI)
	h := startRelay(t, cfg)
	waitChecked(t, h)
	now := time.Now()
	for _, tc := range []struct {
		name string
		req  BackfillRequest
		want int
		msg  string
	}{
		{"no app", BackfillRequest{Start: now.Add(-time.Hour)}, 400, "app is required"},
		{"unknown app", BackfillRequest{App: "nope", Start: now.Add(-time.Hour)}, 404, "nope"},
		{"no api block", BackfillRequest{App: "plain", Start: now.Add(-time.Hour)}, 400, "no api block"},
		{"bad environment", BackfillRequest{App: "myapp", Environment: "Xcode", Start: now.Add(-time.Hour)}, 400, "Production or Sandbox"},
		{"no start", BackfillRequest{App: "myapp"}, 400, "start is required"},
		{"start after end", BackfillRequest{App: "myapp", Start: now.Add(-time.Hour), End: now.Add(-2 * time.Hour)}, 400, "not before"},
		{"over 180 days", BackfillRequest{App: "myapp", Start: now.Add(-181 * 24 * time.Hour)}, 400, "180 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := postBackfill(t, h, tc.req)
			if status != tc.want || !strings.Contains(string(answer), tc.msg) {
				t.Errorf("%d %s, want %d with %q", status, answer, tc.want, tc.msg)
			}
		})
	}

	t.Run("180 days as the CLI computes it is taken", func(t *testing.T) {
		status, answer := postBackfill(t, h, BackfillRequest{App: "myapp", Environment: "Sandbox", Start: time.Now().Add(-MaxBackfillWindow)})
		if status != http.StatusOK {
			t.Errorf("%d %s", status, answer)
		}
	})

	t.Run("Apple failing is a 502 saying how far it got", func(t *testing.T) {
		fake.FailNext(http.StatusUnauthorized, 0, 1)
		status, answer := postBackfill(t, h, BackfillRequest{App: "myapp", Environment: "Sandbox", Start: now.Add(-time.Hour)})
		if status != http.StatusBadGateway || !strings.Contains(string(answer), "HTTP 401") || !strings.Contains(string(answer), "fetching 0") {
			t.Errorf("%d %s, want 502 with the 401", status, answer)
		}
	})
}

func TestBackfillOnStart(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	bodies := history(t, ca, 2)
	fake.Update(func(f *appletest.FakeAPI) { f.NotificationHistory = signedPayloads(t, bodies) })
	s := newSink(t)
	cfg := testConfig(t, ca, target("backend", s.URL))
	withAPI(t, cfg, fake, url)
	cfg.Apps[0].Environments = []string{"Sandbox"}
	cfg.Apps[0].BackfillOnStart = true
	h := startRelay(t, cfg)
	waitDelivered(t, h, 2, "backend")
	if got := s.received(); len(got) != 2 {
		t.Errorf("target received %d, want 2", len(got))
	}
	// With nothing received, the window is the default 72 hours.
	for _, r := range fake.Requests() {
		if r.Path != "/inApps/v1/notifications/history" || !bytes.Contains(r.Body, []byte("startDate")) {
			continue
		}
		var req struct{ StartDate, EndDate int64 }
		json.Unmarshal(r.Body, &req)
		if got := time.Duration(req.EndDate-req.StartDate) * time.Millisecond; got < DefaultBackfillWindow-time.Minute || got > DefaultBackfillWindow+time.Minute {
			if got != checkWindow {
				t.Errorf("history window %s, want %s (or the check's %s)", got, DefaultBackfillWindow, checkWindow)
			}
		}
	}
}

func TestBackfillStartFollowsTheLastNotification(t *testing.T) {
	ca := newLiveCA(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cfg := testConfig(t, ca)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	r, err := New(cfg, zerolog.Nop(), Options{Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	if got, _ := r.backfillStart(); !got.Equal(now.Add(-DefaultBackfillWindow)) {
		t.Errorf("no notification: start %s, want 72h ago", got)
	}
	for _, at := range []time.Time{now.Add(-5 * time.Hour), now.Add(-time.Hour)} {
		if _, err := r.db.Append(store.Incoming{App: "myapp", Body: []byte(`{"signedPayload":"x"}`), ReceivedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := r.backfillStart(); !got.Equal(now.Add(-time.Hour - backfillOverlap)) {
		t.Errorf("start %s, want the last notification less the overlap", got)
	}
	later := now.Add(400 * 24 * time.Hour)
	clock.Store(later.UnixNano())
	if got, _ := r.backfillStart(); !got.Equal(later.Add(-MaxBackfillWindow).Add(time.Minute)) {
		t.Errorf("down for 400 days: start %s, want 180 days ago", got)
	}
}

func TestBackfillStopsWithTheRelay(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	cfg := testConfig(t, ca)
	withAPI(t, cfg, fake, url)
	h := startRelay(t, cfg)
	waitChecked(t, h)
	checks := len(fake.Requests())
	fake.Update(func(f *appletest.FakeAPI) { f.Delay = time.Hour })

	status := make(chan int, 1)
	go func() {
		data, _ := json.Marshal(BackfillRequest{App: "myapp", Start: time.Now().Add(-time.Hour)})
		resp, err := http.Post(h.admin+"/api/v1/backfill", "application/json", bytes.NewReader(data))
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	waitFor(t, "the backfill to ask Apple", func() bool { return len(fake.Requests()) > checks })
	h.stop(t) // a clean stop, long before Apple would answer
	if got := <-status; got != http.StatusBadGateway {
		t.Errorf("backfill answered %d, want 502", got)
	}
}
