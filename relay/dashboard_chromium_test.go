package relay

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// chromium runs headless Chromium with the flags that work in a closed
// sandbox, and returns its standard output.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// TestDashboardInChromium renders the dashboard of a relay with data in
// headless Chromium (Debian's chromium package) and checks what the browser
// built. It skips without Chromium. With ASNRELAY_DASHBOARD_PNG set it also
// saves a screenshot there (scripts/dashboard-screenshot.sh).
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	h := dashboardDemo(t)

	dom := chromium(t, bin, "--dump-dom", h.admin+"/")
	for _, want := range []string{
		`<table id="targets">`, "backend", "analytics", "crm", "failing",
		`<table id="notifications">`, "SUBSCRIBED", "INITIAL_BUY", "DID_RENEW", "CONSUMPTION_REQUEST", "unverified", "duplicate",
		`<table id="dead">`, "Retry", "Replay", "HTTP 503",
		`<table id="refunds">`, "refunded 9.99", "kept 4.99",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page Chromium built lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the page holds a script")
	}
	if png := os.Getenv("ASNRELAY_DASHBOARD_PNG"); png != "" {
		abs, err := filepath.Abs(png)
		if err != nil {
			t.Fatal(err)
		}
		chromium(t, bin, "--hide-scrollbars", "--window-size=1280,1240", "--screenshot="+abs, h.admin+"/")
		if fi, err := os.Stat(abs); err != nil || fi.Size() < 10<<10 {
			t.Fatalf("screenshot %s: %v", abs, err)
		}
		t.Logf("screenshot saved to %s", abs)
	}
}

// dashboardDemo is a relay holding what an operator would want to see: a
// healthy target, one down for good (dead deliveries), one failing now, a
// mix of notification types, an unverified one and a duplicate.
func dashboardDemo(t *testing.T) *harness {
	t.Helper()
	ca := newCA(t)
	backend, analytics := newSink(t), newSink(t)
	analytics.status = http.StatusServiceUnavailable
	// A port nothing listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/hooks/apple"
	ln.Close()
	cfg := testConfig(t, ca,
		target("backend", backend.URL),
		target("analytics", analytics.URL, func(tg *config.Target) {
			tg.Types = []string{"DID_RENEW", "REFUND"}
			tg.Retry = config.Retry{Initial: 5 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxAge: 50 * time.Millisecond}
		}),
		target("crm", closed, func(tg *config.Target) {
			tg.Types = []string{"SUBSCRIBED", "REFUND", "CONSUMPTION_REQUEST"}
			tg.Retry = config.Retry{Initial: time.Minute, MaxInterval: time.Hour, MaxAge: 7 * 24 * time.Hour}
		}))
	h := startRelay(t, cfg)
	sends := []appletest.Notification{
		{Type: "SUBSCRIBED", Subtype: "INITIAL_BUY", UUID: "9f1c2b7e-4d3a-4a8e-9c61-1b2f0e7d5a10"},
		{Type: "DID_RENEW", UUID: "3b6e8d21-7f4c-4e02-a1d9-5c8b2f6e9a47"},
		{Type: "DID_RENEW", UUID: "3b6e8d21-7f4c-4e02-a1d9-5c8b2f6e9a47"}, // Apple's retry: a duplicate
		{Type: "DID_CHANGE_RENEWAL_STATUS", Subtype: "AUTO_RENEW_DISABLED", UUID: "c7a4f0e2-1b9d-4c36-8e5f-2d7a9b1c6e83"},
		{Type: "CONSUMPTION_REQUEST", UUID: "e2d9b4a6-8c1f-4f7e-b3a2-6d5c0e9f1b28", Transaction: purchase("2000000811112222", 9990, "USD")},
		{Type: "REFUND", UUID: "71b3c5d9-2e8a-4b6f-9d04-a3e1f7c2b5d6", Transaction: purchase("2000000811112222", 9990, "USD")},
		{Type: "CONSUMPTION_REQUEST", UUID: "5c0e2a7d-3f9b-4d1e-86a4-e7b2c9f0d315", Transaction: purchase("2000000833334444", 4990, "EUR")},
		{Type: "REFUND_DECLINED", UUID: "b9e4d1f6-0a2c-4e7b-95d3-8f6a1c2e7b40", Transaction: purchase("2000000833334444", 4990, "EUR")},
		{Type: "DID_RENEW", UUID: "a8f2e6c1-5d3b-4a9e-8c70-4b1d2f9e6a35"},
	}
	for _, n := range sends {
		h.post(t, "myapp", body(t, ca, n))
	}
	h.post(t, "myapp", body(t, newCA(t), appletest.Notification{Type: "TEST", UUID: "0d4e7a2c-6b1f-4e8d-9a35-c2f7b1e6d904"}))
	for seq := uint64(1); seq <= uint64(len(sends)+1); seq++ {
		h.waitProcessed(t, seq)
	}
	waitFor(t, "the healthy target", func() bool { return len(backend.received()) == len(sends)-1 })
	h.waitDeliveries(t, store.DeliveryFilter{Target: "analytics", State: store.DeliveryDead}, 3)
	waitFor(t, "crm failing", func() bool { return h.r.forward.Health()["crm"].Failing })
	return h
}

func purchase(id string, price int64, currency string) *apple.Transaction {
	return &apple.Transaction{TransactionID: id, OriginalTransactionID: id, ProductID: "com.example.app.pro.monthly", Price: price, Currency: currency}
}
