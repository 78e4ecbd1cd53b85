package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/asnrelay/asnrelay/relay"
)

// runCLI runs one command line in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "asnrelay dev\ncommit ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: exit %d, output %q", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"nonsense"}, {"serve", "--no-such-flag"}, {"version", "extra"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestServeConfigErrorsExit2WithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "asnrelay.yaml")
	os.WriteFile(bad, []byte("listen: \":0\"\napps:\n  - name: a\n    bundle_id: b\n    environments: [Sandbox]\n    colour: red\n"), 0o600)
	code, _, errOut := runCLI(t, "serve", "--config", bad)
	if code != 2 || !strings.Contains(errOut, "asnrelay.yaml:6") || !strings.Contains(errOut, "colour") {
		t.Errorf("unknown key: exit %d, stderr %q; want 2 and asnrelay.yaml:6", code, errOut)
	}
	code, _, errOut = runCLI(t, "serve", "--config", filepath.Join(dir, "missing.yaml"))
	if code != 2 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	offLoopback := filepath.Join(dir, "open.yaml")
	os.WriteFile(offLoopback, []byte("admin: {listen: \"0.0.0.0:0\"}\napps:\n  - name: a\n    bundle_id: b\n    environments: [Sandbox]\n"), 0o600)
	if code, _, errOut = runCLI(t, "serve", "--config", offLoopback); code != 2 || !strings.Contains(errOut, "admin.token") {
		t.Errorf("admin off loopback without token: exit %d, stderr %q", code, errOut)
	}
}

func TestServeExampleConfigStartsAndStops(t *testing.T) {
	// The README's first command, on a copy of config.example.yaml with its
	// ports moved so it can run beside anything else.
	example, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := strings.Replace(string(example), `listen: ":8080"`, `listen: "127.0.0.1:0"`, 1)
	cfg = strings.Replace(cfg, `listen: "127.0.0.1:8081"`, `listen: "127.0.0.1:0"`, 1)
	if cfg == string(example) {
		t.Fatal("config.example.yaml no longer has the listen lines this test edits")
	}
	path := filepath.Join(dir, "config.example.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	// As in a one-CPU container: serve must raise GOMAXPROCS (see relay.MinProcs).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut syncBuffer
	go func() { done <- run(ctx, []string{"serve", "--config", path}, &bytes.Buffer{}, &errOut) }()
	waitForFile(t, filepath.Join(dir, "data", "asnrelay.db"))
	if got := runtime.GOMAXPROCS(0); got < 2 {
		t.Errorf("GOMAXPROCS = %d while serving, want at least 2", got)
	}
	// Without $GOGC, serve collects garbage less often (see relay.GCPercent).
	if os.Getenv("GOGC") == "" {
		if got := debug.SetGCPercent(100); got != relay.GCPercent {
			t.Errorf("GOGC = %d while serving, want %d", got, relay.GCPercent)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d: %s", code, errOut.String())
	}
}
