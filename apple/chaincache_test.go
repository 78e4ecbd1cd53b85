package apple_test

import (
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
)

// Once a chain has verified, later JWS signed by it take the cached path.
// That path must still reject everything the full path rejects.
func TestCachedChainStillChecksEverything(t *testing.T) {
	ca := newCA(t)
	v := verifierFor(ca)
	good := sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(signedDate), "n": 1})
	if _, err := v.VerifyJWS(good); err != nil {
		t.Fatalf("first verification: %v", err)
	}
	other := sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(signedDate), "n": 2})
	otherCA := newCA(t)
	foreign := sign(t, otherCA, map[string]any{"signedDate": apple.TimestampOf(signedDate)})
	for _, tc := range []struct {
		name string
		jws  string
		want apple.Reason
	}{
		{"same chain, another payload", other, ""},
		{"tampered payload", replacePart(good, 1, b64url(mustJSON(t, map[string]any{"signedDate": apple.TimestampOf(signedDate), "n": 3}))), apple.ReasonBadSignature},
		{"signature of another JWS", replacePart(good, 2, splitAt(other, 2)), apple.ReasonBadSignature},
		{"dated before the chain", sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(caFrom.Add(-time.Hour))}), apple.ReasonExpiredChain},
		{"dated after the chain", sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(caTo.Add(time.Hour))}), apple.ReasonExpiredChain},
		{"payload not an object", replacePart(good, 1, b64url(`[]`)), apple.ReasonMalformed},
		{"signature not base64", replacePart(good, 2, "!!"), apple.ReasonMalformed},
		{"another CA's chain", foreign, apple.ReasonUntrustedRoot},
	} {
		// Twice: the second run must not be changed by what the first cached.
		for round := range 2 {
			_, err := v.VerifyJWS(tc.jws)
			if got := apple.ReasonOf(err); got != tc.want {
				t.Errorf("%s (round %d): reason %q (%v), want %q", tc.name, round, got, err, tc.want)
			}
		}
	}
}

// A chain trusted by one verifier is not trusted by another through the
// cache: each verifier (and its WithClock copies) has its own.
func TestChainCacheIsPerVerifier(t *testing.T) {
	ca := newCA(t)
	jws := sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(signedDate)})
	if _, err := verifierFor(ca).VerifyJWS(jws); err != nil {
		t.Fatal(err)
	}
	if _, err := verifierFor().VerifyJWS(jws); apple.ReasonOf(err) != apple.ReasonUntrustedRoot {
		t.Fatalf("a verifier without the root accepted a chain another verifier cached: %v", err)
	}
}

func splitAt(jws string, i int) string {
	parts := [3]string{}
	start, n := 0, 0
	for j := 0; j < len(jws) && n < 2; j++ {
		if jws[j] == '.' {
			parts[n] = jws[start:j]
			start, n = j+1, n+1
		}
	}
	parts[2] = jws[start:]
	return parts[i]
}
