package forward

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter: a target's Retry-After, whatever it says, is a wait
// between zero and a year: a target cannot put itself out of reach.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "-5", "9223372036854775807", "99999999999999999999", "1.5", " 10",
		"Mon, 23 Nov 2026 12:01:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("Retry-After", v)
		got := retryAfter(h, now)
		if got < 0 || got > 365*24*time.Hour {
			t.Fatalf("Retry-After %q: %v", v, got)
		}
		if n, err := strconv.ParseInt(h.Get("Retry-After"), 10, 64); err == nil && n <= 0 && got != 0 {
			t.Fatalf("Retry-After %q: %v", v, got)
		}
	})
}

// FuzzParseSecret: a secret either decodes to a usable key or is refused,
// and the error never repeats the secret.
func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{"", "whsec_", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"whsec_not base64!", "whsec_====", "whsec_whsec_YQ=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		key, err := ParseSecret(secret)
		switch {
		case err != nil:
			if len(secret) >= 8 && strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q repeats the secret", err)
			}
		case secret == "":
			if key != nil {
				t.Fatal("a key from an empty secret")
			}
		default:
			if len(key) == 0 {
				t.Fatalf("secret %q: empty key", secret)
			}
			if sig := Sign(key, "id", 1, []byte("{}")); !strings.HasPrefix(sig, "v1,") {
				t.Fatalf("signature %q", sig)
			}
		}
	})
}
