package relay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/store"
)

// Hostile clients: what strangers on the internet can send to /asn/ must
// cost them more than it costs the relay, and never lose or forge anything.

// shortTimeouts makes slow clients visible in a test's time scale.
func shortTimeouts(r *Relay) {
	r.timeouts.readHeader = 300 * time.Millisecond
	r.timeouts.read = 600 * time.Millisecond
	r.timeouts.write = time.Second
	r.timeouts.idle = time.Second
}

// closedWithin reads conn until the server closes it and returns how long
// that took and what it said; an error after limit (safe in any goroutine).
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	got, err := io.ReadAll(conn)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Errorf("connection still open after %s", limit)
	}
	return time.Since(start), string(got)
}

func TestSlowlorisHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	h := startRelayTweaked(t, testConfig(t, ca), zerolog.Nop(), Options{}, shortTimeouts)
	addr := strings.TrimPrefix(h.url, "http://")
	const clients = 50
	var wg sync.WaitGroup
	took := make([]time.Duration, clients)
	answers := make([]string, clients)
	for i := range clients {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A byte every 20ms, each well inside any per-read timeout: only a
		// deadline on the whole header stops this.
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			header := "POST /asn/myapp HTTP/1.1\r\nHost: relay\r\nX-Slow: " + strings.Repeat("a", 1000)
			for j := 0; j < len(header); j++ {
				if _, err := conn.Write([]byte{header[j]}); err != nil {
					return // closed by the server
				}
				<-tick.C
			}
		})
		wg.Go(func() { took[i], answers[i] = closedWithin(t, conn, 5*time.Second) })
	}
	// Meanwhile real notifications are still taken.
	for range 5 {
		if got := h.post(t, "myapp", body(t, ca, appletest.Notification{})); got != 200 {
			t.Errorf("ingest during slowloris: %d", got)
		}
	}
	wg.Wait()
	slowest := time.Duration(0)
	for i, d := range took {
		slowest = max(slowest, d)
		if answers[i] != "" && !strings.HasPrefix(answers[i], "HTTP/1.1 4") {
			t.Errorf("slow header answered %q", answers[i])
		}
	}
	if slowest > 2*time.Second {
		t.Errorf("slowest slowloris connection held for %s with ReadHeaderTimeout %s", slowest, 300*time.Millisecond)
	}
	if n := h.count(t); n != 5 {
		t.Errorf("stored %d, want the 5 real ones", n)
	}
	t.Logf("%d slowloris connections closed after at most %s (ReadHeaderTimeout 300ms)", clients, slowest.Round(time.Millisecond))
	stopAndCheckFile(t, h)
}

func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	h := startRelayTweaked(t, testConfig(t, ca), zerolog.Nop(), Options{}, shortTimeouts)
	addr := strings.TrimPrefix(h.url, "http://")
	b := body(t, ca, appletest.Notification{})
	for _, chunked := range []bool{false, true} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := fmt.Sprintf("POST /asn/myapp HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(b))
		if chunked {
			head = "POST /asn/myapp HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n"
		}
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for j := 0; j < len(b); j++ {
				p := b[j : j+1]
				if chunked {
					p = append([]byte("1\r\n"), append(p, "\r\n"...)...)
				}
				if _, err := conn.Write(p); err != nil {
					return
				}
				<-tick.C
			}
		})
		took, answer := closedWithin(t, conn, 5*time.Second)
		conn.Close()
		wg.Wait()
		if took > 2*time.Second {
			t.Errorf("chunked=%v: slow body held the connection for %s with ReadTimeout 600ms", chunked, took)
		}
		if strings.HasPrefix(answer, "HTTP/1.1 200") {
			t.Errorf("chunked=%v: a body that never arrived got %q", chunked, answer)
		}
		t.Logf("chunked=%v: slow body cut off after %s, answer %q", chunked, took.Round(time.Millisecond), firstLine(answer))
	}
	if n := h.count(t); n != 0 {
		t.Errorf("stored %d half-received bodies", n)
	}
	stopAndCheckFile(t, h)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// endlessBody is n bytes of spaces that counts what was read of it and
// says when the client is done with it.
type endlessBody struct {
	left   int64
	read   atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func newEndlessBody(n int64) *endlessBody { return &endlessBody{left: n, closed: make(chan struct{})} }

func (b *endlessBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.left))
	for i := range n {
		p[i] = ' '
	}
	b.left -= int64(n)
	b.read.Add(int64(n))
	return n, nil
}

