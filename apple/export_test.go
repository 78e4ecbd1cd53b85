package apple

import (
	"context"
	"time"
)

// SetClientSleep replaces what c waits with between retries and for its rate limiter, so
// that tests record waits instead of sleeping.
func SetClientSleep(c *Client, sleep func(context.Context, time.Duration) error) { c.sleep = sleep }

// RateLimiter exposes the token bucket to tests.
type RateLimiter = rateLimiter

// NewRateLimiter returns a token bucket with the given clock.
func NewRateLimiter(rate float64, now func() time.Time) *RateLimiter {
	return newRateLimiter(rate, now)
}

// Reserve takes a token and returns the wait before using it.
func (l *rateLimiter) Reserve() time.Duration { return l.reserve() }

// Wait waits for a token with sleep.
func (l *rateLimiter) Wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	return l.wait(ctx, sleep)
}

// ParseErrorBody decodes an error answer's body.
var ParseErrorBody = parseErrorBody
