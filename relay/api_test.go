package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// call makes one admin request and returns the status and body.
func (h *harness) call(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, got
}

// getJSON GETs path, wants 200, and decodes the answer into v.
func (h *harness) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	status, body := h.call(t, "GET", path, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// postJSON POSTs in to path, wants 200, and decodes the answer into v.
func (h *harness) postJSON(t testing.TB, path string, in, v any) {
	t.Helper()
	status, body := h.call(t, "POST", path, "", in)
	if status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("POST %s: %v in %s", path, err, body)
	}
}

// wantError checks an error answer: its status and that the stable shape
// {"error": "..."} carries a message containing want.
func wantError(t testing.TB, what string, status int, body []byte, wantStatus int, want string) {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil || len(e) != 1 {
		t.Errorf("%s: answer %s is not {\"error\": ...}", what, body)
		return
	}
	msg, _ := e["error"].(string)
	if status != wantStatus || !strings.Contains(msg, want) {
		t.Errorf("%s: %d %q; want %d with %q", what, status, msg, wantStatus, want)
	}
}

// deliveredTo waits until sink s has received n requests.
func deliveredTo(t testing.TB, s *sink, n int) {
	t.Helper()
	waitFor(t, "deliveries to the sink", func() bool { return len(s.received()) >= n })
	if got := len(s.received()); got != n {
		t.Fatalf("sink received %d, want %d", got, n)
	}
}

func (h *harness) waitDeliveries(t testing.TB, f store.DeliveryFilter, n int) []store.Delivery {
	t.Helper()
	var ds []store.Delivery
	waitFor(t, "deliveries", func() bool {
		ds, _, _ = h.r.db.Deliveries(f, 0, 1000)
		return len(ds) == n
	})
	return ds
}

func TestAdminAuth(t *testing.T) {
	ca := newCA(t)
	cfg := testConfig(t, ca)
	cfg.Admin.Token = "s3cret-token"
	h := startRelay(t, cfg)
	for _, path := range []string{"/api/v1/stats", "/api/v1/notifications", "/api/v1/nope", "/metrics"} {
		for _, tc := range []struct {
			token string
			want  int
		}{{"", 401}, {"wrong", 401}, {"s3cret-token", 200}} {
			want := tc.want
			if path == "/api/v1/nope" && want == 200 {
				want = 404
			}
			status, body := h.call(t, "GET", path, tc.token, nil)
			if status != want {
				t.Errorf("GET %s with token %q: %d, want %d (%s)", path, tc.token, status, want, body)
			}
			if status == 401 && path != "/metrics" {
				wantError(t, path, status, body, 401, "bearer token")
			}
		}
	}
	if status, _ := h.call(t, "POST", "/api/v1/replay", "", ReplayRequest{IDs: []uint64{1}}); status != 401 {
		t.Errorf("replay without token: %d", status)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _ := h.call(t, "GET", path, "", nil); status != 200 {
			t.Errorf("%s needs no token: %d", path, status)
		}
	}
	// With a token, the Host does not matter: the token is the guard.
	req, _ := http.NewRequest("GET", h.admin+"/api/v1/stats", nil)
	req.Host = "relay.internal.example:8081"
	req.Header.Set("Authorization", "Bearer s3cret-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("token and a DNS Host: %v %v", resp.StatusCode, err)
	}
}

func TestAdminWithoutTokenOnLoopback(t *testing.T) {
	h := startRelay(t, testConfig(t, newCA(t)))
	if status, body := h.call(t, "GET", "/api/v1/stats", "", nil); status != 200 {
		t.Fatalf("loopback without token: %d %s", status, body)
	}
	// A DNS name rebound to 127.0.0.1 is not loopback to a browser's origin rules.
	req, _ := http.NewRequest("GET", h.admin+"/api/v1/stats", nil)
	req.Host = "attacker.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, "foreign Host", resp.StatusCode, body, 403, "loopback Host")
	// A web page posting across origins is refused.
	req, _ = http.NewRequest("POST", h.admin+"/api/v1/replay", strings.NewReader(`{"ids":[1]}`))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, "cross-site POST", resp.StatusCode, body, 403, "cross-origin")
	for _, host := range []string{"localhost:8081", "[::1]:80", "127.0.0.2"} {
		if !loopbackHost(host) {
			t.Errorf("loopbackHost(%q) = false", host)
		}
	}
}

