package relay

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// outageTarget is a backend that can be taken down. Down, it answers 503
// or drops the connection; up, it takes a while per request, so that the
// relay's concurrency shows, and records what it got.
type outageTarget struct {
	*httptest.Server
	mu          sync.Mutex
	down        bool
	dropConn    bool // down by dropping connections rather than by 503
	inFlight    int
	maxDown     int // most requests in flight at once while down
	maxUp       int // ... and while up
	downTries   int
	received    map[string]int // webhook-id -> deliveries while up
	receivedSeq []string
}

func newOutageTarget(t *testing.T) *outageTarget {
	o := &outageTarget{received: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.inFlight++
		down, drop := o.down, o.dropConn
		if down {
			o.maxDown = max(o.maxDown, o.inFlight)
			o.downTries++
		} else {
			o.maxUp = max(o.maxUp, o.inFlight)
		}
		o.mu.Unlock()
		defer func() { o.mu.Lock(); o.inFlight--; o.mu.Unlock() }()
		switch {
		case down && drop:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case down:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		// A backend's latency, not synchronisation: it lets requests overlap.
		time.Sleep(10 * time.Millisecond)
		o.mu.Lock()
		id := r.Header.Get("Webhook-Id")
		o.received[id]++
		o.receivedSeq = append(o.receivedSeq, id)
		o.mu.Unlock()
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *outageTarget) set(down, drop bool) {
	o.mu.Lock()
	o.down, o.dropConn = down, drop
	o.mu.Unlock()
}

func (o *outageTarget) has(ids []string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		if o.received[id] == 0 {
			return false
		}
	}
	return true
}

// TestSevenDayOutage: the target is down for a simulated week while
// notifications keep arriving. It is probed one delivery at a time; the
// ones older than max_age go dead; when it returns it gets everything else
// at its concurrency, and the dead ones once replayed.
func TestSevenDayOutage(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	backend := newOutageTarget(t)
	const (
		concurrency = 3
		maxAge      = 3 * 24 * time.Hour
		step        = 6 * time.Hour
		steps       = 7 * 24 * time.Hour / step
		perStep     = 3
	)
	clock := newTestClock(t0)
	cfg := testConfig(t, ca, target("backend", backend.URL, func(tg *config.Target) {
		tg.Concurrency = concurrency
		tg.Retry = config.Retry{Initial: time.Minute, MaxInterval: time.Hour, MaxAge: maxAge}
	}))
	h := startRelayWith(t, cfg, Options{Version: "test", Now: clock.now})
	backend.set(true, false)

	arrived := map[string]time.Time{}
	var ids []string
	seq := uint64(0)
	for i := range int(steps) {
		// The second half of the week the backend drops connections instead.
		backend.set(true, i >= int(steps)/2)
		for k := range perStep {
			id := fmt.Sprintf("outage-%02d-%d", i, k)
			if got := h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: id})); got != 200 {
				t.Fatalf("ingest during the outage: %d", got)
			}
			seq++
			h.waitProcessed(t, seq) // its delivery is created at this time
			arrived[id] = clock.now()
			ids = append(ids, id)
		}
		// Time moves on; the next probe is due, and it fails too.
		backend.mu.Lock()
		tries := backend.downTries
		backend.mu.Unlock()
		clock.add(step)
		h.r.forward.Wake()
		waitFor(t, "the probe", func() bool {
			backend.mu.Lock()
			defer backend.mu.Unlock()
			return backend.downTries > tries && backend.inFlight == 0
		})
	}
	// Back up; move past every backoff (at most max_interval, probes 1.5×).
	backend.set(false, false)
	clock.add(2 * time.Hour)
	h.r.forward.Wake()
	cutoff := clock.now().Add(-maxAge)
	var live, dead []string
	for _, id := range ids {
		if arrived[id].After(cutoff) {
			live = append(live, id)
		} else {
			dead = append(dead, id)
		}
	}
	waitFor(t, "the backlog within max_age", func() bool { return backend.has(live) })
	h.waitDeliveries(t, store.DeliveryFilter{Target: "backend", State: store.DeliveryDead}, len(dead))
	h.waitDeliveries(t, store.DeliveryFilter{Target: "backend", State: store.DeliveryPending}, 0)

	backend.mu.Lock()
	maxDown, maxUp, downTries := backend.maxDown, backend.maxUp, backend.downTries
	for _, id := range dead {
		if backend.received[id] != 0 {
			t.Errorf("%s is past max_age but was delivered", id)
		}
	}
	drained := len(backend.receivedSeq)
	backend.mu.Unlock()
	if maxDown > concurrency {
		t.Errorf("%d requests in flight at once to a failing target", maxDown)
	}
	if maxUp > concurrency || maxUp < 2 {
		t.Errorf("backlog drained with up to %d requests in flight, want %d (concurrency)", maxUp, concurrency)
	}
	// One probe per step, plus what went out before the first failure came back.
	if downTries > int(steps)+concurrency+perStep {
		t.Errorf("%d attempts against the failing target in %d steps: hammering, not probing", downTries, steps)
	}

	// The dead ones come back with a replay.
	var res ReplayResult
	h.postJSON(t, "/api/v1/replay", ReplayRequest{State: "dead"}, &res)
	if res.Created != len(dead) {
		t.Errorf("replay created %d deliveries, want %d", res.Created, len(dead))
	}
	waitFor(t, "the replayed ones", func() bool { return backend.has(dead) })
	h.waitDeliveries(t, store.DeliveryFilter{Target: "backend", State: store.DeliveryPending}, 0)
	backend.mu.Lock()
	for _, id := range ids {
		if n := backend.received[id]; n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	order := slices.Clone(backend.receivedSeq[:drained])
	backend.mu.Unlock()
	if !slices.Equal(sortedCopy(order), sortedCopy(live)) {
		t.Errorf("before the replay the backend got %v, want %v", order, live)
	}
	t.Logf("7-day outage (%d notifications, max_age %s): %d probes while down (at most %d in flight), %d delivered on return at up to %d at once (concurrency %d), %d dead then replayed",
		len(ids), maxAge, downTries, maxDown, len(live), maxUp, concurrency, len(dead))
	stopAndCheckFile(t, h)
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
