package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay"
	"github.com/asnrelay/asnrelay/store"
)

// longTests reports whether the long versions of the reliability tests run:
// ASNRELAY_LONG=1 go test ./...
func longTests() bool { return os.Getenv("ASNRELAY_LONG") == "1" }

// crashLoop describes a run of TestSIGKILLLosesNothing.
type crashLoop struct {
	kills int
	rate  int // requests per second, sent open loop whatever the daemon does
	// Each daemon serves for a random time in [minUp, maxUp) before its SIGKILL.
	minUp, maxUp time.Duration
}

// TestCrashLoopLong is the long crash loop: 20 SIGKILLs at random moments
// under 500 requests a second. ASNRELAY_LONG=1 runs it.
func TestCrashLoopLong(t *testing.T) {
	if !longTests() {
		t.Skip("ASNRELAY_LONG=1 runs it")
	}
	runCrashLoop(t, crashLoop{kills: 20, rate: 500, minUp: 200 * time.Millisecond, maxUp: 2 * time.Second})
}

// loadGenerator posts a new signed notification every 1/rate seconds, open
// loop: it does not wait for answers, and never resends one (Apple would;
// the test wants to see each body's fate). It keeps the UUIDs that got a 200.
type loadGenerator struct {
	ca     *appletest.CA
	url    string
	client *http.Client

	sent, failed, skipped atomic.Int64
	inFlight              sync.WaitGroup
	mu                    sync.Mutex
	acked                 map[string]bool
	codes                 map[int]int
}

func (g *loadGenerator) run(rate int, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	limit := make(chan struct{}, 256) // bounds requests in flight: never an unbounded pile-up
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		select {
		case limit <- struct{}{}:
		default:
			g.skipped.Add(1)
			continue
		}
		g.inFlight.Add(1)
		go func() {
			defer func() { <-limit; g.inFlight.Done() }()
			g.post(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
		}()
	}
}

func (g *loadGenerator) post(uuid string) {
	b, err := g.ca.Body(appletest.Notification{Type: "DID_RENEW", UUID: uuid, BundleID: "com.example.app"})
	if err != nil {
		panic(err)
	}
	g.sent.Add(1)
	resp, err := g.client.Post(g.url, "application/json", bytes.NewReader(b))
	if err != nil {
		g.failed.Add(1)
		return
	}
	resp.Body.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.codes[resp.StatusCode]++
	if resp.StatusCode == http.StatusOK {
		g.acked[uuid] = true
	}
}

func (g *loadGenerator) ackedUUIDs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.acked))
	for u := range g.acked {
		out = append(out, u)
	}
	return out
}