// seed posts verified notifications of the given types and one unverified,
// and waits until all are processed. It returns the bodies by seq.
func seed(t testing.TB, h *harness, ca *appletest.CA, types ...string) map[uint64][]byte {
	t.Helper()
	bodies := map[uint64][]byte{}
	seq := uint64(h.count(t))
	for i, typ := range types {
		b := body(t, ca, appletest.Notification{Type: typ, UUID: "uuid-" + typ + "-" + string(rune('a'+i))})
		if got := h.post(t, "myapp", b); got != 200 {
			t.Fatalf("post: %d", got)
		}
		seq++
		bodies[seq] = b
	}
	forged := body(t, newCA(t), appletest.Notification{Type: "REFUND", UUID: "forged-uuid"})
	if got := h.post(t, "myapp", forged); got != 200 {
		t.Fatalf("post: %d", got)
	}
	seq++
	bodies[seq] = forged
	for s := range bodies {
		h.waitProcessed(t, s)
	}
	return bodies
}

func TestNotificationsListIsThePinnedDocument(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelay(t, testConfig(t, ca, target("backend", s.URL)))
	seed(t, h, ca, "DID_RENEW", "SUBSCRIBED", "DID_RENEW")

	status, raw := h.call(t, "GET", "/api/v1/notifications", "", nil)
	if status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	var doc map[string]json.RawMessage
	json.Unmarshal(raw, &doc)
	if keys := sortedKeys(doc); !slices.Equal(keys, []string{"next_cursor", "notifications"}) {
		t.Errorf("top-level keys %v", keys)
	}
	var items []map[string]any
	json.Unmarshal(doc["notifications"], &items)
	if len(items) != 4 {
		t.Fatalf("%d notifications, want 4", len(items))
	}
	pinned := []string{"id", "notification_uuid", "app", "environment", "type", "subtype", "state", "received_at"}
	for _, it := range items {
		for _, k := range pinned {
			if _, ok := it[k]; !ok {
				t.Errorf("item %v lacks %q", it, k)
			}
		}
	}
	// Newest first; the unverified one shows the UUID it claims.
	first := items[0]
	if first["id"] != float64(4) || first["state"] != "unverified" || first["notification_uuid"] != "forged-uuid" ||
		first["type"] != "REFUND" || first["environment"] != "Sandbox" || first["app"] != "myapp" {
		t.Errorf("newest = %v", first)
	}
	if items[3]["id"] != float64(1) || items[3]["state"] != "verified" || items[3]["type"] != "DID_RENEW" {
		t.Errorf("oldest = %v", items[3])
	}
	if _, err := time.Parse(time.RFC3339Nano, first["received_at"].(string)); err != nil {
		t.Errorf("received_at: %v", err)
	}
	var list NotificationList
	json.Unmarshal(raw, &list)
	if list.NextCursor != "" {
		t.Errorf("next_cursor %q on the only page", list.NextCursor)
	}

	ids := func(path string) []uint64 {
		t.Helper()
		var l NotificationList
		h.getJSON(t, path, &l)
		var out []uint64
		for _, n := range l.Notifications {
			out = append(out, n.ID)
		}
		return out
	}
	for path, want := range map[string][]uint64{
		"/api/v1/notifications?type=DID_RENEW":                                                {3, 1},
		"/api/v1/notifications?state=unverified":                                              {4},
		"/api/v1/notifications?state=verified&type=SUBSCRIBED":                                {2},
		"/api/v1/notifications?app=other":                                                     nil,
		"/api/v1/notifications?environment=Production":                                        nil,
		"/api/v1/notifications?environment=Sandbox&app=myapp":                                 {4, 3, 2, 1},
		"/api/v1/notifications?since=1h":                                                      {4, 3, 2, 1},
		"/api/v1/notifications?since=2000-01-01T00:00:00Z":                                    {4, 3, 2, 1},
		"/api/v1/notifications?until=2000-01-01T00:00:00Z":                                    nil,
		"/api/v1/notifications?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339): nil,
	} {
		if got := ids(path); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}

	// Cursor paging.
	var page NotificationList
	h.getJSON(t, "/api/v1/notifications?limit=3", &page)
	if len(page.Notifications) != 3 || page.NextCursor == "" {
		t.Fatalf("page 1: %+v", page)
	}
	var page2 NotificationList
	h.getJSON(t, "/api/v1/notifications?limit=3&cursor="+page.NextCursor, &page2)
	if len(page2.Notifications) != 1 || page2.Notifications[0].ID != 1 || page2.NextCursor != "" {
		t.Errorf("page 2: %+v", page2)
	}

	for _, tc := range []struct{ query, want string }{
		{"state=bogus", "state"},
		{"environment=prod", "environment"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"since=yesterday", "since"},
		{"since=-5h", "since"},
		{"since=1h&until=2h", "before until"},
		{"cursor=abc", "cursor"},
		{"cursor=" + encodeCursor(cursorDeliveries, 3), "cursor"},
		{"type=did_renew", "type"},
		{"colour=red", `unknown query parameter "colour"`},
		{"app=a&app=b", "app given 2 times"},
	} {
		status, body := h.call(t, "GET", "/api/v1/notifications?"+tc.query, "", nil)
		wantError(t, tc.query, status, body, 400, tc.want)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestNotificationDetailAndBody(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelay(t, testConfig(t, ca, target("backend", s.URL)))
	bodies := seed(t, h, ca, "DID_RENEW")
	deliveredTo(t, s, 1)
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliverySucceeded}, 1)

	var d NotificationDetail
	h.getJSON(t, "/api/v1/notifications/1", &d)
	if !d.Verified || d.Notification.ID != 1 || d.Notification.BundleID != testBundle || d.Notification.Size != len(bodies[1]) ||
		d.Notification.ProcessedAt.IsZero() || len(d.Deliveries) != 1 || d.Deliveries[0].State != "succeeded" || d.Deliveries[0].Target != "backend" {
		t.Errorf("detail = %+v", d)
	}
	var payload struct {
		Notification struct {
			NotificationType string `json:"notificationType"`
			NotificationUUID string `json:"notificationUUID"`
		} `json:"notification"`
	}
	if err := json.Unmarshal(d.Payload, &payload); err != nil || payload.Notification.NotificationType != "DID_RENEW" ||
		payload.Notification.NotificationUUID != d.Notification.UUID {
		t.Errorf("payload %s: %v", d.Payload, err)
	}

	var u NotificationDetail
	h.getJSON(t, "/api/v1/notifications/2", &u)
	if u.Verified || u.Notification.State != "unverified" || !strings.Contains(u.Notification.Reason, "untrusted_root") ||
		len(u.Deliveries) != 0 || !bytes.Contains(u.Payload, []byte(`"forged-uuid"`)) {
		t.Errorf("unverified detail = %+v, payload %s", u, u.Payload)
	}

	for seq, want := range bodies {
		req, _ := http.NewRequest("GET", h.admin+"/api/v1/notifications/"+itoa(int(seq))+"/body", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %d: %d %q, %d bytes; want the exact stored bytes", seq, resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
	}

	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/api/v1/notifications/99", 404, "notification 99 not found"},
		{"/api/v1/notifications/99/body", 404, "notification 99 not found"},
		{"/api/v1/notifications/abc", 400, "notification id"},
		{"/api/v1/notifications/0/body", 400, "notification id"},
		{"/api/v1/notifications/-1", 400, "notification id"},
	} {
		status, body := h.call(t, "GET", tc.path, "", nil)
		wantError(t, tc.path, status, body, tc.status, tc.want)
	}
	status, body := h.call(t, "DELETE", "/api/v1/notifications/1", "", nil)
	wantError(t, "DELETE", status, body, 405, "not allowed")
	status, body = h.call(t, "GET", "/api/v1/replay", "", nil)
	wantError(t, "GET replay", status, body, 405, "not allowed")
}

