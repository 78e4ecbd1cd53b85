package apple_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

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
