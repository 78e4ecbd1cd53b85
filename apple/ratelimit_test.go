package apple_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
)

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
