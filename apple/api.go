package apple

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Base URLs of the App Store Server API. Apple recommends these hosts since May 2026; the
// older api.storekit(-sandbox).itunes.apple.com hosts keep working.
const (
	ProductionBaseURL = "https://api.storekit.apple.com"
	SandboxBaseURL    = "https://api.storekit-sandbox.apple.com"
)

// Defaults of ClientOptions.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 3
	DefaultMaxRetryWait = 30 * time.Second
	DefaultUserAgent    = "asnrelay"

	// MaxResponseBytes bounds every response read; Apple's largest (a page of 20 signed
	// transactions or notifications) are well under 1 MiB.
	MaxResponseBytes = 4 << 20
)

// Backoff between retries: exponential with ±50 % jitter.
const (
	retryInitialInterval = 500 * time.Millisecond
	retryMaxInterval     = 10 * time.Second
	retryMaxElapsed      = 2 * time.Minute
)

// ClientOptions configure a Client. IssuerID, KeyID, BundleID, Key and Environment are
// required.
type ClientOptions struct {
	IssuerID string            // Issuer ID from the In-App Purchase tab of Users and Access > Integrations
	KeyID    string            // Key ID of the In-App Purchase key
	BundleID string            // the app's bundle ID (claim bid)
	Key      *ecdsa.PrivateKey // the In-App Purchase key, see ParsePrivateKey

	// Environment picks Apple's base URL and the default rate limits: EnvironmentProduction
	// or EnvironmentSandbox.
	Environment Environment
	// BaseURL overrides Apple's base URL (tests, egress proxies); "" means Apple's for
	// Environment.
	BaseURL string

	// HTTPClient sends the requests; nil means a client of its own. Its Timeout, if any,
	// applies on top of Timeout.
	HTTPClient *http.Client
	// Now is the clock for token times and Retry-After; nil means time.Now.
	Now func() time.Time
	// Timeout bounds each HTTP attempt, from sending the request to reading the whole
	// answer; 0 means DefaultTimeout. The caller's context bounds the whole call, retries
	// included.
	Timeout time.Duration
	// MaxRetries is how many times a retryable failure (see IsRetryable) is retried within
	// one call; 0 means DefaultMaxRetries, negative means none.
	MaxRetries int
	// MaxRetryWait is the longest Retry-After a call waits for before retrying; a 429 asking
	// for longer is returned at once, its APIError.RetryAfter telling the caller when to come
	// back. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// RateLimit caps the requests per second to each endpoint: 0 means Apple's published
	// limit per endpoint for Environment (see DefaultRateLimit), a positive value applies to
	// every endpoint, a negative value switches limiting off.
	RateLimit float64
	// UserAgent is sent with every request; "" means DefaultUserAgent.
	UserAgent string

	// Verifier, when set, verifies the signed data in every response (signed transactions,
	// renewal info, the test notification) and fills the decoded fields of the response; a
	// response that fails verification is an error. Notification history payloads are left
	// signed: they are meant to go through the same pipeline as received notifications.
	Verifier *Verifier

	// OnAttempt, when set, is called after every HTTP attempt (for metrics and logs).
	OnAttempt func(APIAttempt)
}

// APIAttempt describes one HTTP attempt of a call.
type APIAttempt struct {
	Endpoint string        // one of the Endpoint* names
	Attempt  int           // 1 for the first try of a call
	Status   int           // HTTP status; 0 when there was no answer
	Duration time.Duration // from sending the request to reading the answer
	Err      error         // nil on success
}

// Client calls the App Store Server API for one app in one environment. It signs a fresh
// token for every request, keeps to per-endpoint rate limits, bounds and times out every
// request, and retries what Apple says is retryable with exponential backoff and jitter,
// honouring Retry-After. It is safe for concurrent use.
type Client struct {
	issuerID, keyID, bundleID string
	key                       *ecdsa.PrivateKey
	env                       Environment
	baseURL                   string
	http                      *http.Client
	now                       func() time.Time
	timeout                   time.Duration
	maxRetries                int
	maxRetryWait              time.Duration
	userAgent                 string
	verifier                  *Verifier
	onAttempt                 func(APIAttempt)
	limiters                  map[string]*rateLimiter // nil entries: no limit

	// sleep waits between retries and for the rate limiter; tests replace it.
	sleep func(context.Context, time.Duration) error
}

