package apple_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

// apiNow is the clock of the API tests: inside the test CA's validity, so that data the fake
// signs "now" verifies.
var apiNow = t0.AddDate(0, 6, 0)

// apiEnv is a fake App Store Server API and a client for it whose waits are recorded, not
// slept.
type apiEnv struct {
	ca     *appletest.CA
	fake   *appletest.FakeAPI
	srv    *httptest.Server
	client *apple.Client

	mu     sync.Mutex
	sleeps []time.Duration
}

// newAPIEnv starts a fake and a client with a verifier trusting the fake's CA and rate
// limiting off; mod adjusts the client's options.
func newAPIEnv(t *testing.T, mod func(*apple.ClientOptions)) *apiEnv {
	t.Helper()
	e := &apiEnv{ca: newCA(t)}
	var err error
	if e.fake, err = appletest.NewFakeAPI(e.ca); err != nil {
		t.Fatal(err)
	}
	e.fake.Now = fixedClock(apiNow)
	e.srv = httptest.NewServer(e.fake)
	t.Cleanup(e.srv.Close)
	opts := e.fake.ClientOptions(e.srv.URL)
	opts.Verifier = verifierFor(e.ca)
	opts.RateLimit = -1
	if mod != nil {
		mod(&opts)
	}
	e.client = e.newClient(t, opts)
	return e
}

func (e *apiEnv) newClient(t *testing.T, opts apple.ClientOptions) *apple.Client {
	t.Helper()
	c, err := apple.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	apple.SetClientSleep(c, func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.sleeps = append(e.sleeps, d)
		e.mu.Unlock()
		return ctx.Err()
	})
	return c
}

func (e *apiEnv) recordedSleeps() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.sleeps)
}

func (e *apiEnv) lastRequest(t *testing.T) appletest.Request {
	t.Helper()
	reqs := e.fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached the fake")
	}
	return reqs[len(reqs)-1]
}

func ptr[T any](v T) *T { return &v }