func TestDeliveriesAPI(t *testing.T) {
	ca := newCA(t)
	ok, failing := newSink(t), newSink(t)
	failing.status = http.StatusBadGateway
	h := startRelay(t, testConfig(t, ca, target("ok", ok.URL), target("failing", failing.URL, func(tg *config.Target) {
		tg.Retry = config.Retry{Initial: time.Hour, MaxInterval: time.Hour, MaxAge: 24 * time.Hour}
	})))
	seed(t, h, ca, "DID_RENEW", "REFUND")
	deliveredTo(t, ok, 2)
	waitFor(t, "first attempts to fail", func() bool { return len(failing.received()) >= 1 })
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliverySucceeded}, 2)

	var all DeliveryList
	h.getJSON(t, "/api/v1/deliveries", &all)
	if len(all.Deliveries) != 4 || all.Deliveries[0].ID != 4 || all.NextCursor != "" {
		t.Fatalf("all = %+v", all)
	}
	count := func(path string) int {
		var l DeliveryList
		h.getJSON(t, path, &l)
		return len(l.Deliveries)
	}
	for path, want := range map[string]int{
		"/api/v1/deliveries?target=ok":                   2,
		"/api/v1/deliveries?target=ok&state=succeeded":   2,
		"/api/v1/deliveries?state=pending":               2,
		"/api/v1/deliveries?state=dead":                  0,
		"/api/v1/deliveries?notification=1":              2,
		"/api/v1/deliveries?notification=1&target=ok":    1,
		"/api/v1/deliveries?notification=3":              0, // unverified: delivered nowhere
		"/api/v1/deliveries?type=REFUND":                 2,
		"/api/v1/deliveries?since=1h&app=myapp":          4,
		"/api/v1/deliveries?limit=1&target=failing":      1,
		"/api/v1/deliveries?environment=Sandbox&limit=3": 3,
	} {
		if got := count(path); got != want {
			t.Errorf("%s: %d deliveries, want %d", path, got, want)
		}
	}
	var page DeliveryList
	h.getJSON(t, "/api/v1/deliveries?limit=3", &page)
	var rest DeliveryList
	h.getJSON(t, "/api/v1/deliveries?limit=3&cursor="+page.NextCursor, &rest)
	if len(page.Deliveries) != 3 || len(rest.Deliveries) != 1 || rest.Deliveries[0].ID != 1 {
		t.Errorf("paging: %+v then %+v", page, rest)
	}

	var failed DeliveryList
	h.getJSON(t, "/api/v1/deliveries?target=failing", &failed)
	var detail DeliveryDetail
	h.getJSON(t, "/api/v1/deliveries/"+itoa(int(failed.Deliveries[len(failed.Deliveries)-1].ID)), &detail)
	if detail.Delivery.State != "pending" || len(detail.Attempts) == 0 || detail.Attempts[0].Status != 502 ||
		detail.Attempts[0].Error != "HTTP 502" || detail.Delivery.LastError != "HTTP 502" {
		t.Errorf("failing delivery = %+v", detail)
	}
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/api/v1/deliveries/99", 404, "delivery 99 not found"},
		{"/api/v1/deliveries/x", 400, "delivery id"},
		{"/api/v1/deliveries?state=failed", 400, "state"},
		{"/api/v1/deliveries?notification=zero", 400, "notification"},
		{"/api/v1/deliveries?type=SUBSCRIBED.INITIAL_BUY", 400, "type"},
		{"/api/v1/deliveries?cursor=" + encodeCursor(cursorNotifications, 2), 400, "cursor"},
	} {
		status, body := h.call(t, "GET", tc.path, "", nil)
		wantError(t, tc.path, status, body, tc.status, tc.want)
	}
}

