package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// keyBytes is how much of a body's end identifies it: the tail of the JWS
// signature, random for every signed body.
const keyBytes = 32

// sinkKey identifies a body by its last bytes, so the sink needs no
// decoding and works for raw forwarding by any server.
func sinkKey(b []byte) string {
	b = bytes.TrimRight(b, " \r\n\t")
	return string(b[max(0, len(b)-keyBytes):])
}

// Sink is the target that forwarders deliver to. It counts every body and,
// while tracking, records when each one arrived.
type Sink struct {
	srv      *http.Server
	ln       net.Listener
	received atomic.Int64

	mu       sync.Mutex
	tracking bool
	arrivals map[string]time.Time
}

// startSink listens on a loopback port chosen by the kernel.
func startSink() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, arrivals: make(map[string]time.Time)}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	buf.Grow(int(max(r.ContentLength, 0)))
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.tracking {
		if _, seen := s.arrivals[sinkKey(buf.Bytes())]; !seen {
			s.arrivals[sinkKey(buf.Bytes())] = now
		}
	}
	s.mu.Unlock()
	s.received.Add(1)
	w.WriteHeader(http.StatusOK)
}

// URL is where servers forward to.
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() + "/notifications" }

// Received is how many bodies arrived since the sink started.
func (s *Sink) Received() int64 { return s.received.Load() }

// Track starts (or stops) recording arrival times, forgetting earlier ones.
func (s *Sink) Track(on bool) {
	s.mu.Lock()
	s.tracking = on
	s.arrivals = make(map[string]time.Time)
	s.mu.Unlock()
}

// Arrival is when the body with key arrived, if it did while tracking.
func (s *Sink) Arrival(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrivals[key]
	return t, ok
}

// WaitFor waits until at least n bodies arrived in all, or timeout passes,
// and returns how long it waited and whether n was reached.
func (s *Sink) WaitFor(ctx context.Context, n int64, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for s.Received() < n {
		if time.Since(start) > timeout || ctx.Err() != nil {
			return time.Since(start), false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), true
}

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }
