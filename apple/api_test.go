package apple_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
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

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	retryAt := func(d time.Duration) string { return strconv.FormatInt(apiNow.Add(d).UnixMilli(), 10) }
	tests := []struct {
		name      string
		failures  []appletest.Failure
		mod       func(*apple.ClientOptions)
		wantErr   func(t *testing.T, err error)
		requests  int
		sleeps    func(t *testing.T, sleeps []time.Duration)
		transient bool // IsRetryable(err)
	}{
		{
			name:     "404 transaction id not found is typed and final",
			failures: []appletest.Failure{{Status: 404, ErrorCode: 4040010, Message: "Transaction id not found."}},
			wantErr: func(t *testing.T, err error) {
				var ae *apple.APIError
				if !errors.Is(err, apple.ErrNotFound) || !errors.As(err, &ae) || ae.Code != apple.ErrorCodeTransactionIDNotFound ||
					ae.Status != 404 || ae.Endpoint != apple.EndpointGetTransactionInfo || ae.Message != "Transaction id not found." {
					t.Fatalf("error %#v", err)
				}
				if want := "apple api get_transaction_info: HTTP 404, errorCode 4040010: Transaction id not found."; err.Error() != want {
					t.Errorf("Error() = %q, want %q", err, want)
				}
			},
			requests: 1,
		},
		{
			name:     "429 with a millisecond Retry-After, then success",
			failures: []appletest.Failure{{Status: 429, ErrorCode: 4290000, RetryAfter: retryAt(2500 * time.Millisecond)}},
			requests: 2,
			sleeps: func(t *testing.T, s []time.Duration) {
				if !slices.Equal(s, []time.Duration{2500 * time.Millisecond}) {
					t.Fatalf("slept %v, want the 2.5s Retry-After asked for", s)
				}
			},
		},
		{
			name:     "429 asking for longer than MaxRetryWait is returned with RetryAfter",
			failures: []appletest.Failure{{Status: 429, ErrorCode: 4290000, RetryAfter: retryAt(time.Hour)}},
			wantErr: func(t *testing.T, err error) {
				var ae *apple.APIError
				if !errors.Is(err, apple.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter != time.Hour {
					t.Fatalf("error %v", err)
				}
				if !strings.Contains(err.Error(), "retry after 1h0m0s") {
					t.Errorf("Error() = %q", err)
				}
			},
			requests:  1,
			transient: true,
		},
		{
			name:     "500 then success",
			failures: []appletest.Failure{{Status: 500, ErrorCode: 5000000}},
			requests: 2,
			sleeps: func(t *testing.T, s []time.Duration) {
				if len(s) != 1 || s[0] < 250*time.Millisecond || s[0] > 750*time.Millisecond {
					t.Fatalf("slept %v, want one backoff of 500ms ± 50%%", s)
				}
			},
		},
		{
			name:     "retryable 404 codes are retried",
			failures: []appletest.Failure{{Status: 404, ErrorCode: 4040002}, {Status: 404, ErrorCode: 4040004}, {Status: 404, ErrorCode: 4040006}},
			requests: 4,
		},
		{
			name:     "a 5xx without a JSON body",
			failures: []appletest.Failure{{Status: 502}},
			requests: 2,
		},
		{
			name:     "retries exhausted",
			failures: []appletest.Failure{{Status: 503, ErrorCode: 5000001, Times: 10}},
			mod:      func(o *apple.ClientOptions) { o.MaxRetries = 2 },
			wantErr: func(t *testing.T, err error) {
				var ae *apple.APIError
				if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != 5000001 {
					t.Fatalf("error %v", err)
				}
			},
			requests: 3,
			sleeps: func(t *testing.T, s []time.Duration) {
				if len(s) != 2 || s[1] < 500*time.Millisecond || s[1] > 1500*time.Millisecond {
					t.Fatalf("slept %v, want 2 growing backoffs", s)
				}
			},
			transient: true,
		},
		{
			name:     "no retries when MaxRetries is negative",
			failures: []appletest.Failure{{Status: 500, ErrorCode: 5000000}},
			mod:      func(o *apple.ClientOptions) { o.MaxRetries = -1 },
			wantErr: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "HTTP 500") {
					t.Fatalf("error %v", err)
				}
			},
			requests:  1,
			transient: true,
		},
		{
			name:     "slow answer times out",
			failures: []appletest.Failure{{Status: 200, Delay: time.Minute}},
			mod:      func(o *apple.ClientOptions) { o.Timeout = 50 * time.Millisecond; o.MaxRetries = -1 },
			wantErr: func(t *testing.T, err error) {
				var ne *apple.NetworkError
				if !errors.As(err, &ne) || !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "127.0.0.1") {
					t.Fatalf("error %v, want a NetworkError wrapping the deadline, without the URL", err)
				}
			},
			requests:  1,
			transient: true,
		},
		{
			name:     "slow answer, then a fast one",
			failures: []appletest.Failure{{Status: 200, Delay: time.Minute}},
			mod:      func(o *apple.ClientOptions) { o.Timeout = 50 * time.Millisecond },
			requests: 2,
		},
		{
			name:     "400 is final",
			failures: []appletest.Failure{{Status: 400, ErrorCode: 4000006, Message: "Invalid transaction id."}},
			wantErr: func(t *testing.T, err error) {
				if errors.Is(err, apple.ErrNotFound) || errors.Is(err, apple.ErrUnauthorized) {
					t.Fatalf("error %v matches the wrong sentinel", err)
				}
			},
			requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAPIEnv(t, tt.mod)
			e.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
			for _, f := range tt.failures {
				e.fake.Fail(f)
			}
			got, err := e.client.GetTransactionInfo(ctx, "1")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("GetTransactionInfo: %v", err)
			case tt.wantErr == nil && got.Transaction.TransactionID != "1":
				t.Fatalf("GetTransactionInfo = %+v", got)
			case tt.wantErr != nil && err == nil:
				t.Fatal("GetTransactionInfo succeeded")
			case tt.wantErr != nil:
				tt.wantErr(t, err)
				if apple.IsRetryable(err) != tt.transient {
					t.Errorf("IsRetryable(%v) = %v", err, !tt.transient)
				}
			}
			if n := len(e.fake.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.sleeps != nil {
				tt.sleeps(t, e.recordedSleeps())
			}
		})
	}
}

func TestClientUnauthorized(t *testing.T) {
	e := newAPIEnv(t, func(o *apple.ClientOptions) { o.KeyID = "WRONGKEY00" })
	_, err := e.client.GetTransactionInfo(context.Background(), "1")
	if !errors.Is(err, apple.ErrUnauthorized) || apple.IsRetryable(err) {
		t.Fatalf("error %v, want ErrUnauthorized, not retryable", err)
	}
	if r := e.lastRequest(t); !strings.Contains(r.AuthError, "kid") || len(e.fake.Requests()) != 1 {
		t.Fatalf("fake saw %d requests, auth error %q", len(e.fake.Requests()), r.AuthError)
	}
	// The message lists what to check, in this order.
	msg := err.Error()
	last := -1
	for _, want := range []string{"HTTP 401", "Key ID", "Issuer ID", "In-App Purchase tab", "Users and Access > Integrations > In-App Purchase", ".p8", "revoked", "not an App Store Connect API key"} {
		i := strings.Index(msg, want)
		if i <= last {
			t.Fatalf("message %q lacks %q after position %d", msg, want, last)
		}
		last = i
	}
}

func TestClientRefusesBadRequests(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	tests := map[string]error{
		"empty transaction id": func() error { _, err := e.client.GetTransactionInfo(ctx, ""); return err }(),
		"empty history id": func() error {
			_, err := e.client.GetTransactionHistory(ctx, "", "", apple.TransactionHistoryRequest{})
			return err
		}(),
		"empty order id":       func() error { _, err := e.client.LookUpOrderID(ctx, ""); return err }(),
		"empty refund id":      func() error { _, err := e.client.GetRefundHistory(ctx, "", ""); return err }(),
		"empty statuses id":    func() error { _, err := e.client.GetAllSubscriptionStatuses(ctx, ""); return err }(),
		"empty test token":     func() error { _, err := e.client.GetTestNotificationStatus(ctx, ""); return err }(),
		"no consent":           e.client.SendConsumptionInformation(ctx, "1", apple.ConsumptionRequest{DeliveryStatus: apple.DeliveryStatusDelivered}),
		"empty consumption id": e.client.SendConsumptionInformation(ctx, "", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered}),
		"history without dates": func() error {
			_, err := e.client.GetNotificationHistory(ctx, "", apple.NotificationHistoryRequest{StartDate: 1})
			return err
		}(),
		"history with dates reversed": func() error {
			_, err := e.client.GetNotificationHistory(ctx, "", apple.NotificationHistoryRequest{StartDate: 2, EndDate: 1})
			return err
		}(),
	}
	for name, err := range tests {
		if !errors.Is(err, apple.ErrInvalidRequest) || apple.IsRetryable(err) {
			t.Errorf("%s: error %v, want ErrInvalidRequest", name, err)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestConsumptionRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  apple.ConsumptionRequest
		ok   bool
	}{
		{"minimal", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered}, true},
		{"full", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](100000), RefundPreference: apple.RefundPreferenceGrantProrated}, true},
		{"unknown values pass", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: "SOMETHING_NEW", RefundPreference: "MAYBE"}, true},
		{"prorated without a percentage (auto-renewable)", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, RefundPreference: apple.RefundPreferenceGrantProrated}, true},
		{"no consent", apple.ConsumptionRequest{DeliveryStatus: apple.DeliveryStatusDelivered}, false},
		{"no delivery status", apple.ConsumptionRequest{CustomerConsented: true}, false},
		{"percentage over 100%", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](100001)}, false},
		{"negative percentage", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](-1)}, false},
		{"prorated at 0%", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](0), RefundPreference: apple.RefundPreferenceGrantProrated}, false},
	}
	for _, tt := range tests {
		err := tt.req.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, apple.ErrInvalidRequest)) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
	b, _ := json.Marshal(apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](0)})
	if want := `{"customerConsented":true,"sampleContentProvided":false,"deliveryStatus":"DELIVERED","consumptionPercentage":0}`; string(b) != want {
		t.Errorf("JSON %s, want %s (a 0 percentage is sent when set)", b, want)
	}
}

func TestClientContextAndNetwork(t *testing.T) {
	e := newAPIEnv(t, nil)
	e.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.client.GetTransactionInfo(ctx, "1")
	if !errors.Is(err, context.Canceled) || apple.IsRetryable(err) {
		t.Fatalf("cancelled: error %v, want context.Canceled, not retryable", err)
	}

	// A server that is gone: a network error, retried, then returned as retryable.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	opts := e.fake.ClientOptions(gone.URL)
	opts.RateLimit = -1
	opts.MaxRetries = 1
	c := e.newClient(t, opts)
	_, err = c.GetTransactionInfo(context.Background(), "1")
	var ne *apple.NetworkError
	if !errors.As(err, &ne) || !apple.IsRetryable(err) || ne.Endpoint != apple.EndpointGetTransactionInfo {
		t.Fatalf("error %v, want a retryable NetworkError", err)
	}

	// A Retry-After beyond the caller's deadline: no pointless wait.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := len(e.recordedSleeps())
	e.fake.Fail(appletest.Failure{Status: 429, RetryAfter: "20", Times: 5})
	_, err = e.client.GetTransactionInfo(ctx, "1")
	if !errors.Is(err, apple.ErrRateLimited) || len(e.recordedSleeps()) != before {
		t.Fatalf("error %v after %d sleeps", err, len(e.recordedSleeps())-before)
	}
}

func TestClientResponseLimits(t *testing.T) {
	e := newAPIEnv(t, nil)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"signedTransactionInfo":"`))
		w.Write([]byte(strings.Repeat("a", apple.MaxResponseBytes)))
		w.Write([]byte(`"}`))
	}))
	defer big.Close()
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	defer notJSON.Close()
	for name, srv := range map[string]*httptest.Server{"oversize": big, "not JSON": notJSON} {
		opts := e.fake.ClientOptions(srv.URL)
		opts.RateLimit = -1
		c := e.newClient(t, opts)
		if _, err := c.GetTransactionInfo(context.Background(), "1"); err == nil || apple.IsRetryable(err) {
			t.Errorf("%s: error %v, want a final error", name, err)
		}
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

func TestRateLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := apple.NewRateLimiter(10, func() time.Time { return now })
	for i := range 10 {
		if d := l.Reserve(); d != 0 {
			t.Fatalf("request %d of the burst waits %v", i, d)
		}
	}
	if d := l.Reserve(); d != 100*time.Millisecond {
		t.Fatalf("11th waits %v, want 100ms", d)
	}
	if d := l.Reserve(); d != 200*time.Millisecond {
		t.Fatalf("12th waits %v, want 200ms", d)
	}
	now = now.Add(time.Second) // pays back the debt of 2 and refills 8
	for i := range 8 {
		if d := l.Reserve(); d != 0 {
			t.Fatalf("after a second, request %d waits %v", i, d)
		}
	}
	if d := l.Reserve(); d <= 0 {
		t.Fatal("the bucket refilled beyond its rate")
	}

	// A wait longer than the context allows gives the token back.
	slow := apple.NewRateLimiter(0.5, func() time.Time { return now })
	slow.Reserve()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := slow.Wait(ctx, func(context.Context, time.Duration) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want DeadlineExceeded", err)
	}
	if d := slow.Reserve(); d != 2*time.Second {
		t.Fatalf("after a refused wait the next request waits %v, want 2s", d)
	}

	if got := apple.DefaultRateLimit(apple.EndpointSendConsumptionInformation, apple.EnvironmentProduction); got != 50 {
		t.Errorf("production consumption limit %v", got)
	}
	if got := apple.DefaultRateLimit(apple.EndpointSendConsumptionInformation, apple.EnvironmentSandbox); got != 5 {
		t.Errorf("sandbox consumption limit %v", got)
	}
	if got := apple.DefaultRateLimit(apple.EndpointGetRefundHistory, apple.EnvironmentProduction); got != 10 {
		t.Errorf("refund history limit %v", got)
	}
}

