package relay

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// Helpers of the reliability suite (hostile_test.go, forgery_test.go,
// outage_test.go, secrets_test.go, diskfull_linux_test.go).

// longTests reports whether the long versions of the reliability tests run:
// ASNRELAY_LONG=1 go test ./...
func longTests() bool { return os.Getenv("ASNRELAY_LONG") == "1" }

// logBuffer collects a relay's log lines; safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRelayTweaked is startRelayWith with a logger, and tweak called
// between New and Open (to shorten the server timeouts).
func startRelayTweaked(t testing.TB, cfg *config.Config, log zerolog.Logger, opts Options, tweak func(r *Relay)) *harness {
	t.Helper()
	if opts.Version == "" {
		opts.Version = "test"
	}
	r, err := New(cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(r)
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

// stopAndCheckFile stops the relay, then opens its database file afresh, as
// the next start would, and runs bbolt's consistency check on it.
func stopAndCheckFile(t testing.TB, h *harness) {
	t.Helper()
	path := h.r.db.Path()
	h.stop(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("reopen %s: %v", path, err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("bbolt check of the reopened file: %v", err)
	}
}

// heapInuse is the heap in use after garbage collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
