package main

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// buildBinary builds asnrelay once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "asnrelay")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// uuidSink is a target that records the webhook-id of every request.
type uuidSink struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *uuidSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen[r.Header.Get("Webhook-Id")]++
	s.mu.Unlock()
}

func (s *uuidSink) missing(acked []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, u := range acked {
		if s.seen[u] == 0 {
			out = append(out, u)
		}
	}
	return out
}

type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startDaemon(t *testing.T, bin, config, publicAddr string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, "serve", "--config", config), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + publicAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited before serving: %v\n%s", err, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving after 20s\n%s", d.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSIGKILLLosesNothing sends signed notifications at 500 a second (open
// loop), SIGKILLs the daemon three times at random moments, restarts it, and
// checks that every notification that got a 200 is stored exactly once and
// reached the target, and that the file is sound. TestCrashLoopLong
// (ASNRELAY_LONG=1) does the same with 20 kills.
func TestSIGKILLLosesNothing(t *testing.T) {
	runCrashLoop(t, crashLoop{kills: 3, rate: 500, minUp: 150 * time.Millisecond, maxUp: 700 * time.Millisecond})
}