func (b *endlessBody) Close() error { b.once.Do(func() { close(b.closed) }); return nil }

// postHuge POSTs size bytes, declared or chunked, and returns the status,
// how long the answer took and how much of the body the client got to send.
// It reports problems with t.Errorf, so it may run in any goroutine.
func postHuge(t *testing.T, client *http.Client, url string, size int64, declared bool) (int, time.Duration, int64) {
	t.Helper()
	b := newEndlessBody(size)
	req, _ := http.NewRequest("POST", url, b)
	if declared {
		req.ContentLength = size
	} else {
		req.ContentLength = -1 // chunked
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%d bytes (declared %v): %v", size, declared, err)
		return 0, 0, 0
	}
	took := time.Since(start)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select { // the transport closes the body once it stops sending it
	case <-b.closed:
	case <-time.After(10 * time.Second):
		t.Errorf("the client is still sending the %d byte body", size)
	}
	return resp.StatusCode, took, b.read.Load()
}

func TestOversizeBodies413FastAndMemoryFlat(t *testing.T) {
	ca := newCA(t)
	cfg := testConfig(t, ca)
	cfg.MaxBodyBytes = 1 << 20 // the default
	h := startRelayTweaked(t, cfg, zerolog.Nop(), Options{}, nil)
	url := h.url + "/asn/myapp"
	client := &http.Client{Timeout: 10 * time.Second}
	const huge = 50 << 20
	for _, tc := range []struct {
		name     string
		size     int64
		declared bool
	}{
		{"one byte over, declared", cfg.MaxBodyBytes + 1, true},
		{"one byte over, chunked", cfg.MaxBodyBytes + 1, false},
		{"50 MiB, declared", huge, true},
		{"50 MiB, chunked", huge, false},
	} {
		status, took, sent := postHuge(t, client, url, tc.size, tc.declared)
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d, want 413", tc.name, status)
		}
		if took > time.Second {
			t.Errorf("%s: 413 after %s", tc.name, took)
		}
		// What the client sent is what the socket buffers took, not the body.
		if tc.size == huge && sent > 16<<20 {
			t.Errorf("%s: the client sent %d MiB before the relay gave up", tc.name, sent>>20)
		}
		t.Logf("%s: 413 in %s; the client got %d KiB of the body out", tc.name, took.Round(time.Millisecond), sent>>10)
	}

	// Many of them, eight at a time: the heap stays where it was.
	n := 40
	if longTests() {
		n = 200
	}
	before := heapInuse()
	var wg sync.WaitGroup
	var slowest atomic.Int64
	jobs := make(chan bool)
	for range 8 {
		wg.Go(func() {
			for declared := range jobs {
				status, took, _ := postHuge(t, client, url, huge, declared)
				if status != http.StatusRequestEntityTooLarge {
					t.Errorf("status %d, want 413", status)
				}
				for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
				}
			}
		})
	}
	start := time.Now()
	for i := range n {
		jobs <- i%2 == 0
	}
	close(jobs)
	wg.Wait()
	client.CloseIdleConnections()
	after := heapInuse()
	growth := int64(after) - int64(before)
	if growth > 4<<20 {
		t.Errorf("heap in use grew by %d KiB over %d oversize requests", growth>>10, n)
	}
	t.Logf("%d × 50 MiB bodies (half declared, half chunked) refused in %s, slowest 413 %s, heap in use %+d KiB",
		n, time.Since(start).Round(time.Millisecond), time.Duration(slowest.Load()).Round(time.Millisecond), growth>>10)
	if got := h.count(t); got != 0 {
		t.Errorf("stored %d oversize bodies", got)
	}
	stopAndCheckFile(t, h)
}

// raiseFDLimit lifts the soft open-file limit as far as allowed and
// returns it.
func raiseFDLimit(t *testing.T, want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur < want {
		raised := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			raised.Cur, raised.Max = min(want, lim.Max), lim.Max
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised)
		}
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