func TestClientEndpoints(t *testing.T) {
	e := newAPIEnv(t, nil)
	yes, no := true, false
	e.fake.Transactions = []apple.Transaction{
		{TransactionID: "1001", OriginalTransactionID: "1000", ProductID: "coins"},
		{TransactionID: "1002", OriginalTransactionID: "1000", ProductID: "coins", RevocationDate: apple.TimestampOf(apiNow)},
	}
	e.fake.Orders = map[string][]string{"MQ5ZVDSC2K": {"1001", "1002"}}
	e.fake.Subscriptions = append(e.fake.Subscriptions, appletest.Subscription{
		GroupID: "21000000", Status: apple.SubscriptionStatusActive,
		Transaction: apple.Transaction{TransactionID: "2001", OriginalTransactionID: "2000"},
		RenewalInfo: apple.RenewalInfo{OriginalTransactionID: "2000", AutoRenewProductID: "monthly"},
	})
	ctx := context.Background()

	tests := []struct {
		name   string
		call   func(t *testing.T) // calls the client and checks what it returns
		method string
		path   string
		query  string // encoded, sorted by key
		body   string // exact JSON; "" for none
	}{
		{
			name: "get transaction info",
			call: func(t *testing.T) {
				got, err := e.client.GetTransactionInfo(ctx, "1001")
				if err != nil || got.SignedTransactionInfo == "" || got.Transaction == nil || got.Transaction.TransactionID != "1001" ||
					got.Transaction.BundleID != "com.example.app" {
					t.Fatalf("GetTransactionInfo = %+v, %v", got, err)
				}
			},
			method: "GET", path: "/inApps/v1/transactions/1001",
		},
		{
			name: "get transaction history with every filter",
			call: func(t *testing.T) {
				got, err := e.client.GetTransactionHistory(ctx, "1001", "rev-0", apple.TransactionHistoryRequest{
					StartDate: 1700000000000, EndDate: 1800000000000,
					ProductIDs:                   []string{"coins", "gems"},
					ProductTypes:                 []apple.HistoryProduct{apple.HistoryProductConsumable, apple.HistoryProductAutoRenewable},
					Sort:                         apple.HistorySortDescending,
					SubscriptionGroupIdentifiers: []string{"g1", "g2"},
					InAppOwnershipType:           apple.InAppOwnershipTypePurchased,
					Revoked:                      &no,
				})
				if err != nil || len(got.SignedTransactions) != 1 || got.Transactions[0].TransactionID != "1001" ||
					got.Environment != apple.EnvironmentSandbox || got.BundleID != "com.example.app" || got.HasMore {
					t.Fatalf("GetTransactionHistory = %+v, %v", got, err)
				}
			},
			method: "GET", path: "/inApps/v2/history/1001",
			query: "endDate=1800000000000&inAppOwnershipType=PURCHASED&productId=coins&productId=gems&productType=CONSUMABLE&productType=AUTO_RENEWABLE&revision=rev-0&revoked=false&sort=DESCENDING&startDate=1700000000000&subscriptionGroupIdentifier=g1&subscriptionGroupIdentifier=g2",
		},
		{
			name: "get transaction history revoked only",
			call: func(t *testing.T) {
				got, err := e.client.GetTransactionHistory(ctx, "1001", "", apple.TransactionHistoryRequest{Revoked: &yes})
				if err != nil || len(got.Transactions) != 1 || got.Transactions[0].TransactionID != "1002" {
					t.Fatalf("GetTransactionHistory = %+v, %v", got, err)
				}
			},
			method: "GET", path: "/inApps/v2/history/1001", query: "revoked=true",
		},
		{
			name: "get all subscription statuses",
			call: func(t *testing.T) {
				got, err := e.client.GetAllSubscriptionStatuses(ctx, "2001", apple.SubscriptionStatusActive, apple.SubscriptionStatusBillingGracePeriod)
				if err != nil || len(got.Data) != 1 || got.Data[0].SubscriptionGroupIdentifier != "21000000" {
					t.Fatalf("GetAllSubscriptionStatuses = %+v, %v", got, err)
				}
				lt := got.Data[0].LastTransactions[0]
				if lt.Status != apple.SubscriptionStatusActive || lt.OriginalTransactionID != "2000" || lt.Transaction.TransactionID != "2001" ||
					lt.RenewalInfo.AutoRenewProductID != "monthly" {
					t.Fatalf("last transaction %+v", lt)
				}
			},
			method: "GET", path: "/inApps/v1/subscriptions/2001", query: "status=1&status=4",
		},
		{
			name: "look up order id",
			call: func(t *testing.T) {
				got, err := e.client.LookUpOrderID(ctx, "MQ5ZVDSC2K")
				if err != nil || got.Status != apple.OrderLookupStatusValid || len(got.Transactions) != 2 {
					t.Fatalf("LookUpOrderID = %+v, %v", got, err)
				}
			},
			method: "GET", path: "/inApps/v1/lookup/MQ5ZVDSC2K",
		},
		{
			name: "look up unknown order id",
			call: func(t *testing.T) {
				got, err := e.client.LookUpOrderID(ctx, "NOPE")
				if err != nil || got.Status != apple.OrderLookupStatusInvalid || len(got.SignedTransactions) != 0 {
					t.Fatalf("LookUpOrderID = %+v, %v", got, err)
				}
			},
			method: "GET", path: "/inApps/v1/lookup/NOPE",
		},
		{
			name: "get refund history",
			call: func(t *testing.T) {
				got, err := e.client.GetRefundHistory(ctx, "1001", "")
				if err != nil || len(got.Transactions) != 1 || got.Transactions[0].TransactionID != "1002" || got.Revision != "rev-1" || got.HasMore {
					t.Fatalf("GetRefundHistory = %+v, %v", got, err)
				}
			},
			method: "GET", path: "/inApps/v2/refund/lookup/1001",
		},
		{
			name: "send consumption information",
			call: func(t *testing.T) {
				err := e.client.SendConsumptionInformation(ctx, "1001", apple.ConsumptionRequest{
					CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered,
					ConsumptionPercentage: ptr[int32](25000), RefundPreference: apple.RefundPreferenceGrantProrated,
				})
				if err != nil {
					t.Fatal(err)
				}
				if r := e.lastRequest(t); r.Status != http.StatusAccepted || r.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("answered %d, Content-Type %q", r.Status, r.Header.Get("Content-Type"))
				}
			},
			method: "PUT", path: "/inApps/v2/transactions/consumption/1001",
			body: `{"customerConsented":true,"sampleContentProvided":false,"deliveryStatus":"DELIVERED","consumptionPercentage":25000,"refundPreference":"GRANT_PRORATED"}`,
		},
		{
			name: "send consumption information, optional fields left out",
			call: func(t *testing.T) {
				err := e.client.SendConsumptionInformation(ctx, "1001", apple.ConsumptionRequest{
					CustomerConsented: true, SampleContentProvided: true, DeliveryStatus: apple.DeliveryStatusUndeliveredServerOutage,
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			method: "PUT", path: "/inApps/v2/transactions/consumption/1001",
			body: `{"customerConsented":true,"sampleContentProvided":true,"deliveryStatus":"UNDELIVERED_SERVER_OUTAGE"}`,
		},
		{
			name: "request a test notification and get its status",
			call: func(t *testing.T) {
				tok, err := e.client.RequestTestNotification(ctx)
				if err != nil || tok.TestNotificationToken == "" {
					t.Fatalf("RequestTestNotification = %+v, %v", tok, err)
				}
				if r := e.lastRequest(t); r.Method != "POST" || r.Path != "/inApps/v1/notifications/test" || len(r.Body) != 0 {
					t.Fatalf("request %s %s %q", r.Method, r.Path, r.Body)
				}
				st, err := e.client.GetTestNotificationStatus(ctx, tok.TestNotificationToken)
				if err != nil || st.Notification == nil || st.Notification.NotificationType != apple.NotificationTypeTest ||
					len(st.SendAttempts) != 1 || st.SendAttempts[0].SendAttemptResult != apple.SendAttemptResultSuccess ||
					st.SendAttempts[0].AttemptDate != apple.TimestampOf(apiNow) {
					t.Fatalf("GetTestNotificationStatus = %+v, %v", st, err)
				}
				if r := e.lastRequest(t); r.Path != "/inApps/v1/notifications/test/"+tok.TestNotificationToken {
					t.Fatalf("path %s", r.Path)
				}
			},
			method: "GET",
		},
		{
			name: "get notification history",
			call: func(t *testing.T) {
				got, err := e.client.GetNotificationHistory(ctx, "", apple.NotificationHistoryRequest{
					StartDate: 1700000000000, EndDate: 1800000000000, NotificationType: apple.NotificationTypeRefund,
					NotificationSubtype: apple.SubtypeSummary, OnlyFailures: true,
				})
				if err != nil || got.HasMore || len(got.NotificationHistory) != 0 {
					t.Fatalf("GetNotificationHistory = %+v, %v", got, err)
				}
			},
			method: "POST", path: "/inApps/v1/notifications/history",
			body: `{"startDate":1700000000000,"endDate":1800000000000,"notificationType":"REFUND","notificationSubtype":"SUMMARY","onlyFailures":true}`,
		},
		{
			name: "get notification history, next page",
			call: func(t *testing.T) {
				_, err := e.client.GetNotificationHistory(ctx, "page-0", apple.NotificationHistoryRequest{
					StartDate: 1700000000000, EndDate: 1800000000000, TransactionID: "1001",
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			method: "POST", path: "/inApps/v1/notifications/history", query: "paginationToken=page-0",
			body: `{"startDate":1700000000000,"endDate":1800000000000,"transactionId":"1001"}`,
		},
		{
			name: "identifiers are path-escaped",
			call: func(t *testing.T) {
				_, err := e.client.LookUpOrderID(ctx, "a/b c")
				if err != nil {
					t.Fatal(err)
				}
				if r := e.lastRequest(t); r.Path != "/inApps/v1/lookup/a%2Fb%20c" {
					t.Fatalf("path %q", r.Path)
				}
			},
			method: "GET",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.fake.Reset()
			tt.call(t)
			r := e.lastRequest(t)
			if r.AuthError != "" {
				t.Fatalf("fake rejected the token: %s", r.AuthError)
			}
			if r.Method != tt.method || (tt.path != "" && r.Path != tt.path) {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			if got := r.Query.Encode(); got != tt.query && tt.path != "" {
				t.Errorf("query %s, want %s", got, tt.query)
			}
			if string(r.Body) != tt.body && tt.path != "" {
				t.Errorf("body %s, want %s", r.Body, tt.body)
			}
			if r.Header.Get("Accept") != "application/json" || r.Header.Get("User-Agent") != apple.DefaultUserAgent {
				t.Errorf("headers %v", r.Header)
			}
		})
	}
}

func TestClientTokenClaims(t *testing.T) {
	e := newAPIEnv(t, func(o *apple.ClientOptions) { o.UserAgent = "asnrelay/1.2.3" })
	e.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	for range 2 {
		if _, err := e.client.GetTransactionInfo(context.Background(), "1"); err != nil {
			t.Fatal(err)
		}
	}
	reqs := e.fake.Requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Authorization") == reqs[1].Header.Get("Authorization") {
		t.Fatalf("want a fresh token per request, got %d requests", len(reqs))
	}
	if ua := reqs[0].Header.Get("User-Agent"); ua != "asnrelay/1.2.3" {
		t.Errorf("User-Agent %q", ua)
	}

	raw := strings.TrimPrefix(reqs[0].Header.Get("Authorization"), "Bearer ")
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &e.fake.Key.PublicKey, nil })
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != "FAKEKEY123" || tok.Header["typ"] != "JWT" || tok.Header["alg"] != "ES256" || len(tok.Header) != 3 {
		t.Errorf("header %v", tok.Header)
	}
	want := map[string]any{
		"iss": e.fake.IssuerID,
		"iat": float64(apiNow.Unix()),
		"exp": float64(apiNow.Add(5 * time.Minute).Unix()),
		"aud": "appstoreconnect-v1", // a string, as Apple's libraries send it
		"bid": "com.example.app",
	}
	if len(claims) != len(want) {
		t.Errorf("claims %v, want %v", claims, want)
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
		}
	}

	direct, err := e.client.Token()
	if err != nil || strings.Count(direct, ".") != 2 {
		t.Errorf("Token = %q, %v", direct, err)
	}
}

func TestClientPaging(t *testing.T) {
	e := newAPIEnv(t, nil)
	e.fake.PageSize = 20
	for i := range 45 {
		tx := apple.Transaction{TransactionID: strconv.Itoa(5000 + i), OriginalTransactionID: "5000"}
		if i%2 == 1 {
			tx.RevocationDate = apple.TimestampOf(apiNow)
		}
		e.fake.Transactions = append(e.fake.Transactions, tx)
	}
	ctx := context.Background()

	t.Run("transaction history", func(t *testing.T) {
		e.fake.Reset()
		var ids []string
		for page, err := range e.client.TransactionHistoryPages(ctx, "5000", apple.TransactionHistoryRequest{ProductIDs: nil}) {
			if err != nil {
				t.Fatal(err)
			}
			for _, tx := range page.Transactions {
				ids = append(ids, tx.TransactionID)
			}
		}
		if len(ids) != 45 || ids[0] != "5000" || ids[44] != "5044" {
			t.Fatalf("got %d transactions: %v", len(ids), ids)
		}
		var revisions []string
		for _, r := range e.fake.Requests() {
			revisions = append(revisions, r.Query.Get("revision"))
		}
		if !slices.Equal(revisions, []string{"", "rev-20", "rev-40"}) {
			t.Errorf("revisions %q", revisions)
		}
	})

	t.Run("refund history", func(t *testing.T) {
		e.fake.Reset()
		n := 0
		for page, err := range e.client.RefundHistoryPages(ctx, "5000") {
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.SignedTransactions)
		}
		if n != 22 || len(e.fake.Requests()) != 2 {
			t.Fatalf("%d refunds in %d requests", n, len(e.fake.Requests()))
		}
	})

	t.Run("stop early", func(t *testing.T) {
		e.fake.Reset()
		for range e.client.TransactionHistoryPages(ctx, "5000", apple.TransactionHistoryRequest{}) {
			break
		}
		if len(e.fake.Requests()) != 1 {
			t.Fatalf("%d requests after breaking out of the first page", len(e.fake.Requests()))
		}
	})

	t.Run("error ends the walk", func(t *testing.T) {
		e.fake.Reset()
		e.fake.Fail(appletest.Failure{Status: 400, ErrorCode: 4000005, Times: 1, Path: "/inApps/v2/history/"})
		var errs []error
		for page, err := range e.client.TransactionHistoryPages(ctx, "5000", apple.TransactionHistoryRequest{}) {
			if page != nil {
				t.Fatal("page with an error")
			}
			errs = append(errs, err)
		}
		var ae *apple.APIError
		if len(errs) != 1 || !errors.As(errs[0], &ae) || ae.Code != 4000005 {
			t.Fatalf("errors %v", errs)
		}
	})
}