func TestReplayReachesTargets(t *testing.T) {
	ca := newCA(t)
	strict, loose := newSink(t), newSink(t)
	h := startRelay(t, testConfig(t, ca, target("strict", strict.URL),
		target("loose", loose.URL, func(tg *config.Target) { tg.VerifiedOnly = false }),
		target("decoded", loose.URL, func(tg *config.Target) { tg.Payload = config.PayloadDecoded; tg.Types = []string{"SUBSCRIBED"} })))
	bodies := seed(t, h, ca, "DID_RENEW")
	// 1 verified -> strict, loose; 2 unverified -> loose.
	deliveredTo(t, strict, 1)
	waitFor(t, "loose deliveries", func() bool { return len(loose.received()) == 2 })

	var res ReplayResult
	h.postJSON(t, "/api/v1/replay", ReplayRequest{IDs: []uint64{1, 2}}, &res)
	if res.Created != 3 || len(res.Deliveries) != 3 || len(res.Skipped) != 0 {
		t.Fatalf("replay = %+v", res)
	}
	deliveredTo(t, strict, 2)
	waitFor(t, "loose replays", func() bool { return len(loose.received()) == 4 })
	if !bytes.Equal(strict.received()[1], bodies[1]) {
		t.Error("replayed body differs from the stored one")
	}
	if got := strict.headers[1].Get("Webhook-Id"); got != strict.headers[0].Get("Webhook-Id") || got == "" {
		t.Errorf("replay webhook-id %q, first %q: targets dedupe on it", got, strict.headers[0].Get("Webhook-Id"))
	}
	replayed, _ := h.r.db.Delivery(res.Deliveries[0])
	if replayed.ReplayOf == 0 {
		t.Errorf("replay not linked to the delivery it repeats: %+v", replayed)
	}
	if old, _ := h.r.db.Delivery(replayed.ReplayOf); old.State != store.DeliverySucceeded || old.ReplayedBy != replayed.ID {
		t.Errorf("history rewritten: %+v", old)
	}

	// One target only; an unverified notification never reaches a verified_only target.
	h.postJSON(t, "/api/v1/replay", ReplayRequest{IDs: []uint64{1, 2}, Target: "strict"}, &res)
	if res.Created != 1 || len(res.Skipped) != 1 || res.Skipped[0].Notification != 2 || !strings.Contains(res.Skipped[0].Reason, "verified_only") {
		t.Errorf("replay to strict = %+v", res)
	}
	deliveredTo(t, strict, 3)
	// A decoded target takes a document built for the replay.
	h.postJSON(t, "/api/v1/replay", ReplayRequest{IDs: []uint64{1}, Target: "decoded"}, &res)
	if res.Created != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "types") {
		t.Errorf("replay of DID_RENEW to a SUBSCRIBED-only target = %+v", res)
	}

	for _, tc := range []struct {
		in     ReplayRequest
		status int
		want   string
	}{
		{ReplayRequest{IDs: []uint64{99}}, 404, "notification 99 not found"},
		{ReplayRequest{IDs: []uint64{1}, Target: "nobody"}, 400, "not a configured target"},
		{ReplayRequest{State: "pending"}, 400, "state"},
		{ReplayRequest{}, 400, "give ids"},
		{ReplayRequest{IDs: []uint64{1}, App: "myapp"}, 400, "ids go with target only"},
		{ReplayRequest{State: "dead", Since: "soon"}, 400, "since"},
		{ReplayRequest{State: "dead", Environment: "prod"}, 400, "environment"},
	} {
		status, body := h.call(t, "POST", "/api/v1/replay", "", tc.in)
		wantError(t, tc.want, status, body, tc.status, tc.want)
	}
	for _, raw := range []string{`{"ids":"1"}`, `{"idz":[1]}`, `{"ids":[1]} {}`, `[`} {
		req, _ := http.NewRequest("POST", h.admin+"/api/v1/replay", strings.NewReader(raw))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, raw, resp.StatusCode, b, 400, "request body")
	}
	big := bytes.Repeat([]byte(" "), MaxAPIBody+1)
	resp, err := http.Post(h.admin+"/api/v1/replay", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, "oversize body", resp.StatusCode, b, 413, "larger than")

	// Bulk by filter: every verified DID_RENEW of the last hour, to strict.
	h.postJSON(t, "/api/v1/replay", ReplayRequest{Since: "1h", Type: "DID_RENEW", Target: "strict"}, &res)
	if res.Created != 1 {
		t.Errorf("bulk replay = %+v", res)
	}
	deliveredTo(t, strict, 4)
}