func TestClientRateLimit(t *testing.T) {
	e := newAPIEnv(t, func(o *apple.ClientOptions) { o.RateLimit = 2 })
	e.fake.Transactions = []apple.Transaction{{TransactionID: "1"}}
	for range 3 {
		if _, err := e.client.GetTransactionInfo(context.Background(), "1"); err != nil {
			t.Fatal(err)
		}
	}
	s := e.recordedSleeps()
	if len(s) != 1 || s[0] <= 0 || s[0] > 500*time.Millisecond {
		t.Fatalf("waits %v, want the third request to wait about 500ms", s)
	}
	// Endpoints have buckets of their own.
	if _, err := e.client.LookUpOrderID(context.Background(), "x"); err != nil || len(e.recordedSleeps()) != 1 {
		t.Fatalf("another endpoint waited: %v, %v", e.recordedSleeps(), err)
	}

	// Sandbox's default for Request a Test Notification is 0.1/s: the second waits ~10s.
	e2 := newAPIEnv(t, func(o *apple.ClientOptions) { o.RateLimit = 0 })
	for range 2 {
		if _, err := e2.client.RequestTestNotification(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s := e2.recordedSleeps(); len(s) != 1 || s[0] < 9*time.Second || s[0] > 10*time.Second {
		t.Fatalf("waits %v, want about 10s", s)
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{&apple.VerificationError{Reason: apple.ReasonBadSignature}, false},
		{&apple.APIError{Status: 429}, true},
		{&apple.APIError{Status: 500}, true},
		{&apple.APIError{Status: 503, Code: 5000000}, true},
		{&apple.APIError{Status: 404, Code: 4040002}, true},
		{&apple.APIError{Status: 404, Code: 4040004}, true},
		{&apple.APIError{Status: 404, Code: 4040006}, true},
		{&apple.APIError{Status: 500, Code: 5000001}, true},
		{&apple.APIError{Status: 404, Code: 4040010}, false},
		{&apple.APIError{Status: 401}, false},
		{&apple.APIError{Status: 400, Code: 4000035}, false},
		{&apple.NetworkError{Err: errors.New("connection reset")}, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{&apple.NetworkError{Err: context.Canceled}, false},
		{errors.Join(errors.New("x"), &apple.APIError{Status: 502}), true},
		{&url.Error{Op: "Get", URL: "u", Err: &timeoutErr{}}, true},
	}
	for _, tt := range tests {
		if got := apple.IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{strconv.FormatInt(now.Add(1500*time.Millisecond).UnixMilli(), 10), 1500 * time.Millisecond, true}, // Apple's form
		{strconv.FormatInt(now.Add(-time.Minute).UnixMilli(), 10), 0, true},                                // already past
		{"120", 2 * time.Minute, true}, // delta-seconds
		{" 0 ", 0, true},
		{strconv.FormatInt(now.Add(time.Minute).Unix(), 10), time.Minute, true}, // UNIX seconds
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"999999999", 30 * 24 * time.Hour, true},           // capped
		{"9223372036854775807", 30 * 24 * time.Hour, true}, // far future ms
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := apple.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		in   string
		code int64
		msg  string
	}{
		{`{"errorCode":4040010,"errorMessage":"Transaction id not found."}`, 4040010, "Transaction id not found."},
		{`{"errorCode":"4290000"}`, 4290000, ""},
		{`{"errorCode":4.5,"errorMessage":7}`, 0, ""},
		{`{"errorCode":1e30}`, 0, ""},
		{`[]`, 0, ""},
		{``, 0, ""},
		{`<html>`, 0, ""},
		{`{"errorMessage":"` + strings.Repeat("é", 400) + `"}`, 0, strings.Repeat("é", 256) + "…"},
	}
	for _, tt := range tests {
		code, msg := apple.ParseErrorBody([]byte(tt.in))
		if code != tt.code || msg != tt.msg {
			t.Errorf("ParseErrorBody(%.40q) = %d, %.40q; want %d, %.40q", tt.in, code, msg, tt.code, tt.msg)
		}
	}
}
