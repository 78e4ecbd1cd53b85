package forward

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Retry defaults, used for zero fields of Retry.
const (
	DefaultInitial     = 5 * time.Second
	DefaultMaxInterval = time.Hour
	DefaultMaxAge      = 7 * 24 * time.Hour
)

// Retry is a target's retry schedule.
type Retry struct {
	// Initial is the mean wait before the second attempt.
	Initial time.Duration
	// MaxInterval caps the wait between attempts.
	MaxInterval time.Duration
	// MaxAge is how long a delivery may stay pending before it is dead.
	MaxAge time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = DefaultInitial
	}
	if r.MaxInterval < r.Initial {
		r.MaxInterval = max(DefaultMaxInterval, r.Initial)
	}
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultMaxAge
	}
	return r
}

// delay returns the wait after the given failed attempt (1-based): exponential
// in the attempt number with full jitter, so many deliveries that failed
// together do not retry together.
func (r Retry) delay(attempt int) time.Duration {
	b := r.exponential(1)
	d := r.Initial
	for range max(attempt, 1) {
		d = b.NextBackOff()
	}
	return min(d, r.MaxInterval)
}

// exponential returns a backoff doubling from Initial to MaxInterval that
// never stops by itself; randomization 1 spreads each wait over [0, 2×mean].
func (r Retry) exponential(randomization float64) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.Initial
	b.MaxInterval = r.MaxInterval
	b.Multiplier = 2
	b.RandomizationFactor = randomization
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// maxRetryAfter caps the wait a target can ask for with Retry-After.
const maxRetryAfter = 365 * 24 * time.Hour

// retryAfter reads a Retry-After header: delta seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