func TestReplayToADecodedTargetBuildsTheDocument(t *testing.T) {
	ca := newCA(t)
	raw, decoded := newSink(t), newSink(t)
	h := startRelay(t, testConfig(t, ca, target("raw", raw.URL),
		target("decoded", decoded.URL, func(tg *config.Target) { tg.Payload = config.PayloadDecoded; tg.Types = []string{"SUBSCRIBED"} })))
	h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: "u1"}))
	deliveredTo(t, raw, 1)
	if _, err := h.r.db.Decoded(1); err == nil {
		t.Fatal("setup: a decoded document was stored though no decoded target took it")
	}
	// The decoded target is told to take DID_RENEW too, by a config change and a restart.
	h.stop(t)
	cfg := h.r.cfg
	cfg.Targets[1].Types = nil
	h = startRelay(t, cfg)
	var res ReplayResult
	h.postJSON(t, "/api/v1/replay", ReplayRequest{IDs: []uint64{1}, Target: "decoded"}, &res)
	if res.Created != 1 {
		t.Fatalf("replay = %+v", res)
	}
	deliveredTo(t, decoded, 1)
	var doc struct {
		Notification struct {
			NotificationUUID string `json:"notificationUUID"`
		} `json:"notification"`
	}
	if err := json.Unmarshal(decoded.received()[0], &doc); err != nil || doc.Notification.NotificationUUID != "u1" {
		t.Errorf("decoded replay %s: %v", decoded.received()[0], err)
	}
}