func TestNotificationHistoryPages(t *testing.T) {
	e := newAPIEnv(t, nil)
	var want []string
	for i := range 45 {
		s := signNotification(t, e.ca, appletest.Notification{Type: "DID_RENEW", SignedDate: apiNow.Add(time.Duration(i) * time.Minute)})
		want = append(want, s)
	}
	tooOld := signNotification(t, e.ca, appletest.Notification{SignedDate: apiNow.AddDate(0, 0, -200)})
	e.fake.NotificationHistory = append([]string{tooOld}, want...)

	req := apple.NotificationHistoryRequest{StartDate: apple.TimestampOf(apiNow.AddDate(0, 0, -180)), EndDate: apple.TimestampOf(apiNow.Add(time.Hour))}
	var got []string
	for page, err := range e.client.NotificationHistoryPages(context.Background(), req) {
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.NotificationHistory {
			got = append(got, item.SignedPayload)
			if len(item.SendAttempts) != 1 {
				t.Errorf("send attempts %+v", item.SendAttempts)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d payloads, want %d", len(got), len(want))
	}
	reqs := e.fake.Requests()
	var tokens []string
	for _, r := range reqs {
		tokens = append(tokens, r.Query.Get("paginationToken"))
		if string(r.Body) != string(reqs[0].Body) {
			t.Errorf("body changed between pages: %s", r.Body)
		}
	}
	if !slices.Equal(tokens, []string{"", "page-20", "page-40"}) {
		t.Errorf("pagination tokens %q", tokens)
	}

	// A page claiming more without a token must not loop forever.
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"notificationHistory":[],"hasMore":true}`))
	}))
	defer loop.Close()
	opts := e.fake.ClientOptions(loop.URL)
	opts.RateLimit = -1
	c := e.newClient(t, opts)
	var errs []error
	for _, err := range c.NotificationHistoryPages(context.Background(), req) {
		errs = append(errs, err)
	}
	if len(errs) != 2 || errs[0] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "paginationToken") {
		t.Fatalf("errors %v", errs)
	}
}

func TestClientVerifiesAnswers(t *testing.T) {
	other := newCA(t)
	e := newAPIEnv(t, func(o *apple.ClientOptions) { o.Verifier = verifierFor(other) })
	e.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	_, err := e.client.GetTransactionInfo(context.Background(), "1")
	if apple.ReasonOf(err) != apple.ReasonUntrustedRoot || apple.IsRetryable(err) || !strings.Contains(err.Error(), "signedTransactionInfo") {
		t.Fatalf("GetTransactionInfo error %v, want untrusted_root naming the field", err)
	}
	if _, err := e.client.GetTransactionHistory(context.Background(), "1", "", apple.TransactionHistoryRequest{}); apple.ReasonOf(err) != apple.ReasonUntrustedRoot {
		t.Fatalf("GetTransactionHistory error %v", err)
	}

	// Without a verifier the signed data comes back as is.
	e2 := newAPIEnv(t, func(o *apple.ClientOptions) { o.Verifier = nil })
	e2.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	got, err := e2.client.GetTransactionInfo(context.Background(), "1")
	if err != nil || got.SignedTransactionInfo == "" || got.Transaction != nil {
		t.Fatalf("GetTransactionInfo = %+v, %v", got, err)
	}
}

func TestGetTransactionInfoAnyEnvironment(t *testing.T) {
	prod := newAPIEnv(t, nil)
	prod.fake.Update(func(f *appletest.FakeAPI) { f.Environment = apple.EnvironmentProduction })
	prodOpts := prod.fake.ClientOptions(prod.srv.URL)
	prodOpts.RateLimit = -1
	prodOpts.Verifier = verifierFor(prod.ca)
	prodClient := prod.newClient(t, prodOpts)

	sandbox := newAPIEnv(t, nil)
	sandbox.fake.Update(func(f *appletest.FakeAPI) {
		f.Key, f.KeyID, f.IssuerID = prod.fake.Key, prod.fake.KeyID, prod.fake.IssuerID
	})
	sbOpts := prodOpts
	sbOpts.Environment, sbOpts.BaseURL, sbOpts.Verifier = apple.EnvironmentSandbox, sandbox.srv.URL, verifierFor(sandbox.ca)
	sbClient := sandbox.newClient(t, sbOpts)

	prod.fake.Transactions = []apple.Transaction{{TransactionID: "p1"}}
	sandbox.fake.Transactions = []apple.Transaction{{TransactionID: "s1"}}
	ctx := context.Background()

	got, env, err := apple.GetTransactionInfoAnyEnvironment(ctx, prodClient, sbClient, "p1")
	if err != nil || env != apple.EnvironmentProduction || got.Transaction.TransactionID != "p1" || len(sandbox.fake.Requests()) != 0 {
		t.Fatalf("production transaction: %+v, %s, %v", got, env, err)
	}
	got, env, err = apple.GetTransactionInfoAnyEnvironment(ctx, prodClient, sbClient, "s1")
	if err != nil || env != apple.EnvironmentSandbox || got.Transaction.TransactionID != "s1" || got.Transaction.Environment != apple.EnvironmentSandbox {
		t.Fatalf("sandbox transaction: %+v, %s, %v", got, env, err)
	}
	_, _, err = apple.GetTransactionInfoAnyEnvironment(ctx, prodClient, sbClient, "none")
	if !errors.Is(err, apple.ErrNotFound) || !strings.Contains(err.Error(), "4040010") {
		t.Fatalf("unknown transaction: %v", err)
	}

	// Only "transaction id not found" falls back; a 401 in Production does not.
	sandbox.fake.Reset()
	prod.fake.FailNext(401, 0, 1)
	if _, _, err = apple.GetTransactionInfoAnyEnvironment(ctx, prodClient, sbClient, "s1"); !errors.Is(err, apple.ErrUnauthorized) || len(sandbox.fake.Requests()) != 0 {
		t.Fatalf("401: %v, %d sandbox requests", err, len(sandbox.fake.Requests()))
	}
}

func TestClientOnAttempt(t *testing.T) {
	var mu sync.Mutex
	var attempts []apple.APIAttempt
	e := newAPIEnv(t, func(o *apple.ClientOptions) {
		o.OnAttempt = func(a apple.APIAttempt) { mu.Lock(); attempts = append(attempts, a); mu.Unlock() }
	})
	e.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	e.fake.FailNext(503, 0, 1)
	if _, err := e.client.GetTransactionInfo(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 2 || attempts[0].Status != 503 || attempts[0].Err == nil || attempts[0].Attempt != 1 ||
		attempts[1].Status != 200 || attempts[1].Err != nil || attempts[1].Attempt != 2 || attempts[1].Endpoint != apple.EndpointGetTransactionInfo {
		t.Fatalf("attempts %+v", attempts)
	}
}

func TestNewClient(t *testing.T) {
	key := newAPIKey(t)
	good := apple.ClientOptions{IssuerID: "i", KeyID: "k", BundleID: "b", Key: key, Environment: apple.EnvironmentProduction}
	c, err := apple.NewClient(good)
	if err != nil || c.BaseURL() != "https://api.storekit.apple.com" || c.Environment() != apple.EnvironmentProduction {
		t.Fatalf("production client: %v, %v", c, err)
	}
	sb := good
	sb.Environment = apple.EnvironmentSandbox
	if c, err := apple.NewClient(sb); err != nil || c.BaseURL() != "https://api.storekit-sandbox.apple.com" {
		t.Fatalf("sandbox client: %v", err)
	}
	override := good
	override.BaseURL = "http://127.0.0.1:9/prefix/"
	if c, err := apple.NewClient(override); err != nil || c.BaseURL() != "http://127.0.0.1:9/prefix" {
		t.Fatalf("override: %v", err)
	}

	tests := map[string]func(*apple.ClientOptions){
		"no issuer":      func(o *apple.ClientOptions) { o.IssuerID = " " },
		"no key id":      func(o *apple.ClientOptions) { o.KeyID = "" },
		"no bundle":      func(o *apple.ClientOptions) { o.BundleID = "" },
		"no key":         func(o *apple.ClientOptions) { o.Key = nil },
		"xcode":          func(o *apple.ClientOptions) { o.Environment = apple.EnvironmentXcode },
		"no environment": func(o *apple.ClientOptions) { o.Environment = "" },
		"bad base url":   func(o *apple.ClientOptions) { o.BaseURL = "ftp://x" },
		"relative url":   func(o *apple.ClientOptions) { o.BaseURL = "/inApps" },
	}
	for name, mod := range tests {
		opts := good
		mod(&opts)
		if _, err := apple.NewClient(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
