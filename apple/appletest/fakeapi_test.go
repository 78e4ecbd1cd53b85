package appletest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

// fakeNow lies inside the CA validity [from, to].
var fakeNow = from.Add(time.Hour)

func newFake(t *testing.T) (*appletest.FakeAPI, *httptest.Server) {
	t.Helper()
	ca, err := appletest.New(from, to)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := appletest.NewFakeAPI(ca)
	if err != nil {
		t.Fatal(err)
	}
	fake.Now = func() time.Time { return fakeNow }
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// token mints a bearer token; mod changes header and claims before signing.
func token(t *testing.T, fake *appletest.FakeAPI, key *ecdsa.PrivateKey, method jwt.SigningMethod, mod func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": fake.IssuerID, "iat": fakeNow.Unix(), "exp": fakeNow.Add(5 * time.Minute).Unix(),
		"aud": apple.APIAudience, "bid": fake.BundleID,
	}
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = fake.KeyID
	if mod != nil {
		mod(tok.Header, c)
	}
	var signKey any = key
	if method == jwt.SigningMethodHS256 {
		signKey = []byte("secret")
	}
	s, err := tok.SignedString(signKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFakeAPIChecksTokens(t *testing.T) {
	fake, srv := newFake(t)
	fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es := jwt.SigningMethodES256
	tests := []struct {
		name   string
		auth   string
		reason string // substring of Request.AuthError; "" means accepted
	}{
		{"good", "Bearer " + token(t, fake, fake.Key, es, nil), ""},
		{"no header", "", "no bearer token"},
		{"basic auth", "Basic Zm9vOmJhcg==", "no bearer token"},
		{"other key", "Bearer " + token(t, fake, otherKey, es, nil), "signature"},
		{"hs256", "Bearer " + token(t, fake, nil, jwt.SigningMethodHS256, nil), "signing method"},
		{"wrong kid", "Bearer " + token(t, fake, fake.Key, es, func(h map[string]any, _ jwt.MapClaims) { h["kid"] = "OTHER" }), "kid"},
		{"no typ", "Bearer " + token(t, fake, fake.Key, es, func(h map[string]any, _ jwt.MapClaims) { delete(h, "typ") }), "typ"},
		{"wrong issuer", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) { c["iss"] = "x" }), "iss"},
		{"audience as array", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) { c["aud"] = []string{apple.APIAudience} }), "aud"},
		{"wrong bundle", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) { c["bid"] = "com.other" }), "bid"},
		{"expired", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) {
			c["iat"], c["exp"] = fakeNow.Add(-time.Hour).Unix(), fakeNow.Add(-time.Minute).Unix()
		}), "expired"},
		{"over 60 minutes", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) {
			c["exp"] = fakeNow.Add(61 * time.Minute).Unix()
		}), "60 minutes"},
		{"iat in the future", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) {
			c["iat"], c["exp"] = fakeNow.Add(time.Hour).Unix(), fakeNow.Add(time.Hour+time.Minute).Unix()
		}), "future"},
		{"no iat", "Bearer " + token(t, fake, fake.Key, es, func(_ map[string]any, c jwt.MapClaims) { delete(c, "iat") }), "iat"},
		{"garbage", "Bearer abc.def.ghi", "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.Reset()
			req, _ := http.NewRequest("GET", srv.URL+"/inApps/v1/transactions/1", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := fake.Requests()[0]
			switch {
			case tt.reason == "" && (resp.StatusCode != 200 || r.AuthError != ""):
				t.Fatalf("status %d, auth error %q", resp.StatusCode, r.AuthError)
			case tt.reason != "" && (resp.StatusCode != 401 || !strings.Contains(r.AuthError, tt.reason)):
				t.Fatalf("status %d, auth error %q, want 401 for %q", resp.StatusCode, r.AuthError, tt.reason)
			}
		})
	}
}

func TestFakeAPIFailuresAndRecording(t *testing.T) {
	fake, srv := newFake(t)
	fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	fake.Fail(appletest.Failure{Status: 503, ErrorCode: 5000001, Path: "/inApps/v2/history/", Times: 2})
	fake.FailNext(429, 4290000, 1)
	opts := fake.ClientOptions(srv.URL)
	opts.MaxRetries, opts.RateLimit = -1, -1
	c, err := apple.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The first failure only matches history requests: this one gets the 429.
	_, err = c.GetTransactionInfo(ctx, "1")
	var ae *apple.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.Code != 4290000 || ae.Message != "fake failure" {
		t.Fatalf("first call: %v", err)
	}
	for range 2 {
		if _, err := c.GetTransactionHistory(ctx, "1", "", apple.TransactionHistoryRequest{}); !errors.As(err, &ae) || ae.Status != 503 {
			t.Fatalf("history: %v", err)
		}
	}
	if _, err := c.GetTransactionHistory(ctx, "1", "", apple.TransactionHistoryRequest{}); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	if err := c.SendConsumptionInformation(ctx, "1", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if err := c.SendConsumptionInformation(ctx, "404", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered}); !errors.Is(err, apple.ErrNotFound) {
		t.Fatalf("unknown transaction: %v", err)
	}

	reqs := fake.Requests()
	var got []string
	for _, r := range reqs {
		got = append(got, r.Method+" "+r.Path+" "+http.StatusText(r.Status))
	}
	want := []string{
		"GET /inApps/v1/transactions/1 Too Many Requests",
		"GET /inApps/v2/history/1 Service Unavailable",
		"GET /inApps/v2/history/1 Service Unavailable",
		"GET /inApps/v2/history/1 OK",
		"PUT /inApps/v2/transactions/consumption/1 Accepted",
		"PUT /inApps/v2/transactions/consumption/404 Not Found",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if string(reqs[4].Body) != `{"customerConsented":true,"sampleContentProvided":false,"deliveryStatus":"DELIVERED"}` || reqs[4].Claims["bid"] != fake.BundleID {
		t.Errorf("consumption request %s, claims %v", reqs[4].Body, reqs[4].Claims)
	}

	// Apple's 400 for a missing consent, sent raw past the client's validation.
	fake.Reset()
	req, _ := http.NewRequest("PUT", srv.URL+"/inApps/v2/transactions/consumption/1", strings.NewReader(`{"customerConsented":false,"deliveryStatus":"DELIVERED"}`))
	req.Header.Set("Authorization", "Bearer "+token(t, fake, fake.Key, jwt.SigningMethodES256, nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("no consent: status %d", resp.StatusCode)
	}
}

func TestFakeAPIDelayAndKeyPEM(t *testing.T) {
	fake, srv := newFake(t)
	fake.Update(func(f *appletest.FakeAPI) { f.Delay = time.Minute })
	key, err := apple.ParsePrivateKey(fake.KeyPEM())
	if err != nil || !key.Equal(fake.Key) {
		t.Fatalf("KeyPEM does not parse back: %v", err)
	}
	opts := fake.ClientOptions(srv.URL)
	opts.Key, opts.MaxRetries, opts.Timeout = key, -1, 20*time.Millisecond
	c, err := apple.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.RequestTestNotification(context.Background()); !errors.Is(err, context.DeadlineExceeded) || !apple.IsRetryable(err) {
		t.Fatalf("slow fake: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the timeout did not cut the slow answer short")
	}
}
