package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/relay/config"
)

// capture is an HTTP endpoint that keeps the bodies it receives.
type capture struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newCapture(t *testing.T) *capture {
	c := &capture{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *capture) all() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.bodies...)
}

func TestSendTestThenDecode(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	sink := newCapture(t)
	code, out, errOut := runCLI(t, "send-test", "--url", sink.URL, "--root-out", root, "--type", "DID_RENEW", "--subtype", "BILLING_RECOVERY")
	if code != 0 || !strings.Contains(out, "wrote test root") || !strings.Contains(out, ": 200") {
		t.Fatalf("send-test: exit %d\n%s%s", code, out, errOut)
	}
	// A second run reuses the kept CA: no new root.
	if code, out, _ = runCLI(t, "send-test", "--url", sink.URL, "--root-out", root); code != 0 || strings.Contains(out, "wrote test root") {
		t.Fatalf("second send-test: exit %d, %s", code, out)
	}
	bodies := sink.all()
	if len(bodies) != 2 {
		t.Fatalf("sink got %d bodies", len(bodies))
	}
	for i, b := range bodies {
		file := filepath.Join(dir, "body.json")
		os.WriteFile(file, b, 0o600)
		code, out, errOut := runCLI(t, "decode", "--root-cert", root, file)
		if code != 0 || !strings.Contains(errOut, "verified: notification") {
			t.Fatalf("decode body %d: exit %d, %s", i, code, errOut)
		}
		var doc struct {
			Notification struct {
				NotificationType string `json:"notificationType"`
				Subtype          string `json:"subtype"`
				Data             struct {
					BundleID string `json:"bundleId"`
				} `json:"data"`
			} `json:"notification"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("decode output is not JSON: %v\n%s", err, out)
		}
		if i == 0 && (doc.Notification.NotificationType != "DID_RENEW" || doc.Notification.Subtype != "BILLING_RECOVERY" || doc.Notification.Data.BundleID != "com.example.myapp") {
			t.Errorf("decoded = %+v", doc)
		}
	}
	// Without the test root it does not verify; --no-verify says so.
	file := filepath.Join(dir, "body.json")
	if code, _, errOut := runCLI(t, "decode", file); code != 1 || !strings.Contains(errOut, "untrusted_root") {
		t.Errorf("decode without root: exit %d, %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, "decode", "--no-verify", file); code != 0 || !strings.Contains(errOut, "WITHOUT verifying") || !strings.Contains(out, "notificationType") {
		t.Errorf("decode --no-verify: exit %d, %s", code, errOut)
	}
	// A bare JWS from stdin works too.
	var req struct{ SignedPayload string }
	json.Unmarshal(bodies[0], &req)
	cmd := newRootCommand()
	var o, e bytes.Buffer
	cmd.SetArgs([]string{"decode", "--root-cert", root, "-"})
	cmd.SetIn(strings.NewReader(req.SignedPayload))
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	if err := cmd.Execute(); err != nil || !strings.Contains(o.String(), "DID_RENEW") {
		t.Errorf("decode bare JWS from stdin: %v %s", err, e.String())
	}
	if code, _, errOut := runCLI(t, "decode", filepath.Join(dir, "nope.json")); code != 1 || !strings.Contains(errOut, "nope.json") {
		t.Errorf("decode of a missing file: exit %d, %s", code, errOut)
	}
}

func TestSendTestRoundTripThroughRelayWithDecodedPayload(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	warmup := newCapture(t)
	if code, out, errOut := runCLI(t, "send-test", "--url", warmup.URL, "--root-out", root); code != 0 {
		t.Fatalf("send-test: %s%s", out, errOut)
	}
	target := newCapture(t)
	cfg := config.Default()
	cfg.Listen, cfg.Admin.Listen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "data")
	cfg.Apple.RootCerts = []string{root}
	app := config.DefaultApp()
	app.Name, app.BundleID, app.Environments = "myapp", "com.example.myapp", []string{"Sandbox"}
	cfg.Apps = []config.App{app}
	tg := config.DefaultTarget()
	tg.Name, tg.URL, tg.Payload = "backend", target.URL, config.PayloadDecoded
	cfg.Targets = []config.Target{tg}
	r, _ := runRelay(t, &cfg)

	code, out, errOut := runCLI(t, "send-test", "--url", "http://"+r.Addr().String()+"/asn/myapp", "--root-out", root, "--type", "CONSUMPTION_REQUEST")
	if code != 0 {
		t.Fatalf("send-test to relay: exit %d %s%s", code, out, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(target.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("target got nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var doc struct {
		Notification struct {
			NotificationType string `json:"notificationType"`
			NotificationUUID string `json:"notificationUUID"`
		} `json:"notification"`
		Transaction json.RawMessage `json:"transaction"`
	}
	if err := json.Unmarshal(target.all()[0], &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Notification.NotificationType != "CONSUMPTION_REQUEST" || !strings.Contains(out, doc.Notification.NotificationUUID) {
		t.Errorf("target got %s; send-test printed %s", target.all()[0], out)
	}
}
