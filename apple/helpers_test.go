package apple_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

// Fixed times: no test depends on the machine clock.
var (
	t0         = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	caFrom     = t0
	caTo       = t0.AddDate(1, 0, 0)
	signedDate = t0.AddDate(0, 1, 0) // inside the CA's validity
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newCA(t testing.TB) *appletest.CA {
	t.Helper()
	ca, err := appletest.New(caFrom, caTo)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newCAWith(t testing.TB, opts appletest.Options) *appletest.CA {
	t.Helper()
	if opts.Validity == (appletest.Validity{}) {
		opts.Validity = appletest.Validity{NotBefore: caFrom, NotAfter: caTo}
	}
	ca, err := appletest.NewWithOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// verifierFor trusts ca's root (and Apple's) and, for payloads without a signedDate, uses a
// clock inside the CA's validity.
func verifierFor(cas ...*appletest.CA) *apple.Verifier {
	var roots []*x509.Certificate
	for _, ca := range cas {
		roots = append(roots, ca.Root)
	}
	return apple.NewVerifier(roots).WithClock(fixedClock(signedDate))
}

func sign(t testing.TB, ca *appletest.CA, payload any) string {
	t.Helper()
	s, err := ca.SignJWS(payload)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signWithHeader(t testing.TB, ca *appletest.CA, header map[string]any, payload any) string {
	t.Helper()
	s, err := ca.SignJWSWithHeader(header, payload)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signNotification(t testing.TB, ca *appletest.CA, n appletest.Notification) string {
	t.Helper()
	s, err := ca.SignNotification(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replacePart replaces segment i (0 header, 1 payload, 2 signature) of a compact JWS.
func replacePart(jws string, i int, part string) string {
	parts := strings.Split(jws, ".")
	parts[i] = part
	return strings.Join(parts, ".")
}

// unsignedJWS builds a compact JWS with an arbitrary header and payload and a dummy signature,
// as Xcode-like data looks to DecodeNotification.
func unsignedJWS(header, payload string) string {
	return b64url(header) + "." + b64url(payload) + ".c2ln"
}