func TestBulkReplayOfDeadDeliveriesAfterTheTargetComesBack(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	s.status = http.StatusInternalServerError
	clock := newTestClock(t0.Add(time.Hour))
	h := startRelayWith(t, testConfig(t, ca, target("flaky", s.URL, func(tg *config.Target) {
		tg.Retry = config.Retry{Initial: time.Minute, MaxInterval: time.Minute, MaxAge: time.Hour}
	})), Options{Version: "test", Now: clock.now})
	seed(t, h, ca, "DID_RENEW", "SUBSCRIBED")
	waitFor(t, "first attempts", func() bool {
		ds, _, _ := h.r.db.Deliveries(store.DeliveryFilter{State: store.DeliveryPending}, 0, 10)
		return len(ds) == 2 && ds[0].Attempts+ds[1].Attempts >= 1
	})
	// The target stays down past max_age.
	clock.add(2 * time.Hour)
	h.r.forward.Wake()
	dead := h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliveryDead}, 2)
	var st Stats
	h.getJSON(t, "/api/v1/stats", &st)
	if len(st.Targets) != 1 || st.Targets[0].Dead != 2 || st.Targets[0].Pending != 0 || st.Targets[0].LastError != "HTTP 500" {
		t.Errorf("stats while dead = %+v", st.Targets)
	}

	s.mu.Lock()
	s.status = http.StatusOK
	before := len(s.bodies)
	s.mu.Unlock()
	var res ReplayResult
	h.postJSON(t, "/api/v1/replay", ReplayRequest{State: "dead"}, &res)
	if res.Created != 2 {
		t.Fatalf("replay dead = %+v", res)
	}
	clock.add(2 * time.Minute) // past the failing target's next probe
	h.r.forward.Wake()
	waitFor(t, "replays delivered", func() bool {
		ds, _, _ := h.r.db.Deliveries(store.DeliveryFilter{State: store.DeliverySucceeded}, 0, 10)
		return len(ds) == 2
	})
	if got := len(s.received()) - before; got != 2 {
		t.Errorf("target got %d replays, want 2", got)
	}
	for _, d := range dead {
		old, _ := h.r.db.Delivery(d.ID)
		if old.State != store.DeliveryDead || old.ReplayedBy == 0 || old.LastError == "" {
			t.Errorf("dead delivery after replay = %+v; history must stay", old)
		}
	}
	h.getJSON(t, "/api/v1/stats", &st)
	if st.Targets[0].Dead != 0 || st.Targets[0].Pending != 0 {
		t.Errorf("stats after replay = %+v", st.Targets)
	}
	// Nothing dead is left: a second replay creates nothing.
	h.postJSON(t, "/api/v1/replay", ReplayRequest{State: "dead"}, &res)
	if res.Created != 0 {
		t.Errorf("second replay of dead = %+v", res)
	}
}

func TestRetryDelivery(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelay(t, testConfig(t, ca, target("t", s.URL)))
	seed(t, h, ca, "DID_RENEW")
	deliveredTo(t, s, 1)
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliverySucceeded}, 1)
	var res ReplayResult
	h.postJSON(t, "/api/v1/deliveries/1/retry", nil, &res)
	if res.Created != 1 || res.Deliveries[0] != 2 {
		t.Fatalf("retry = %+v", res)
	}
	deliveredTo(t, s, 2)
	var d DeliveryDetail
	h.getJSON(t, "/api/v1/deliveries/2", &d)
	if d.Delivery.ReplayOf != 1 {
		t.Errorf("retry = %+v", d.Delivery)
	}
	status, body := h.call(t, "POST", "/api/v1/deliveries/42/retry", "", nil)
	wantError(t, "retry unknown", status, body, 404, "delivery 42 not found")
}

