package main

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/relay"
	"github.com/asnrelay/asnrelay/relay/config"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created in 10s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRelay runs the daemon of the config file at path in-process, as
// `serve` would, until the test ends or stop is called; it checks that the
// daemon stopped cleanly.
func startRelay(t *testing.T, path string) (r *relay.Relay, stop func()) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return runRelay(t, cfg)
}

// runRelay is startRelay for a config built in the test.
func runRelay(t *testing.T, cfg *config.Config) (*relay.Relay, func()) {
	t.Helper()
	r, err := relay.New(cfg, zerolog.Nop(), relay.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			r.Close()
		})
	}
	t.Cleanup(stop)
	return r, stop
}
