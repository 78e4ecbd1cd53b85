package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/store"
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

// TestSIGKILLLosesNothing sends signed notifications from several clients,
// SIGKILLs the daemon mid-load three times, restarts it, and checks that every
// notification that got a 200 is in the store and reached the target.
func TestSIGKILLLosesNothing(t *testing.T) {
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
	public := freePort(t)
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
`, public, freePort(t), target.URL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	const total = 600
	bodies := make([][]byte, total)
	uuids := make([]string, total)
	for i := range bodies {
		uuids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if bodies[i], err = ca.Body(appletest.Notification{Type: "DID_RENEW", UUID: uuids[i], BundleID: "com.example.app"}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu    sync.Mutex
		acked []string
		next  int
	)
	client := &http.Client{Timeout: 5 * time.Second}
	// load posts until killed: each client takes the next body; a body that
	// did not get a 200 is simply never counted (Apple would retry it).
	load := func(stop <-chan struct{}) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					if next == total {
						mu.Unlock()
						return
					}
					i := next
					next++
					mu.Unlock()
					resp, err := client.Post("http://"+public+"/asn/myapp", "application/json", bytes.NewReader(bodies[i]))
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						mu.Lock()
						acked = append(acked, uuids[i])
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	for kill := 1; kill <= 3; kill++ {
		d := startDaemon(t, bin, config, public)
		stop := make(chan struct{})
		loaded := make(chan struct{})
		go func() { load(stop); close(loaded) }()
		want := kill * total / 4
		deadline := time.Now().Add(20 * time.Second)
		for ackedCount() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.done
		close(stop)
		<-loaded
	}
	// Last run: send the rest, wait for every acknowledged notification to
	// reach the target, then stop gracefully.
	d := startDaemon(t, bin, config, public)
	load(nil)
	mu.Lock()
	final := append([]string(nil), acked...)
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.missing(final)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged notifications never reached the target, e.g. %v", len(sink.missing(final)), sink.missing(final)[:1])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-d.done; err != nil {
		var exit *exec.ExitError
		errors.As(err, &exit)
		t.Fatalf("SIGTERM: %v (want exit 0)\n%s", err, d.stderr)
	}

	db, err := store.Open(filepath.Join(dir, "data", "asnrelay.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
	for _, u := range final {
		if ok, err := db.HasUUID(u); err != nil || !ok {
			t.Fatalf("acknowledged %s is not in the store (%v)", u, err)
		}
	}
	if len(final) < total/2 {
		t.Errorf("only %d of %d acknowledged; the test did not exercise much", len(final), total)
	}
	t.Logf("3 SIGKILLs under load: %d acknowledged, %d stored, %d reached the target, 0 lost", len(final), len(final), len(final)-len(sink.missing(final)))
}