func TestTenThousandIdleConnections(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelayTweaked(t, testConfig(t, ca, target("t", s.URL)), zerolog.Nop(), Options{}, func(r *Relay) {
		// Long enough to hold them all open while ingesting (the slowloris
		// test shows idle connections do not outlive it).
		r.timeouts.readHeader = 5 * time.Second
	})
	addr := strings.TrimPrefix(h.url, "http://")
	// Each connection costs two descriptors here: the client's and the relay's.
	limit := raiseFDLimit(t, 2*10000+1000)
	want := min(10000, int((limit-1000)/2))
	before := heapInuse()
	start := time.Now()
	conns := make(chan net.Conn, want)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var next atomic.Int64
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(want) {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				conns <- c
			}
		})
	}
	wg.Wait()
	close(conns)
	var open []net.Conn
	for c := range conns {
		open = append(open, c)
	}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	dialed := time.Since(start)
	held := heapInuse()
	// With all of them open, notifications are still taken and delivered.
	const real = 50
	ingestStart := time.Now()
	for i := range real {
		if got := h.post(t, "myapp", body(t, ca, appletest.Notification{UUID: fmt.Sprintf("conn-%d", i)})); got != 200 {
			t.Fatalf("ingest with %d idle connections open: %d", len(open), got)
		}
	}
	ingestTook := time.Since(ingestStart)
	deliveredTo(t, s, real)
	if int(failed.Load()) > want/100 {
		t.Errorf("%d of %d connections failed to open", failed.Load(), want)
	}
	perConn := (int64(held) - int64(before)) / int64(max(len(open), 1))
	t.Logf("%d idle connections open (fd limit %d) in %s; %d notifications acknowledged meanwhile in %s; heap in use %d B per connection until ReadHeaderTimeout closes them",
		len(open), limit, dialed.Round(time.Millisecond), real, ingestTook.Round(time.Millisecond), perConn)
	for _, c := range open {
		c.Close()
	}
	open = nil
	stopAndCheckFile(t, h)
}

// b64 is base64url without padding, as in a compact JWS.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// jsonBody wraps signedPayload in a request body, escaping nothing but quotes
// and backslashes, so that invalid UTF-8 reaches the relay as it is.
func jsonBody(signedPayload string) []byte {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return []byte(`{"signedPayload":"` + r.Replace(signedPayload) + `"}`)
}

