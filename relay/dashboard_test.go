package relay

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// page makes a request to the admin listener and returns the answer and its body.
func (h *harness) page(t testing.TB, method, path string, form url.Values, edit ...func(*http.Request)) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.admin+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, e := range edit {
		e(req)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// dashboardFixture: one verified notification delivered, one dead delivery,
// and an unverified notification whose claimed type is HTML.
func dashboardFixture(t *testing.T, token string) (*harness, *sink) {
	t.Helper()
	ca := newCA(t)
	ok, down := newSink(t), newSink(t)
	down.status = http.StatusServiceUnavailable
	cfg := testConfig(t, ca, target("backend", ok.URL), target("analytics", down.URL, func(tg *config.Target) {
		tg.VerifiedOnly = false
		tg.Retry = config.Retry{Initial: 5 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxAge: 40 * time.Millisecond}
	}))
	cfg.Admin.Token = token
	h := startRelay(t, cfg)
	h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: "dash-1"}))
	h.post(t, "myapp", body(t, newCA(t), appletest.Notification{Type: "<script>alert(1)</script>", UUID: `"><img src=x>`}))
	h.waitProcessed(t, 1)
	h.waitProcessed(t, 2)
	deliveredTo(t, ok, 1)
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliveryDead}, 2)
	// Restart with a long max_age, so that what the buttons create is not
	// dead again before the target answers.
	h.stop(t)
	cfg.Targets[1].Retry.MaxAge = time.Hour
	return startRelay(t, cfg), down
}