// runCrashLoop starts the built binary, sends it load, SIGKILLs it at random
// moments and restarts it, then checks every body's fate in the final
// database: every acknowledged notification is stored exactly once and
// reached the target, nothing is stored twice, and the file is sound.
func runCrashLoop(t *testing.T, c crashLoop) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ca, err := appletest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), ca.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := &uuidSink{seen: map[string]int{}}
	target := httptest.NewServer(sink)
	defer target.Close()
	public, admin := freePort(t), freePort(t)
	config := filepath.Join(dir, "asnrelay.yaml")
	yaml := fmt.Sprintf(`listen: %q
data_dir: ./data
log: {level: warn}
admin: {listen: %q}
apple: {root_certs: [root.pem]}
apps:
  - name: myapp
    bundle_id: com.example.app
    environments: [Sandbox]
targets:
  - name: sink
    url: %s
    retry: {initial: 10ms, max_interval: 100ms}
`, public, admin, target.URL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 0))
	t.Logf("crash loop seed %d", seed)
	g := &loadGenerator{ca: ca, url: "http://" + public + "/asn/myapp", acked: map[string]bool{}, codes: map[int]int{},
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	start := time.Now()
	go func() { g.run(c.rate, stop); close(loadDone) }()
	var restarts time.Duration
	for range c.kills {
		t0 := time.Now()
		d := startDaemon(t, bin, config, public)
		restarts += time.Since(t0)
		up := c.minUp + time.Duration(rnd.Int64N(int64(c.maxUp-c.minUp)))
		select { // the moment of the kill, not synchronisation: load runs meanwhile
		case <-time.After(up):
		case err := <-d.done:
			t.Fatalf("daemon exited by itself: %v\n%s", err, d.stderr)
		}
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.done
	}
	// Last run: a little more load, then let everything settle.
	d := startDaemon(t, bin, config, public)
	time.Sleep(500 * time.Millisecond) // load on the last daemon, not synchronisation
	close(stop)
	<-loadDone
	g.inFlight.Wait()
	loadTook := time.Since(start)
	acked := g.ackedUUIDs()
	deadline := time.Now().Add(60 * time.Second)
	for len(sink.missing(acked)) > 0 || !settled(t, admin) {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d acknowledged notifications never reached the target, e.g. %v", len(sink.missing(acked)), sink.missing(acked)[:min(1, len(sink.missing(acked)))])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-d.done; err != nil {
		t.Fatalf("SIGTERM: %v (want exit 0)\n%s", err, d.stderr)
	}

	// Every stored body, counted by the notificationUUID inside it.
	db, err := store.Open(filepath.Join(dir, "data", "asnrelay.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
	stored := map[string]int{}
	var states = map[store.State]int{}
	for before := uint64(0); ; {
		page, next, err := db.Notifications(store.NotificationFilter{}, before, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page {
			states[n.State]++
			b, err := db.Body(n.Seq)
			if err != nil {
				t.Fatal(err)
			}
			stored[uuidOf(t, b)]++
		}
		if next == 0 {
			break
		}
		before = next
	}
	ackedSet := map[string]bool{}
	for _, u := range acked {
		ackedSet[u] = true
		if stored[u] != 1 {
			t.Errorf("acknowledged %s is stored %d times, want exactly once", u, stored[u])
		}
	}
	withoutAck, redelivered := 0, 0
	for u, n := range stored {
		if n > 1 {
			t.Errorf("%s stored %d times: the client sent it once", u, n)
		}
		if !ackedSet[u] {
			withoutAck++ // committed, but the 200 died with the daemon
		}
	}
	sink.mu.Lock()
	for _, u := range acked {
		if sink.seen[u] > 1 {
			redelivered++
		}
	}
	sink.mu.Unlock()
	if states[store.StateReceived] != 0 || states[store.StateVerified] != len(stored) {
		t.Errorf("states after settling: %v; want all %d verified", states, len(stored))
	}
	if len(acked) < c.kills*c.rate/10 {
		t.Errorf("only %d acknowledged: the test did not exercise much", len(acked))
	}
	lost := len(sink.missing(acked))
	g.mu.Lock()
	codes := fmt.Sprint(g.codes)
	g.mu.Unlock()
	t.Logf("%d SIGKILLs under %d req/s (%.0f req/s sent over %s, mean restart to serving %s): %d sent, %d acknowledged, %d stored (%d of them committed but their 200 lost in the kill), %d delivered (%d more than once), %d lost; answers %s, %d connection errors, %d not sent (256 in flight)",
		c.kills, c.rate, float64(g.sent.Load())/loadTook.Seconds(), loadTook.Round(time.Millisecond), (restarts / time.Duration(c.kills)).Round(time.Millisecond),
		g.sent.Load(), len(acked), len(stored), withoutAck, len(acked)-lost, redelivered, lost, codes, g.failed.Load(), g.skipped.Load())
}

// settled reports whether the daemon has processed everything it holds and
// has no delivery pending.
func settled(t *testing.T, admin string) bool {
	resp, err := http.Get("http://" + admin + "/api/v1/stats")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st relay.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.Notifications.Inbox != 0 {
		return false
	}
	for _, tg := range st.Targets {
		if tg.Pending != 0 {
			return false
		}
	}
	return true
}

// uuidOf reads the notificationUUID of a stored body (unverified: the file
// is ours).
func uuidOf(t *testing.T, body []byte) string {
	var b struct {
		SignedPayload string `json:"signedPayload"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("stored body %q: %v", body, err)
	}
	n, err := apple.DecodeNotification(b.SignedPayload)
	if n == nil {
		t.Fatalf("stored body does not decode: %v", err)
	}
	return n.NotificationUUID
}