func TestHostileBodies(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	strict := newSink(t)
	cfg := testConfig(t, ca, target("strict", strict.URL))
	cfg.MaxBodyBytes = 4 << 20
	var logs logBuffer
	h := startRelayTweaked(t, cfg, zerolog.New(&logs).Level(zerolog.DebugLevel), Options{}, nil)

	sign := func(header map[string]any, payload any) string {
		s, err := ca.SignJWSWithHeader(header, payload)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid, err := ca.SignNotification(appletest.Notification{BundleID: testBundle})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	// fresh is the payload segment of a new notification: each forgery below
	// claims a UUID of its own (a second unverified claim would be a duplicate).
	fresh := func() string {
		s, err := ca.SignNotification(appletest.Notification{BundleID: testBundle})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(s, ".")[1]
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	signedDate := ca.Leaf.NotBefore.Add(time.Hour).UnixMilli()
	var realCerts []string
	for range 1000 {
		realCerts = append(realCerts, ca.X5C()[0])
	}
	tiny := make([]string, 1000)
	for i := range tiny {
		tiny[i] = "AA"
	}

	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		state  store.State // for 200s
		reason string      // a substring of the reason
	}{
		{"invalid UTF-8 as signedPayload", jsonBody("\xff\xfe\xfd.\xc3\x28.\xa0\xa1"), 200, store.StateUnverified, "malformed"},
		{"invalid UTF-8 inside the signed JSON", jsonBody(parts[0] + "." +
			b64(fmt.Sprintf("{\"signedDate\":%d,\"notificationType\":\"\xff\xfe\",\"notificationUUID\":\"\xc3\x28\"}", signedDate)) + "." + parts[2]),
			200, store.StateUnverified, "bad_signature"},
		{"100k nested arrays as another member", []byte(`{"x":` + deep + `,"signedPayload":"a.b.c"}`), 200, store.StateUnverified, "malformed body"},
		{"100k unclosed brackets", []byte(`{"x":` + strings.Repeat("[", 100000) + `,"signedPayload":"a.b.c"}`), 400, "", ""},
		{"100k nested arrays in the signed payload", jsonBody(sign(map[string]any{"alg": "ES256", "x5c": ca.X5C()},
			[]byte(`{"signedDate":`+fmt.Sprint(signedDate)+`,"x":`+deep+`}`))), 200, store.StateUnverified, "malformed"},
		{"20k nested arrays in the JWS header", jsonBody(b64(`{"alg":"ES256","x":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}`) + "." + fresh() + "." + parts[2]),
			200, store.StateUnverified, "malformed"},
		{"600 KiB JWS header", jsonBody(b64(`{"alg":"ES256","x":"`+strings.Repeat("a", 600<<10)+`"}`) + "." + fresh() + "." + parts[2]), 200, store.StateUnverified, "malformed"},
		{"x5c of 1000 tiny entries", jsonBody(b64(`{"alg":"ES256","x5c":["`+strings.Join(tiny, `","`)+`"]}`) + "." + fresh() + "." + parts[2]),
			200, store.StateUnverified, "bad_chain_length"},
		{"x5c of 1000 real certificates", jsonBody(sign(map[string]any{"alg": "ES256", "x5c": realCerts}, map[string]any{"signedDate": signedDate})),
			200, store.StateUnverified, "malformed"},
		{"10k dots", jsonBody(strings.Repeat(".", 10000)), 200, store.StateUnverified, "malformed"},
		{"NUL, lone surrogate, escapes", []byte(`{"signedPayload":"\u0000\ud800.\n.\""}`), 200, store.StateUnverified, "malformed"},
		// Last: these two verify, and hold the UUIDs the forgeries above claim.
		{"invalid UTF-8 outside signedPayload", []byte("{\"x\":\"\xff\xfe\",\"signedPayload\":\"" + valid + "\"}"), 200, store.StateVerified, ""},
		{"40 KiB JWS header, validly signed", jsonBody(sign(map[string]any{"alg": "ES256", "x5c": ca.X5C(), "x": strings.Repeat("a", 40<<10)},
			map[string]any{"notificationType": "TEST", "notificationUUID": "big-header", "signedDate": signedDate, "version": "2.0",
				"data": map[string]any{"bundleId": testBundle, "environment": "Sandbox"}})), 200, store.StateVerified, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.count(t)
			start := time.Now()
			got := h.post(t, "myapp", tc.body)
			if got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if got != 200 {
				if n := h.count(t); n != before {
					t.Errorf("a %d stored something", got)
				}
				return
			}
			n := h.waitProcessed(t, uint64(before+1))
			took := time.Since(start)
			if n.State != tc.state || !strings.Contains(n.Reason, tc.reason) {
				t.Errorf("state %s, reason %q; want %s with %q", n.State, n.Reason, tc.state, tc.reason)
			}
			if took > 2*time.Second {
				t.Errorf("%d bytes took %s from POST to processed", len(tc.body), took)
			}
			if stored, err := h.r.db.Body(n.Seq); err != nil || !bytes.Equal(stored, tc.body) {
				t.Errorf("stored body differs (%v)", err)
			}
			t.Logf("%d bytes: %s %q in %s", len(tc.body), n.State, truncate(n.Reason, 100), took.Round(time.Millisecond))
		})
	}
	// What the admin API shows of them must not fail either.
	status, page := h.call(t, "GET", "/api/v1/notifications?limit=100", "", nil)
	if status != 200 || !json.Valid(page) {
		t.Errorf("notifications list: %d", status)
	}
	for seq := uint64(1); seq <= uint64(h.count(t)); seq++ {
		if status, _ := h.call(t, "GET", fmt.Sprintf("/api/v1/notifications/%d", seq), "", nil); status != 200 {
			t.Errorf("notification %d: %d", seq, status)
		}
	}
	if status, _ := h.call(t, "GET", "/", "", nil); status != 200 {
		t.Errorf("dashboard: %d", status)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("a panic was logged:\n%s", logs.String())
	}
	// Only the two validly signed ones reach a verified_only target.
	waitFor(t, "the verified ones", func() bool { return len(strict.received()) == 2 })
	stopAndCheckFile(t, h)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TestHeaderFlood: a header block over MaxHeaderBytes is refused, not buffered.
func TestHeaderFlood(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	h := startRelayTweaked(t, testConfig(t, ca), zerolog.Nop(), Options{}, shortTimeouts)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		w := bufio.NewWriter(conn)
		w.WriteString("POST /asn/myapp HTTP/1.1\r\nHost: relay\r\n")
		for range 10000 {
			if _, err := w.WriteString("X-Flood: " + strings.Repeat("a", 100) + "\r\n"); err != nil {
				return
			}
		}
		w.Flush()
	}()
	_, answer := closedWithin(t, conn, 5*time.Second)
	if !strings.HasPrefix(answer, "HTTP/1.1 431") {
		t.Errorf("1 MB of headers: %q, want 431", firstLine(answer))
	}
	stopAndCheckFile(t, h)
}
