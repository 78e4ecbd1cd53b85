package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// Secrets every configuration in these tests carries; none may ever be logged.
const (
	secretAdminToken = "adm1n-t0ken-n3ver-logged"
	secretHeader     = "s3cr3t-header"
	secretURLPass    = "url-pa55word"
	secretURLQuery   = "url-query-s3cr3t"
	secretProvider   = "provider-s3cr3t"
	secretProvPass   = "prov-pa55word"
	secretSigningKey = "webhook-signing-key-s3cr3t"
)

var secretWebhook = "whsec_" + base64.StdEncoding.EncodeToString([]byte(secretSigningKey))

// echoHeaders answers 500 with every request header in the body, as a
// misbehaving backend might: whatever the relay does with answers, it must
// not log them.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusInternalServerError)
	var keys []string
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
	}
	io.Copy(w, io.LimitReader(r.Body, 4096))
}

// secretsIn lists the forbidden strings found in s.
func secretsIn(s string, forbidden []string) []string {
	var found []string
	for _, f := range forbidden {
		if f != "" && strings.Contains(s, f) {
			found = append(found, f)
		}
	}
	return found
}

// pemLines are the base64 lines of a PEM block: any one of them in a log
// is a piece of the key.
func pemLines(p []byte) []string {
	var out []string
	for _, line := range strings.Split(string(p), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return append(out, "PRIVATE KEY")
}

// closedURL is an http URL nobody listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	e := newConsumptionEnv(t, nil)
	// Record the App Store Server API tokens the relay makes.
	var tokensMu sync.Mutex
	var tokens []string
	inner := e.api.Config.Handler
	e.api.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokensMu.Lock()
		tokens = append(tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		tokensMu.Unlock()
		inner.ServeHTTP(w, r)
	})
	echo := httptest.NewServer(http.HandlerFunc(echoHeaders))
	defer echo.Close()
	provider := httptest.NewServer(http.HandlerFunc(echoHeaders))
	defer provider.Close()

	withSecrets := func(u string) string {
		return strings.Replace(u, "http://", "http://relay:"+secretURLPass+"@", 1) + "/hook?token=" + secretURLQuery
	}
	cfg := e.cfg
	cfg.Admin.Token = secretAdminToken
	app := &cfg.Apps[0]
	app.API.BaseURL = strings.Replace(e.api.URL, "http://", "http://apiuser:"+secretURLPass+"@", 1)
	app.Consumption.ProviderURL = strings.Replace(provider.URL, "http://", "http://prov:"+secretProvPass+"@", 1) + "/answer?key=" + secretProvider
	secretTarget := func(name, url string) config.Target {
		return target(name, withSecrets(url), func(tg *config.Target) {
			tg.Headers = map[string]string{"Authorization": "Bearer " + secretHeader}
			tg.Secret = secretWebhook
			tg.VerifiedOnly = false
		})
	}
	cfg.Targets = []config.Target{secretTarget("echo", echo.URL), secretTarget("refused", "http://"+closedURL(t))}

	var logs logBuffer
	log := zerolog.New(&logs).Level(zerolog.TraceLevel).With().Timestamp().Logger()
	h := startRelayTweaked(t, cfg, log, Options{Now: e.clock.now}, nil)

	// Ingest: genuine, a consumption request, a refund, a forgery, junk.
	var bodies [][]byte
	post := func(b []byte, want int) {
		t.Helper()
		if got := h.post(t, "myapp", b); got != want {
			t.Fatalf("status %d, want %d", got, want)
		}
		bodies = append(bodies, b)
	}
	post(body(t, e.ca, appletest.Notification{Type: "DID_RENEW", UUID: "s-1"}), 200)
	post(e.request(t, "s-2", "UNINTENDED_PURCHASE"), 200)
	post(body(t, newCA(t), appletest.Notification{Type: "REFUND", UUID: "s-3"}), 200)
	post([]byte(`{"signedPayload":"`+strings.Repeat("x", 300)+`"}`), 200)
	post([]byte(`{"signedPayload":`+strings.Repeat("y", 300)), 400)
	for seq := uint64(1); seq <= 4; seq++ {
		h.waitProcessed(t, seq)
	}
	// The consumption answer goes out (the provider's 500 makes it use the policy).
	waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
	// Both targets fail several times, every failure logged; the clock moves
	// so that retries fall due.
	waitFor(t, "failed attempts", func() bool {
		e.clock.add(100 * time.Millisecond)
		h.r.forward.Wake()
		ds, _, _ := h.r.db.Deliveries(store.DeliveryFilter{}, 0, 100)
		n := 0
		for _, d := range ds {
			if d.Attempts >= 2 {
				n++
			}
		}
		return n == 6
	})
	// Admin calls: wrong tokens, then right ones that return bodies and answers.
	for _, tok := range []string{"", "wrong-" + secretAdminToken, secretAdminToken[:10]} {
		for _, path := range []string{"/api/v1/stats", "/metrics", "/api/v1/notifications/1/body", "/api/v1/deliveries"} {
			if status, _ := h.call(t, "GET", path, tok, nil); status != http.StatusUnauthorized {
				t.Errorf("%s with token %q: %d", path, tok, status)
			}
		}
	}
	for _, path := range []string{"/api/v1/notifications/1/body", "/api/v1/notifications/2", "/api/v1/deliveries", "/api/v1/deliveries/1",
		"/api/v1/consumption", "/api/v1/apps", "/api/v1/stats", "/"} {
		if status, _ := h.call(t, "GET", path, secretAdminToken, nil); status != http.StatusOK {
			t.Errorf("%s: %d", path, status)
		}
	}
	h.call(t, "POST", "/api/v1/replay", secretAdminToken, map[string]any{"ids": []uint64{1}})
	stopAndCheckFile(t, h)

	// check --online with the right key, then with a key Apple does not know.
	statuses, err := Check(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	wrong := *cfg
	wrong.Apps = append([]config.App(nil), cfg.Apps...)
	api := *wrong.Apps[0].API
	api.PrivateKey = newKeyPEM(t)
	wrong.Apps[0].API = &api
	wrongStatuses, err := Check(context.Background(), &wrong, true)
	if err != nil {
		t.Fatal(err)
	}
	unreachable := *cfg
	unreachable.Apps = append([]config.App(nil), cfg.Apps...)
	api2 := *unreachable.Apps[0].API
	api2.BaseURL = "http://apiuser:" + secretURLPass + "@" + closedURL(t)
	unreachable.Apps[0].API = &api2
	unreachableStatuses, err := Check(context.Background(), &unreachable, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(unreachableStatuses), "cannot reach") {
		t.Errorf("an unreachable base_url is not diagnosed: %v", unreachableStatuses)
	}
	checkOut := fmt.Sprint(statuses, wrongStatuses, unreachableStatuses)
	if !strings.Contains(fmt.Sprint(wrongStatuses), "401") && !strings.Contains(strings.ToLower(fmt.Sprint(wrongStatuses)), "key") {
		t.Errorf("a wrong key is not diagnosed: %v", wrongStatuses)
	}

	forbidden := []string{secretAdminToken, secretHeader, secretURLPass, secretURLQuery, secretProvider, secretProvPass,
		secretSigningKey, secretWebhook, strings.TrimPrefix(secretWebhook, "whsec_")}
	forbidden = append(forbidden, pemLines(app.API.PrivateKey)...)
	forbidden = append(forbidden, pemLines(api.PrivateKey)...)
	tokensMu.Lock()
	for _, tok := range tokens {
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			forbidden = append(forbidden, parts[2]) // a token's signature
		}
	}
	nTokens := len(tokens)
	tokensMu.Unlock()
	for _, b := range bodies {
		// Any 64-byte stretch of a body: logs may say what came in, not repeat it.
		for i := 0; i+64 <= len(b); i += 64 {
			if chunk := string(b[i : i+64]); strings.Trim(chunk, "xy") != "" {
				forbidden = append(forbidden, chunk)
			}
		}
	}
	out := logs.String()
	if found := secretsIn(out, forbidden); len(found) > 0 {
		t.Errorf("logs hold secrets or bodies: %q", found)
		for _, line := range strings.Split(out, "\n") {
			if len(secretsIn(line, found)) > 0 {
				t.Logf("  %s", truncate(line, 400))
			}
		}
	}
	if found := secretsIn(checkOut, forbidden); len(found) > 0 {
		t.Errorf("check statuses hold secrets: %q in %v", found, checkOut)
	}
	for _, want := range []string{"delivery attempt failed", "consumption", "notification processed"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs never say %q: the run did not exercise what it should", want)
		}
	}
	t.Logf("%d log lines at trace level, %d App Store Server API tokens, %d forbidden strings: none found",
		strings.Count(out, "\n"), nTokens, len(forbidden))
}

// newKeyPEM is a fresh P-256 key as a .p8 file holds it.
func newKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
