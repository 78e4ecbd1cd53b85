package apple

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels matched (errors.Is) by *APIError values, for the answers callers branch on.
var (
	// ErrUnauthorized matches an HTTP 401: Apple did not accept the bearer token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound matches an HTTP 404, e.g. errorCode 4040010 (transaction id not found).
	ErrNotFound = errors.New("not found")
	// ErrRateLimited matches an HTTP 429.
	ErrRateLimited = errors.New("rate limited")
	// ErrInvalidRequest is matched by requests this package refuses to send because Apple would
	// reject them (an empty identifier, a ConsumptionRequest without consent...).
	ErrInvalidRequest = errors.New("invalid request")
)

// Error codes (errorCode) of the App Store Server API that this package or its callers act on.
// Apple documents many more; APIError.Code carries whichever Apple sent.
const (
	ErrorCodeGeneralBadRequest                      int64 = 4000000
	ErrorCodeInvalidCustomerConsented               int64 = 4000035
	ErrorCodeAccountNotFound                        int64 = 4040001
	ErrorCodeAccountNotFoundRetryable               int64 = 4040002
	ErrorCodeAppNotFound                            int64 = 4040003
	ErrorCodeAppNotFoundRetryable                   int64 = 4040004
	ErrorCodeOriginalTransactionIDNotFound          int64 = 4040005
	ErrorCodeOriginalTransactionIDNotFoundRetryable int64 = 4040006
	ErrorCodeServerNotificationURLNotFound          int64 = 4040007
	ErrorCodeTestNotificationNotFound               int64 = 4040008
	ErrorCodeTransactionIDNotFound                  int64 = 4040010
	ErrorCodeRateLimitExceeded                      int64 = 4290000
	ErrorCodeGeneralInternal                        int64 = 5000000
	ErrorCodeGeneralInternalRetryable               int64 = 5000001
)

// APIError is an answer of the App Store Server API other than success. Apple's error body is
// {"errorCode":N,"errorMessage":"..."}; Code and Message are zero when the body was absent or
// not that shape.
type APIError struct {
	Status     int           // HTTP status code
	Code       int64         // errorCode
	Message    string        // errorMessage
	RetryAfter time.Duration // from the Retry-After header (429), measured from the response; 0 when absent
	Endpoint   string        // one of the Endpoint* names
}

// unauthorizedHint lists what makes Apple answer 401, most likely first.
const unauthorizedHint = "Apple rejected the API token; check, in this order: " +
	"(1) key_id is the key's Key ID (10 characters), not its name; " +
	"(2) issuer_id is the Issuer ID shown on the In-App Purchase tab (App Store Connect > Users and Access > Integrations > In-App Purchase); " +
	"(3) the .p8 file is the one downloaded for that Key ID; " +
	"(4) the key has not been revoked; " +
	"(5) it is an In-App Purchase key, not an App Store Connect API key"

// Error reads like "apple api get_transaction_info: HTTP 404, errorCode 4040010: Transaction
// id not found." A 401 says what to check.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("apple api ")
	b.WriteString(e.Endpoint)
	b.WriteString(": HTTP ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != 0 {
		b.WriteString(", errorCode ")
		b.WriteString(strconv.FormatInt(e.Code, 10))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.Round(time.Millisecond).String())
		b.WriteString(")")
	}
	if e.Status == http.StatusUnauthorized {
		b.WriteString(": ")
		b.WriteString(unauthorizedHint)
	}
	return b.String()
}

// Is matches ErrUnauthorized, ErrNotFound and ErrRateLimited by HTTP status.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// Retryable reports whether Apple says the same request may succeed later: HTTP 429, any
// 5xx, and the errorCodes Apple documents as retryable (4040002, 4040004, 4040006, 5000001).
func (e *APIError) Retryable() bool {
	switch {
	case e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	switch e.Code {
	case ErrorCodeAccountNotFoundRetryable, ErrorCodeAppNotFoundRetryable,
		ErrorCodeOriginalTransactionIDNotFoundRetryable, ErrorCodeGeneralInternalRetryable:
		return true
	}
	return false
}

// NetworkError is a request that got no complete answer from Apple: a connection, TLS or
// timeout failure, or a body cut short. It is always retryable.
type NetworkError struct {
	Endpoint string
	Err      error
}

// Error reads like "apple api get_transaction_info: dial tcp: ... connection refused".
func (e *NetworkError) Error() string { return "apple api " + e.Endpoint + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *NetworkError) Unwrap() error { return e.Err }

// IsRetryable reports whether trying again later could succeed, so that a caller must keep
// the work rather than drop it.
//
// Verification errors (*VerificationError) are never retryable: verification is offline (no
// OCSP), so its outcome depends only on the input and the trusted roots.
//
// App Store Server API errors are retryable when Apple says so (see [APIError.Retryable]), and
// so are network errors and timeouts ([NetworkError], context.DeadlineExceeded). A cancelled
// context is not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ve *VerificationError
	if errors.As(err, &ve) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne *NetworkError
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// maxErrorBody is how much of an error answer is decoded; Apple's are tiny.
const maxErrorBody = 64 << 10

// parseAPIError builds the APIError of a non-success answer. The body is decoded best effort.
func parseAPIError(endpoint string, status int, header http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Status: status, Endpoint: endpoint}
	e.Code, e.Message = parseErrorBody(body)
	if d, ok := ParseRetryAfter(header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	return e
}

// parseErrorBody decodes {"errorCode":N,"errorMessage":"..."} as far as it goes: a missing,
// malformed or oddly typed field leaves its result zero. The message is cut to 512 bytes.
func parseErrorBody(body []byte) (code int64, message string) {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	var v struct {
		ErrorCode    any `json:"errorCode"`
		ErrorMessage any `json:"errorMessage"`
	}
	if unmarshalObject(body, &v) != nil {
		return 0, ""
	}
	switch c := v.ErrorCode.(type) {
	case float64:
		if c == math.Trunc(c) && c >= math.MinInt64 && c < math.MaxInt64 {
			code = int64(c)
		}
	case string:
		code, _ = strconv.ParseInt(c, 10, 64)
	}
	if m, ok := v.ErrorMessage.(string); ok {
		message = strings.ToValidUTF8(m, "\uFFFD")
		if len(message) > 512 {
			message = strings.ToValidUTF8(message[:512], "") + "…"
		}
	}
	return code, message
}

// Retry-After values above these are absolute times, not delays.
const (
	retryAfterMillisEpoch  = 100_000_000_000 // ~1e11: 1973 in ms, or 3170 years in seconds
	retryAfterSecondsEpoch = 1_000_000_000   // 2001 in seconds, or 31 years as a delay
	maxRetryAfter          = 30 * 24 * time.Hour
)

// ParseRetryAfter turns a Retry-After header into a delay from now. Apple sends a UNIX time in
// milliseconds; delta-seconds and HTTP dates (RFC 9110) are accepted too, and so is a UNIX
// time in seconds. The rule for a bare integer n:
//
//	n >= 1e11          UNIX time in milliseconds (Apple's form)
//	1e9 <= n < 1e11    UNIX time in seconds
//	0 <= n < 1e9       delay in seconds
//
// A time in the past gives 0, a delay is capped at 30 days, and ok is false for an empty or
// unparseable value.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n < 0:
			return 0, false
		case n >= retryAfterMillisEpoch:
			d = time.UnixMilli(n).Sub(now)
		case n >= retryAfterSecondsEpoch:
			d = time.Unix(n, 0).Sub(now)
		default:
			d = time.Duration(n) * time.Second
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), maxRetryAfter), true
}

// invalidRequest is the error of a request refused before sending.
func invalidRequest(endpoint, format string, args ...any) error {
	return fmt.Errorf("apple api %s: %w: %s", endpoint, ErrInvalidRequest, fmt.Sprintf(format, args...))
}