func TestReverifyAfterAddingARoot(t *testing.T) {
	trusted, other := newCA(t), newCA(t)
	s := newSink(t)
	cfg := testConfig(t, trusted, target("t", s.URL))
	h := startRelay(t, cfg)
	h.post(t, "myapp", body(t, other, appletest.Notification{Type: "DID_RENEW", UUID: "late-root"}))
	if n := h.waitProcessed(t, 1); n.State != store.StateUnverified {
		t.Fatalf("setup: %s", n.State)
	}
	var res ReverifyResult
	h.postJSON(t, "/api/v1/reverify", ReverifyRequest{}, &res)
	if res.Queued != 1 {
		t.Fatalf("reverify with the old config = %+v", res)
	}
	if n := h.waitProcessed(t, 1); n.State != store.StateUnverified {
		t.Fatalf("still untrusted, yet %s", n.State)
	}
	h.stop(t)

	// The operator adds the missing root and restarts.
	root := cfg.DataDir + "-other-root.pem"
	writeFile(t, root, other.RootPEM())
	cfg.Apple.RootCerts = append(cfg.Apple.RootCerts, root)
	h = startRelay(t, cfg)
	h.postJSON(t, "/api/v1/reverify", ReverifyRequest{Since: "1h"}, &res)
	if res.Queued != 1 {
		t.Fatalf("reverify = %+v", res)
	}
	deliveredTo(t, s, 1)
	if n := h.waitProcessed(t, 1); n.State != store.StateVerified || n.UUID != "late-root" {
		t.Errorf("after reverify: %+v", n)
	}
	// Verified ones are left alone; ids and since do not mix; unknown ids are 404.
	h.postJSON(t, "/api/v1/reverify", ReverifyRequest{IDs: []uint64{1}}, &res)
	if res.Queued != 0 {
		t.Errorf("reverify of a verified notification = %+v", res)
	}
	status, body := h.call(t, "POST", "/api/v1/reverify", "", ReverifyRequest{IDs: []uint64{1}, Since: "1h"})
	wantError(t, "ids and since", status, body, 400, "not both")
	status, body = h.call(t, "POST", "/api/v1/reverify", "", ReverifyRequest{IDs: []uint64{7}})
	wantError(t, "unknown id", status, body, 404, "not found")
}

func TestStatsAndApps(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	h := startRelay(t, testConfig(t, ca, target("t", s.URL)))
	seed(t, h, ca, "DID_RENEW", "DID_RENEW", "REFUND")
	h.post(t, "myapp", []byte("not json"))
	h.post(t, "nope", []byte(`{"signedPayload":"x"}`))
	deliveredTo(t, s, 3)
	var st Stats
	h.getJSON(t, "/api/v1/stats", &st)
	n := st.Notifications
	if n.Stored != 4 || n.Inbox != 0 || n.LastID != 4 || n.Scanned != 4 || !n.Complete ||
		n.ByState["verified"] != 3 || n.ByState["unverified"] != 1 ||
		n.ByApp["myapp"]["DID_RENEW"] != 2 || n.ByApp["myapp"]["REFUND"] != 2 {
		t.Errorf("notification stats = %+v", n)
	}
	if st.Ingest.Requests != 6 || st.Ingest.ByApp["myapp"]["200"] != 4 || st.Ingest.ByApp["myapp"]["400"] != 1 || st.Ingest.ByApp["unknown"]["404"] != 1 {
		t.Errorf("ingest stats = %+v", st.Ingest)
	}
	if st.Version != "test" || len(st.Targets) != 1 || st.Targets[0].Name != "t" || st.Targets[0].Failing {
		t.Errorf("stats = %+v", st)
	}
	h.getJSON(t, "/api/v1/stats?since=2000-01-01T00:00:00Z", &st)
	if st.Notifications.Scanned != 4 {
		t.Errorf("stats since 2000: %+v", st.Notifications)
	}
	status, body := h.call(t, "GET", "/api/v1/stats?since=x", "", nil)
	wantError(t, "stats since", status, body, 400, "since")

	var apps AppList
	h.getJSON(t, "/api/v1/apps", &apps)
	if len(apps.Apps) != 1 || apps.Apps[0].Name != "myapp" || apps.Apps[0].BundleID != testBundle || apps.Apps[0].API ||
		!slices.Equal(apps.Apps[0].Environments, []string{"Production", "Sandbox"}) {
		t.Errorf("apps = %+v", apps)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testClock is a clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startRelayWith is startRelay with options (a clock).
func startRelayWith(t testing.TB, cfg *config.Config, opts Options) *harness {
	t.Helper()
	r, err := New(cfg, zerolog.Nop(), opts)
	if err != nil {
		t.Fatal(err)
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
