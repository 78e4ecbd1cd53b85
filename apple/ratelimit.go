package apple

import (
	"context"
	"sync"
	"time"
)

// Endpoint names, used in APIError.Endpoint, APIAttempt.Endpoint and as metric labels.
const (
	EndpointGetTransactionInfo         = "get_transaction_info"
	EndpointGetTransactionHistory      = "get_transaction_history"
	EndpointGetAllSubscriptionStatuses = "get_all_subscription_statuses"
	EndpointLookUpOrderID              = "look_up_order_id"
	EndpointGetRefundHistory           = "get_refund_history"
	EndpointSendConsumptionInformation = "send_consumption_information"
	EndpointRequestTestNotification    = "request_test_notification"
	EndpointGetTestNotificationStatus  = "get_test_notification_status"
	EndpointGetNotificationHistory     = "get_notification_history"
)

// productionRateLimits are Apple's published per-app limits in Production, in requests per
// second ("Identifying rate limits"). Sandbox gets 10 % of them.
var productionRateLimits = map[string]float64{
	EndpointGetTransactionInfo:         50,
	EndpointGetTransactionHistory:      50,
	EndpointGetAllSubscriptionStatuses: 50,
	EndpointSendConsumptionInformation: 50,
	EndpointGetNotificationHistory:     50,
	EndpointLookUpOrderID:              10,
	EndpointGetRefundHistory:           10,
	EndpointRequestTestNotification:    1,
	EndpointGetTestNotificationStatus:  1,
}

// SandboxRateShare is the share of the Production rate limits that applies in Sandbox.
const SandboxRateShare = 0.1

// DefaultRateLimit returns the rate, in requests per second, the client keeps to for endpoint
// in env when ClientOptions.RateLimit is 0: Apple's published Production limit (50/s for Send
// Consumption Information), or 10 % of it in Sandbox. An endpoint Apple does not list gets 10/s
// (1/s in Sandbox).
func DefaultRateLimit(endpoint string, env Environment) float64 {
	r, ok := productionRateLimits[endpoint]
	if !ok {
		r = 10
	}
	if env == EnvironmentSandbox {
		r *= SandboxRateShare
	}
	return r
}

// rateLimiter is a token bucket: it holds up to burst tokens and gains rate tokens a second.
// A request takes a token, borrowing against the future when there is none, and waits until
// its token is due; so waiters are served in order and the long-run rate never exceeds rate.
type rateLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newRateLimiter returns a full bucket for rate requests a second. Its burst is one second's
// worth of requests, at least one. now must be a real (monotonic) clock.
func newRateLimiter(rate float64, now func() time.Time) *rateLimiter {
	burst := max(rate, 1)
	return &rateLimiter{rate: rate, burst: burst, tokens: burst, now: now, last: now()}
}

// reserve takes a token and returns how long to wait before using it.
func (l *rateLimiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if elapsed := now.Sub(l.last); elapsed > 0 {
		l.tokens = min(l.burst, l.tokens+elapsed.Seconds()*l.rate)
		l.last = now
	}
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// cancel gives back a token reserved but not used.
func (l *rateLimiter) cancel() {
	l.mu.Lock()
	l.tokens = min(l.burst, l.tokens+1)
	l.mu.Unlock()
}

// wait blocks until a token is available or ctx ends; sleep does the waiting.
func (l *rateLimiter) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	if l == nil {
		return nil
	}
	d := l.reserve()
	if d <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		l.cancel()
		return context.DeadlineExceeded
	}
	if err := sleep(ctx, d); err != nil {
		l.cancel()
		return err
	}
	return nil
}
