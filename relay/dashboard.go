package relay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

//go:embed dashboard
var dashboardFS embed.FS

// dashboardTemplates are parsed once; they never change after.
var dashboardTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"ago": ago,
	"probe": func(now, at time.Time) string {
		if !at.After(now) {
			return "probe due"
		}
		return "next probe in " + roundDuration(at.Sub(now))
	},
	"seconds": func(s float64) string { return roundDuration(time.Duration(s * float64(time.Second))) },
	"clock":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"short":   shorten,
	"money":   money,
	"percent": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
}).ParseFS(dashboardFS, "dashboard/*.html"))

const (
	// sessionCookie carries a value derived from admin.token, so that a
	// browser can use the dashboard without sending the bearer header.
	sessionCookie = "asnrelay_session"
	// dashboardRows bounds each table of the dashboard.
	dashboardRows = 25
	// contentSecurityPolicy allows the page's own stylesheet and forms, and
	// nothing else: no script, no frames, no outside requests.
	contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// registerDashboard adds GET / (a small read-mostly HTML page) and the form
// endpoints behind its buttons. The page is rendered on the server, with no
// script at all; its buttons are plain form POSTs.
func (r *Relay) registerDashboard(mux *http.ServeMux) {
	mux.Handle("GET /{$}", r.guard(http.HandlerFunc(r.handleDashboard)))
	mux.Handle("GET /dashboard.css", http.HandlerFunc(handleDashboardCSS))
	mux.Handle("POST /dashboard/login", r.guard(http.HandlerFunc(r.handleLogin)))
	mux.Handle("POST /dashboard/logout", r.guard(http.HandlerFunc(r.handleLogout)))
	mux.Handle("POST /dashboard/replay", r.guard(r.dashboardAction(r.actionReplay)))
	mux.Handle("POST /dashboard/retry", r.guard(r.dashboardAction(r.actionRetry)))
	mux.Handle("POST /dashboard/replay-dead", r.guard(r.dashboardAction(r.actionReplayDead)))
}

// sessionValue is what the session cookie holds: an HMAC of a fixed text
// keyed with the token, never the token itself.
func (r *Relay) sessionValue() string {
	mac := hmac.New(sha256.New, []byte(r.cfg.Admin.Token))
	mac.Write([]byte("asnrelay dashboard session v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// dashboardAuthorized accepts no token configured, the bearer token, or the
// session cookie.
func (r *Relay) dashboardAuthorized(req *http.Request) bool {
	token := r.cfg.Admin.Token
	if token == "" {
		return true
	}
	if got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok &&
		subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
		return true
	}
	c, err := req.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.sessionValue())) == 1
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// renderPage renders a template into a buffer first, so that a template
// error is a clean 500 rather than half a page.
func (r *Relay) renderPage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := dashboardTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		r.log.Error().Err(err).Str("template", name).Msg("render dashboard")
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// loginPage is the data of login.html.
type loginPage struct {
	Version string
	Error   string
}

// dashboardPage is the data of index.html.
type dashboardPage struct {
	Version string
	Now     time.Time
	Stats   Stats
	Recent  []NotificationSummary
	Dead    []DeliveryInfo
	// Refunds are the ledger's figures of the last DefaultRefundStatsWindow;
	// shown when there are any.
	Refunds       RefundStatsDoc
	HasRefunds    bool
	Flash         string
	Error         string
	TokenRequired bool
}

func (r *Relay) handleDashboard(w http.ResponseWriter, req *http.Request) {
	if !r.dashboardAuthorized(req) {
		r.renderPage(w, http.StatusUnauthorized, "login.html", loginPage{Version: r.opts.Version})
		return
	}
	r.renderDashboard(w, req, http.StatusOK, flashOf(req), "")
}

func (r *Relay) renderDashboard(w http.ResponseWriter, _ *http.Request, status int, flash, errMsg string) {
	page, err := r.dashboardData()
	if err != nil {
		status, msg := errorStatus(err)
		r.log.Error().Err(err).Msg("dashboard data")
		r.renderPage(w, status, "login.html", loginPage{Version: r.opts.Version, Error: msg})
		return
	}
	page.Flash, page.Error = flash, errMsg
	r.renderPage(w, status, "index.html", page)
}

func (r *Relay) dashboardData() (dashboardPage, error) {
	now := r.now()
	page := dashboardPage{Version: r.opts.Version, Now: now, TokenRequired: r.cfg.Admin.Token != ""}
	var err error
	if page.Stats, err = r.stats(now.Add(-DefaultStatsWindow)); err != nil {
		return page, err
	}
	ns, _, err := r.db.Notifications(store.NotificationFilter{}, 0, dashboardRows)
	if err != nil {
		return page, err
	}
	for _, n := range ns {
		page.Recent = append(page.Recent, notificationSummary(n))
	}
	ds, _, err := r.db.Deliveries(store.DeliveryFilter{State: store.DeliveryDead}, 0, dashboardRows)
	if err != nil {
		return page, err
	}
	page.Dead = deliveryInfos(ds)
	if page.Refunds, err = r.refundStats("", now.Add(-DefaultRefundStatsWindow)); err != nil {
		return page, err
	}
	t := page.Refunds.Total
	page.HasRefunds = t.Requests+t.Refunded+t.Declined+t.Reversed+t.Revoked > 0
	return page, nil
}

// flashOf reads the outcome of the action that redirected here. Only
// numbers and known words are taken from the URL, so a crafted link cannot
// put text on the page.
func flashOf(req *http.Request) string {
	q := req.URL.Query()
	n, err := strconv.Atoi(q.Get("created"))
	if err != nil || n < 0 {
		return ""
	}
	switch q.Get("done") {
	case "replay", "retry", "replay-dead":
		return fmt.Sprintf("Created %d new %s.", n, plural(n, "delivery", "deliveries"))
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (r *Relay) handleLogin(w http.ResponseWriter, req *http.Request) {
	req.Body = http.MaxBytesReader(w, req.Body, 4<<10)
	token := req.PostFormValue("token")
	if r.cfg.Admin.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(r.cfg.Admin.Token)) != 1 {
		r.log.Warn().Str("remote", req.RemoteAddr).Msg("dashboard: wrong admin token")
		r.renderPage(w, http.StatusUnauthorized, "login.html", loginPage{Version: r.opts.Version, Error: "Wrong token."})
		return
	}
	if r.cfg.Admin.Token != "" {
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: r.sessionValue(), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: req.TLS != nil,
		})
	}
	http.Redirect(w, req, "/", http.StatusSeeOther)
}

func (r *Relay) handleLogout(w http.ResponseWriter, req *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, req, "/", http.StatusSeeOther)
}

