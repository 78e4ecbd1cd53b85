package apple_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/asnrelay/asnrelay/apple"
)

func TestSignPromotionalOffer(t *testing.T) {
	key := newAPIKey(t)
	const (
		nonce = "4E9E8F77-3D0B-4B64-8F0D-1C6B1E2A7F11"
		token = "7E3FB20B-4CDB-47CC-936D-99D65F608138"
		ts    = int64(1767225600000)
	)
	sig, err := apple.SignPromotionalOffer(key, "ABC123DEFG", "com.example.app", "com.example.monthly", "winback50", token, nonce, ts)
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatalf("signature %q is not standard base64: %v", sig, err)
	}
	// The payload, written out by hand: fields joined by U+2063, token and nonce lowercased.
	payload := "com.example.app\u2063ABC123DEFG\u2063com.example.monthly\u2063winback50\u2063" +
		"7e3fb20b-4cdb-47cc-936d-99d65f608138\u20634e9e8f77-3d0b-4b64-8f0d-1c6b1e2a7f11\u20631767225600000"
	if got := apple.PromotionalOfferPayload("com.example.app", "ABC123DEFG", "com.example.monthly", "winback50", token, nonce, ts); got != payload {
		t.Fatalf("payload %q, want %q", got, payload)
	}
	digest := sha256.Sum256([]byte(payload))
	if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], der) {
		t.Fatal("the ASN.1 DER signature does not verify over the payload with the public key")
	}
	other := sha256.Sum256([]byte(strings.Replace(payload, "winback50", "winback60", 1)))
	if ecdsa.VerifyASN1(&key.PublicKey, other[:], der) {
		t.Fatal("the signature verifies over another payload")
	}

	// An empty app account token is allowed.
	if _, err := apple.SignPromotionalOffer(key, "K", "b", "p", "o", "", nonce, ts); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]string{"empty": "", "not a uuid": "nonce-nonce-nonce-nonce-nonce-nonce1", "short": "4e9e8f77"} {
		if _, err := apple.SignPromotionalOffer(key, "K", "b", "p", "o", "", n, ts); err == nil {
			t.Errorf("nonce %s: no error", name)
		}
	}
	if _, err := apple.SignPromotionalOffer(nil, "K", "b", "p", "o", "", nonce, ts); err == nil {
		t.Error("nil key: no error")
	}
}

func TestSignPromotionalOfferV2(t *testing.T) {
	key := newAPIKey(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	for _, txID := range []string{"2000000123", ""} {
		s, err := apple.SignPromotionalOfferV2(key, "ABC123DEFG", "issuer-uuid", "com.example.app",
			apple.PromotionalOfferV2{ProductID: "com.example.monthly", OfferIdentifier: "winback50", TransactionID: txID}, now)
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{}
		tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()).
			ParseWithClaims(s, claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil })
		if err != nil {
			t.Fatalf("signature does not verify: %v", err)
		}
		if tok.Header["kid"] != "ABC123DEFG" || tok.Header["typ"] != "JWT" || tok.Header["alg"] != "ES256" {
			t.Errorf("header %v", tok.Header)
		}
		want := map[string]any{
			"iss": "issuer-uuid", "iat": float64(now.Unix()), "aud": "promotional-offer", "bid": "com.example.app",
			"productId": "com.example.monthly", "offerIdentifier": "winback50",
		}
		if txID != "" {
			want["transactionId"] = txID
		}
		for k, v := range want {
			if claims[k] != v {
				t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
			}
		}
		if nonce, _ := claims["nonce"].(string); !uuidRE.MatchString(nonce) {
			t.Errorf("nonce %q is not a lowercase v4 UUID", claims["nonce"])
		}
		if len(claims) != len(want)+1 {
			t.Errorf("claims %v: want exactly %d", claims, len(want)+1)
		}
	}
	if _, err := apple.SignPromotionalOfferV2(key, "K", "i", "b", apple.PromotionalOfferV2{ProductID: "p"}, now); err == nil {
		t.Error("no offer identifier: no error")
	}
}
