package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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

func newTools(t testing.TB, ca *appletest.CA, fake *appletest.FakeAPI, url string) *AppleTools {
	t.Helper()
	cfg := testConfig(t, ca)
	withAPI(t, cfg, fake, url)
	tools, err := NewAppleTools(cfg, AppleToolsOptions{RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	return tools
}

func TestLookups(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	revoked := apple.TimestampOf(time.Now().Add(-time.Hour))
	fake.Update(func(f *appletest.FakeAPI) {
		f.Transactions = []apple.Transaction{
			{TransactionID: "1000", OriginalTransactionID: "1000", ProductID: "coins"},
			{TransactionID: "1001", OriginalTransactionID: "1000", ProductID: "coins", RevocationDate: revoked},
		}
		f.Orders = map[string][]string{"MQ1234": {"1000"}}
		f.Subscriptions = []appletest.Subscription{{GroupID: "g1", Status: 1,
			Transaction: apple.Transaction{TransactionID: "1000", OriginalTransactionID: "1000", ProductID: "monthly"},
			RenewalInfo: apple.RenewalInfo{OriginalTransactionID: "1000", AutoRenewProductID: "monthly"}}}
	})
	tools := newTools(t, ca, fake, url)
	ctx := context.Background()

	for _, tc := range []struct {
		kind, id string
		want     []string // in the printed JSON
	}{
		{LookupTransaction, "1000", []string{`"transactionId": "1000"`, `"productId": "coins"`}},
		{LookupHistory, "1000", []string{`"transactions": [`, `"transactionId": "1001"`, `"bundleId": "com.example.app"`}},
		{LookupSubscriptions, "1000", []string{`"subscriptionGroupIdentifier": "g1"`, `"autoRenewProductId": "monthly"`, `"productId": "monthly"`}},
		{LookupOrder, "MQ1234", []string{`"status": 0`, `"transactionId": "1000"`}},
		{LookupRefunds, "1000", []string{`"transactionId": "1001"`, `"revocationDate"`}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			res, err := tools.Lookup(ctx, LookupRequest{Kind: tc.kind, App: "myapp", Environment: "Sandbox", ID: tc.id})
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(res.JSON) || res.Environment != "Sandbox" {
				t.Fatalf("%s from %s", res.JSON, res.Environment)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(res.JSON), w) {
					t.Errorf("%s lacks %s", res.JSON, w)
				}
			}
		})
	}

	t.Run("transaction without environment falls back to Sandbox", func(t *testing.T) {
		fake.Fail(appletest.Failure{Status: http.StatusNotFound, ErrorCode: apple.ErrorCodeTransactionIDNotFound})
		res, err := tools.Lookup(ctx, LookupRequest{Kind: LookupTransaction, ID: "1000"}) // the only app with a key
		if err != nil || res.Environment != "Sandbox" || !strings.Contains(string(res.JSON), `"1000"`) {
			t.Errorf("%s from %s, %v", res.JSON, res.Environment, err)
		}
	})
	t.Run("not found says so", func(t *testing.T) {
		_, err := tools.Lookup(ctx, LookupRequest{Kind: LookupHistory, App: "myapp", ID: "999"})
		if !errors.Is(err, apple.ErrNotFound) || !strings.Contains(err.Error(), "--environment Sandbox") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("signed data from an untrusted CA is refused", func(t *testing.T) {
		other := newLiveCA(t)
		fake.Update(func(f *appletest.FakeAPI) { f.CA = other })
		defer fake.Update(func(f *appletest.FakeAPI) { f.CA = ca })
		_, err := tools.Lookup(ctx, LookupRequest{Kind: LookupTransaction, App: "myapp", Environment: "Sandbox", ID: "1000"})
		var ve *apple.VerificationError
		if !errors.As(err, &ve) {
			t.Errorf("error %v, want a verification error", err)
		}
	})
	for name, req := range map[string]LookupRequest{
		"unknown app":     {Kind: LookupTransaction, App: "nope", ID: "1"},
		"bad environment": {Kind: LookupTransaction, App: "myapp", Environment: "Xcode", ID: "1"},
		"unknown kind":    {Kind: "receipts", App: "myapp", ID: "1"},
		"empty id":        {Kind: LookupTransaction, App: "myapp"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tools.Lookup(ctx, req)
			if !errors.Is(err, ErrNoSuchApp) && !errors.Is(err, ErrBadEnvironment) && !errors.Is(err, ErrBadLookup) {
				t.Errorf("error %v, want a usage error", err)
			}
		})
	}
}

func TestTestNotificationReachesTheRelay(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	cfg := testConfig(t, ca)
	withAPI(t, cfg, fake, url)
	h := startRelay(t, cfg)
	fake.Update(func(f *appletest.FakeAPI) { f.NotificationURL = h.url + "/asn/myapp" })
	tools := newTools(t, ca, fake, url)
	admin, err := NewAdminClient(h.admin, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	res, err := tools.TestNotification(context.Background(), TestNotificationOptions{
		App: "myapp", Admin: admin, PollInterval: 5 * time.Millisecond,
		Progress: func(msg string) { progress = append(progress, msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Environment != "Sandbox" || !res.Sent() || res.UUID == "" || res.Relay != RelayHolds {
		t.Errorf("result %+v, want sent and held", res)
	}
	if len(progress) == 0 || !strings.Contains(progress[0], res.Token) {
		t.Errorf("progress %q", progress)
	}
	if ok, err := h.r.db.HasUUID(res.UUID); !ok || err != nil {
		t.Errorf("relay does not hold %s verified: %v", res.UUID, err)
	}
}

func TestTestNotificationThatMissedTheRelay(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	elsewhere := newSink(t)
	fake.Update(func(f *appletest.FakeAPI) { f.NotificationURL = elsewhere.URL })
	tools := newTools(t, ca, fake, url)
	ctx := context.Background()

	h := startRelay(t, testConfig(t, ca))
	admin, _ := NewAdminClient(h.admin, "", nil)
	res, err := tools.TestNotification(ctx, TestNotificationOptions{App: "myapp", Environment: "Production", Admin: admin,
		PollInterval: 5 * time.Millisecond, PollTimeout: 200 * time.Millisecond})
	if err != nil || !res.Sent() || res.Relay != RelayMissing || !strings.Contains(res.RelayError, res.UUID) {
		t.Errorf("result %+v, %v; want sent but not held", res, err)
	}

	// A daemon whose admin API lacks the endpoint: the relay cannot be checked.
	old := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(old.Close)
	admin, _ = NewAdminClient(old.URL, "", nil)
	res, err = tools.TestNotification(ctx, TestNotificationOptions{App: "myapp", Admin: admin, PollInterval: 5 * time.Millisecond})
	if err != nil || res.Relay != RelayUnknown || res.RelayError == "" {
		t.Errorf("result %+v, %v; want could not check", res, err)
	}

	// Apple's attempt failed.
	fake.Update(func(f *appletest.FakeAPI) { f.NotificationURL = "http://127.0.0.1:1/asn/myapp" })
	res, err = tools.TestNotification(ctx, TestNotificationOptions{App: "myapp", PollInterval: 5 * time.Millisecond})
	if err != nil || res.Sent() || len(res.Attempts) != 1 || res.Attempts[0].SendAttemptResult != apple.SendAttemptResultNoResponse {
		t.Errorf("result %+v, %v; want one NO_RESPONSE attempt", res, err)
	}

	// Apple refuses the key.
	fake.FailNext(http.StatusUnauthorized, 0, 1)
	if _, err := tools.TestNotification(ctx, TestNotificationOptions{App: "myapp"}); !errors.Is(err, apple.ErrUnauthorized) {
		t.Errorf("error %v, want 401", err)
	}
}

func TestSignOffer(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	tools := newTools(t, ca, fake, url)
	tools.now = func() time.Time { return t0 }

	sig, err := tools.SignOffer(OfferRequest{App: "myapp", ProductID: "monthly", OfferID: "winback", AppAccountToken: "ABC"})
	if err != nil {
		t.Fatal(err)
	}
	if sig.KeyID != fake.KeyID || sig.Timestamp != t0.UnixMilli() || len(sig.Nonce) != 36 {
		t.Errorf("%+v", sig)
	}
	der, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(apple.PromotionalOfferPayload(testBundle, fake.KeyID, "monthly", "winback", "ABC", sig.Nonce, sig.Timestamp)))
	if !ecdsa.VerifyASN1(&fake.Key.PublicKey, digest[:], der) {
		t.Error("signature does not verify with the key")
	}

	sig, err = tools.SignOffer(OfferRequest{App: "myapp", ProductID: "monthly", OfferID: "winback", JWS: true, TransactionID: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(sig.Signature, claims, func(*jwt.Token) (any, error) { return &fake.Key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()); err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != apple.PromotionalOfferAudience || claims["productId"] != "monthly" || claims["offerIdentifier"] != "winback" ||
		claims["transactionId"] != "1000" || claims["bid"] != testBundle || claims["iss"] != fake.IssuerID {
		t.Errorf("claims %v", claims)
	}

	if _, err := tools.SignOffer(OfferRequest{App: "myapp", ProductID: "monthly"}); !errors.Is(err, ErrBadLookup) {
		t.Errorf("no offer: %v", err)
	}
}