// NewClient returns a Client for opts.
func NewClient(opts ClientOptions) (*Client, error) {
	var problems []string
	if strings.TrimSpace(opts.IssuerID) == "" {
		problems = append(problems, "issuer ID is empty")
	}
	if strings.TrimSpace(opts.KeyID) == "" {
		problems = append(problems, "key ID is empty")
	}
	if strings.TrimSpace(opts.BundleID) == "" {
		problems = append(problems, "bundle ID is empty")
	}
	if opts.Key == nil {
		problems = append(problems, "no private key")
	} else if opts.Key.Curve != elliptic.P256() {
		problems = append(problems, "private key is not ECDSA P-256")
	}
	base := opts.BaseURL
	switch opts.Environment {
	case EnvironmentProduction:
		if base == "" {
			base = ProductionBaseURL
		}
	case EnvironmentSandbox:
		if base == "" {
			base = SandboxBaseURL
		}
	default:
		problems = append(problems, fmt.Sprintf("environment %q is not Production or Sandbox", opts.Environment))
	}
	if u, err := url.Parse(base); base != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "") {
		problems = append(problems, fmt.Sprintf("base URL %q is not an http(s) URL", base))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("new app store server api client: %s", strings.Join(problems, "; "))
	}

	c := &Client{
		issuerID:     opts.IssuerID,
		keyID:        opts.KeyID,
		bundleID:     opts.BundleID,
		key:          opts.Key,
		env:          opts.Environment,
		baseURL:      strings.TrimRight(base, "/"),
		http:         opts.HTTPClient,
		now:          opts.Now,
		timeout:      opts.Timeout,
		maxRetries:   opts.MaxRetries,
		maxRetryWait: opts.MaxRetryWait,
		userAgent:    opts.UserAgent,
		verifier:     opts.Verifier,
		onAttempt:    opts.OnAttempt,
		limiters:     make(map[string]*rateLimiter),
		sleep:        sleepContext,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.maxRetryWait <= 0 {
		c.maxRetryWait = DefaultMaxRetryWait
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	for _, ep := range []string{
		EndpointGetTransactionInfo, EndpointGetTransactionHistory, EndpointGetAllSubscriptionStatuses,
		EndpointLookUpOrderID, EndpointGetRefundHistory, EndpointSendConsumptionInformation,
		EndpointRequestTestNotification, EndpointGetTestNotificationStatus, EndpointGetNotificationHistory,
	} {
		rate := opts.RateLimit
		if rate == 0 {
			rate = DefaultRateLimit(ep, opts.Environment)
		}
		if rate > 0 {
			// The limiter measures real elapsed time, whatever clock opts.Now is.
			c.limiters[ep] = newRateLimiter(rate, time.Now)
		}
	}
	return c, nil
}

// Environment returns the environment the client calls.
func (c *Client) Environment() Environment { return c.env }

// BaseURL returns the base URL the client calls.
func (c *Client) BaseURL() string { return c.baseURL }

// request is one call to an endpoint.
type request struct {
	endpoint string
	method   string
	path     string     // absolute, escaped
	query    url.Values // may be nil
	body     any        // encoded as JSON when not nil
	out      any        // the success answer is decoded into it when not nil
}

// do performs r, retrying what is retryable.
func (c *Client) do(ctx context.Context, r request) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("apple api %s: encode request: %w", r.endpoint, err)
		}
	}
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(retryInitialInterval),
		backoff.WithMaxInterval(retryMaxInterval),
		backoff.WithMaxElapsedTime(retryMaxElapsed),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMultiplier(2),
	)
	b.Clock = clockFunc(c.now)
	b.Reset()
	for attempt := 1; ; attempt++ {
		if err := c.limiters[r.endpoint].wait(ctx, c.sleep); err != nil {
			return fmt.Errorf("apple api %s: wait for rate limit: %w", r.endpoint, err)
		}
		err := c.attempt(ctx, r, payload, attempt)
		if err == nil || attempt > c.maxRetries || !IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return err
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			if ae.RetryAfter > c.maxRetryWait {
				return err
			}
			wait = ae.RetryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		if c.sleep(ctx, wait) != nil {
			return err
		}
	}
}

// attempt sends r once.
func (c *Client) attempt(ctx context.Context, r request, payload []byte, n int) (err error) {
	status := 0
	start := time.Now()
	if c.onAttempt != nil {
		defer func() {
			c.onAttempt(APIAttempt{Endpoint: r.endpoint, Attempt: n, Status: status, Duration: time.Since(start), Err: err})
		}()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	token, err := c.Token()
	if err != nil {
		return fmt.Errorf("apple api %s: %w", r.endpoint, err)
	}
	u := c.baseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return fmt.Errorf("apple api %s: %w", r.endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &NetworkError{Endpoint: r.endpoint, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return &NetworkError{Endpoint: r.endpoint, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseAPIError(r.endpoint, resp.StatusCode, resp.Header, data, c.now())
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("apple api %s: answer is over the %d byte limit", r.endpoint, MaxResponseBytes)
	}
	if r.out == nil {
		return nil
	}
	if err := unmarshalObject(data, r.out); err != nil {
		return fmt.Errorf("apple api %s: decode answer: %w", r.endpoint, err)
	}
	return nil
}

// stripURL drops the request URL from a transport error: it says nothing the endpoint name
// does not, and paths carry customer identifiers.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clockFunc adapts a clock function to backoff.Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }
