package relay

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// Seed corpora of the targets below live in testdata/fuzz/<FuzzName>; the
// seeds added in code are signed by a CA minted for the run.

// fuzzBodies are request bodies as Apple sends them, and near misses.
func fuzzBodies(f *testing.F, ca *appletest.CA) [][]byte {
	tx := &apple.Transaction{TransactionID: "2000000000000001", OriginalTransactionID: "2000000000000001", ProductID: "coins", Price: 990, Currency: "EUR"}
	return [][]byte{
		body(f, ca, appletest.Notification{Type: "DID_RENEW", UUID: "f-1", Transaction: tx, RenewalInfo: &apple.RenewalInfo{AutoRenewProductID: "p"}}),
		body(f, ca, appletest.Notification{Type: "CONSUMPTION_REQUEST", UUID: "f-2", ConsumptionRequestReason: "LEGAL", Transaction: tx}),
		body(f, ca, appletest.Notification{Type: "REFUND", UUID: "f-3", Environment: "Production", AppAppleID: 1234567890, Transaction: tx}),
		body(f, ca, appletest.Notification{Type: "TEST", UUID: "f-4", Environment: "Xcode"}),
		body(f, ca, appletest.Notification{Type: "SUBSCRIBED", Subtype: "INITIAL_BUY", BundleID: "com.other.app"}),
		[]byte(`{"signedPayload":"e30.e30.e30"}`),
		[]byte(`{"signedPayload":"a.b.c","x":[[[]]]}`),
		[]byte("{\"signedPayload\":\"\xff.\xfe.\"}"),
	}
}

// FuzzDecodeBody: what the admin API shows of a stored body (decoded without
// verification) never panics and is JSON.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range fuzzBodies(f, newCA(f)) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := decodeBody(b)
		if err == nil && !json.Valid(doc) {
			t.Fatalf("decodeBody(%q) = %q, not JSON", b, doc)
		}
	})
}

// FuzzProcessOutcome: the processing of any stored body ends in a state,
// never in an error (which would hold the inbox behind it forever), copies
// only clean identifiers, and never trusts what it could not verify.
func FuzzProcessOutcome(f *testing.F) {
	ca := newCA(f)
	for _, b := range fuzzBodies(f, ca) {
		f.Add(b)
	}
	cfg := testConfig(f, ca,
		target("strict", "http://127.0.0.1:1/"),
		target("loose", "http://127.0.0.1:1/", func(tg *config.Target) { tg.VerifiedOnly = false }),
		target("decoded", "http://127.0.0.1:1/", func(tg *config.Target) { tg.VerifiedOnly = false; tg.Payload = config.PayloadDecoded }))
	cfg.Apps[0].Environments = []string{"Production", "Sandbox", "Xcode"}
	cfg.Apps[0].Consumption.Enabled, cfg.Apps[0].Consumption.DryRun = true, true
	r, err := New(cfg, zerolog.Nop(), Options{Now: t0Clock})
	if err != nil {
		f.Fatal(err)
	}
	p := &processor{verifier: r.verifier, apps: r.apps, targets: cfg.Targets, log: zerolog.Nop()}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := p.outcome(store.Received{Notification: store.Notification{Seq: 1, App: "myapp"}, Body: b})
		if err != nil {
			t.Fatalf("outcome of %q: %v (the inbox would wait for it forever)", b, err)
		}
		if o.Verified != (o.State == store.StateVerified) || o.State != store.StateVerified && o.State != store.StateUnverified {
			t.Fatalf("state %s, verified %v", o.State, o.Verified)
		}
		for _, s := range []string{o.UUID, o.Type, o.Subtype, o.Environment, o.BundleID} {
			if clean(s) != s {
				t.Fatalf("unclean identifier %q copied from the payload", s)
			}
		}
		if !o.Verified {
			if o.Reason == "" || o.Refund != nil || o.Consumption != nil {
				t.Fatalf("unverified outcome: reason %q, refund %v, consumption %v", o.Reason, o.Refund, o.Consumption)
			}
			for _, d := range o.Deliveries {
				if d.Target == "strict" {
					t.Fatal("unverified notification for a verified_only target")
				}
			}
		}
		if o.Decoded != nil && !json.Valid(o.Decoded) {
			t.Fatalf("decoded document %q is not JSON", o.Decoded)
		}
	})
}

func t0Clock() time.Time { return t0 }

// FuzzAdminAPI: any request to the admin API or the dashboard gets an
// answer below 500, and the API answers in JSON (but for the mux's redirects
// of unclean paths).
func FuzzAdminAPI(f *testing.F) {
	ca := newCA(f)
	s := "http://127.0.0.1:1/"
	r, err := New(testConfig(f, ca, target("t", s), target("loose", s, func(tg *config.Target) { tg.VerifiedOnly = false })), zerolog.Nop(), Options{Now: t0Clock})
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Open(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	for _, b := range fuzzBodies(f, ca) {
		if _, err := r.db.Append(store.Incoming{App: "myapp", Body: b, ReceivedAt: t0}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := r.processor.step(f.Context()); err != nil {
		f.Fatal(err)
	}
	h := r.admin.Handler
	for _, seed := range []struct {
		method uint8
		target string
		body   string
	}{
		{0, "/api/v1/notifications?state=verified&limit=2", ""},
		{0, "/api/v1/notifications?cursor=bgAAAAAAAAAC&since=7d", ""},
		{0, "/api/v1/notifications/1", ""},
		{0, "/api/v1/notifications/1/body", ""},
		{0, "/api/v1/deliveries?target=t&state=pending", ""},
		{0, "/api/v1/deliveries/1", ""},
		{1, "/api/v1/deliveries/1/retry", ""},
		{1, "/api/v1/replay", `{"ids":[1,2],"target":"loose"}`},
		{1, "/api/v1/replay", `{"state":"dead"}`},
		{1, "/api/v1/replay", `{"app":"myapp","type":"DID_RENEW","since":"1d"}`},
		{1, "/api/v1/reverify", `{"ids":[5]}`},
		{0, "/api/v1/stats?since=2026-11-01T00:00:00Z", ""},
		{0, "/api/v1/apps", ""},
		{0, "/api/v1/consumption?state=pending", ""},
		{1, "/api/v1/consumption/2000000000000001", `{"action":"cancel"}`},
		{0, "/api/v1/refunds?outcome=refunded", ""},
		{0, "/api/v1/refunds/stats", ""},
		{1, "/api/v1/backfill", `{"app":"myapp","start":"2026-11-01T00:00:00Z"}`},
		{0, "/?notification=1", ""},
		{1, "/dashboard/replay", "id=1"},
		{2, "/api/v1/replay", "{}"},
	} {
		f.Add(seed.method, seed.target, []byte(seed.body))
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD"}
	f.Fuzz(func(t *testing.T, m uint8, target string, body []byte) {
		req, err := http.NewRequest(methods[int(m)%len(methods)], "http://127.0.0.1:8081"+target, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return
		}
		if req.Method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, target, body, rec.Code, rec.Body)
		}
		if strings.HasPrefix(req.URL.Path, "/api/v1/") && (rec.Code < 300 || rec.Code >= 400) && !strings.HasSuffix(req.URL.Path, "/body") && req.Method != "HEAD" &&
			rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %q", req.Method, target, rec.Body)
		}
	})
}