func TestDashboardShowsNotificationsTargetsAndDeadDeliveries(t *testing.T) {
	h, _ := dashboardFixture(t, "")
	resp, page := h.page(t, "GET", "/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d %s", resp.StatusCode, page)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": contentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, want := range []string{
		`<table id="notifications">`, "DID_RENEW", "dash-1", "verified", "unverified", "myapp", "Sandbox",
		`<table id="targets">`, "backend", "analytics", "HTTP 503", "Replay 2 dead",
		`<table id="dead">`, `action="/dashboard/retry"`, `name="delivery" value="`,
		`action="/dashboard/replay"`, `href="/dashboard.css"`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, never := range []string{"<script", "<img", "javascript:"} {
		if strings.Contains(page, never) {
			t.Errorf("page contains %q: not escaped", never)
		}
	}
	resp, css := h.page(t, "GET", "/dashboard.css", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(css, "table") {
		t.Errorf("dashboard.css: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Only numbers and known words from the URL reach the page.
	if _, page := h.page(t, "GET", "/?done=replay&created=3", nil); !strings.Contains(page, "Created 3 new deliveries.") {
		t.Error("flash message missing")
	}
	if _, page := h.page(t, "GET", "/?done=%3Cb%3Ehi&created=3", nil); strings.Contains(page, "Created") || strings.Contains(page, "&lt;b&gt;") {
		t.Error("an unknown action reached the page")
	}
}

func TestDashboardButtons(t *testing.T) {
	h, down := dashboardFixture(t, "")
	down.mu.Lock()
	down.status = http.StatusOK
	down.mu.Unlock()

	dead, _, _ := h.r.db.Deliveries(store.DeliveryFilter{State: store.DeliveryDead}, 0, 10)
	resp, _ := h.page(t, "POST", "/dashboard/retry", url.Values{"delivery": {itoa(int(dead[0].ID))}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?done=retry&created=1" {
		t.Fatalf("retry: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = h.page(t, "POST", "/dashboard/replay-dead", url.Values{"target": {"analytics"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?done=replay-dead&created=1" {
		t.Fatalf("replay dead: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = h.page(t, "POST", "/dashboard/replay", url.Values{"notification": {"1"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?done=replay&created=2" {
		t.Fatalf("replay: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	h.waitDeliveries(t, store.DeliveryFilter{Target: "analytics", State: store.DeliverySucceeded}, 3)

	// Errors render the page with the message.
	resp, page := h.page(t, "POST", "/dashboard/retry", url.Values{"delivery": {"999"}})
	if resp.StatusCode != 404 || !strings.Contains(page, "delivery 999") {
		t.Errorf("retry of an unknown delivery: %d", resp.StatusCode)
	}
	resp, _ = h.page(t, "POST", "/dashboard/replay", url.Values{"notification": {"x"}})
	if resp.StatusCode != 400 {
		t.Errorf("replay of a bad id: %d", resp.StatusCode)
	}
	// Another site's page cannot press the buttons.
	resp, _ = h.page(t, "POST", "/dashboard/replay", url.Values{"notification": {"1"}}, func(r *http.Request) {
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site form post: %d, want 403", resp.StatusCode)
	}
}

func TestDashboardLoginWithToken(t *testing.T) {
	const token = "dash-token-123"
	h, _ := dashboardFixture(t, token)
	resp, page := h.page(t, "GET", "/", nil)
	if resp.StatusCode != 401 || !strings.Contains(page, `action="/dashboard/login"`) || strings.Contains(page, "dash-1") {
		t.Fatalf("GET / without login: %d", resp.StatusCode)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("login page without CSP")
	}
	resp, page = h.page(t, "POST", "/dashboard/login", url.Values{"token": {"wrong"}})
	if resp.StatusCode != 401 || !strings.Contains(page, "Wrong token.") || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = h.page(t, "POST", "/dashboard/replay", url.Values{"notification": {"1"}})
	if resp.StatusCode != 401 {
		t.Errorf("button without login: %d", resp.StatusCode)
	}
	resp, _ = h.page(t, "POST", "/dashboard/login", url.Values{"token": {token}})
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	c := resp.Cookies()[0]
	if c.Name != sessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, token) || c.Value == "" {
		t.Errorf("session cookie = %+v", c)
	}
	withCookie := func(r *http.Request) { r.AddCookie(c) }
	if resp, page := h.page(t, "GET", "/", nil, withCookie); resp.StatusCode != 200 || !strings.Contains(page, "dash-1") {
		t.Errorf("GET / with the session: %d", resp.StatusCode)
	}
	if resp, _ := h.page(t, "GET", "/", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }); resp.StatusCode != 200 {
		t.Errorf("GET / with the bearer token: %d", resp.StatusCode)
	}
	forged := *c
	forged.Value = strings.Repeat("0", len(c.Value))
	if resp, _ := h.page(t, "GET", "/", nil, func(r *http.Request) { r.AddCookie(&forged) }); resp.StatusCode != 401 {
		t.Errorf("GET / with a forged session: %d", resp.StatusCode)
	}
	if resp, _ := h.page(t, "POST", "/dashboard/replay", url.Values{"notification": {"1"}}, withCookie); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("button with the session: %d", resp.StatusCode)
	}
	// The session opens the dashboard only, not the JSON API.
	if status, _ := h.call(t, "GET", "/api/v1/stats", "", nil); status != 401 {
		t.Errorf("API without token: %d", status)
	}
	resp, _ = h.page(t, "POST", "/dashboard/logout", nil, withCookie)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
}

func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                            "0s",
		45 * time.Second:             "45s",
		200 * time.Second:            "3m20s",
		5*time.Hour + 12*time.Minute: "5h12m",
		76 * time.Hour:               "3d4h",
	} {
		if got := roundDuration(d); got != want {
			t.Errorf("roundDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := shorten(5, "abcdefgh"); got != "abcd…" {
		t.Errorf("shorten = %q", got)
	}
}

func TestDashboardShowsRefundFigures(t *testing.T) {
	ca := newCA(t)
	h := startRelay(t, testConfig(t, ca))
	if _, page := h.page(t, "GET", "/", nil); strings.Contains(page, `id="refunds"`) {
		t.Error("a refunds table without refunds")
	}
	for i, typ := range []string{"CONSUMPTION_REQUEST", "REFUND", "CONSUMPTION_REQUEST", "REFUND_DECLINED"} {
		tx := &apple.Transaction{TransactionID: fmt.Sprint("tx-", i/2), OriginalTransactionID: "otx", ProductID: "pro.monthly", Price: 9990, Currency: "USD"}
		h.post(t, "myapp", body(t, ca, appletest.Notification{Type: typ, UUID: fmt.Sprint("refund-", i), Transaction: tx}))
		h.waitProcessed(t, uint64(i+1))
	}
	_, page := h.page(t, "GET", "/", nil)
	for _, want := range []string{`<table id="refunds">`, "Refunds, last 30 days", "50%", "refunded 9.99, kept 9.99"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for milli, want := range map[int64]string{0: "0.00", 1990: "1.99", 9995: "10.00", -500: "-0.50", 1234567: "1234.57"} {
		if got := money(milli); got != want {
			t.Errorf("money(%d) = %q, want %q", milli, got, want)
		}
	}
}