// dashboardAction runs a form action and redirects to the page with its
// outcome, or renders the page with the error.
func (r *Relay) dashboardAction(action func(req *http.Request) (string, ReplayResult, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.dashboardAuthorized(req) {
			r.renderPage(w, http.StatusUnauthorized, "login.html", loginPage{Version: r.opts.Version, Error: "Log in first."})
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, 4<<10)
		done, res, err := action(req)
		if err != nil {
			status, msg := errorStatus(err)
			r.renderDashboard(w, req, status, "", msg)
			return
		}
		http.Redirect(w, req, fmt.Sprintf("/?done=%s&created=%d", done, res.Created), http.StatusSeeOther)
	})
}

func formID(req *http.Request, key string) (uint64, error) {
	id, err := parseID(req.PostFormValue(key))
	if err != nil {
		return 0, errBadRequest("%s: %v", key, err)
	}
	return id, nil
}

func (r *Relay) actionReplay(req *http.Request) (string, ReplayResult, error) {
	id, err := formID(req, "notification")
	if err != nil {
		return "", ReplayResult{}, err
	}
	res, err := r.replay(ReplayRequest{IDs: []uint64{id}})
	if err == nil && res.Created == 0 && len(res.Skipped) > 0 {
		err = errConflict("notification %d: %s", id, res.Skipped[0].Reason)
	}
	return "replay", res, err
}

func (r *Relay) actionRetry(req *http.Request) (string, ReplayResult, error) {
	id, err := formID(req, "delivery")
	if err != nil {
		return "", ReplayResult{}, err
	}
	d, err := r.db.Delivery(id)
	if err != nil {
		return "", ReplayResult{}, err
	}
	res, err := r.retryDelivery(d)
	return "retry", res, err
}

func (r *Relay) actionReplayDead(req *http.Request) (string, ReplayResult, error) {
	target := req.PostFormValue("target")
	if target == "" {
		return "", ReplayResult{}, errBadRequest("target: missing")
	}
	res, err := r.replay(ReplayRequest{State: string(store.DeliveryDead), Target: target})
	return "replay-dead", res, err
}

func handleDashboardCSS(w http.ResponseWriter, _ *http.Request) {
	css, err := dashboardFS.ReadFile("dashboard/dashboard.css")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(css)
}

// ago says how long before now t was, roughly ("3m ago").
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roundDuration(-d)
	}
	return roundDuration(d) + " ago"
}

// roundDuration prints d with the one or two units that matter: "45s",
// "3m20s", "5h12m", "3d4h".
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// shorten cuts s to n runes with an ellipsis.
func shorten(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// money prints an amount in milliunits of its currency with two decimals
// (1990 is "1.99").
func money(milli int64) string {
	sign := ""
	if milli < 0 {
		sign, milli = "-", -milli
	}
	cents := (milli + 5) / 10
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
