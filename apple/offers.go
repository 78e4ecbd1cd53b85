package apple

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// offerSeparator joins the fields of a promotional offer signature payload: U+2063 INVISIBLE
// SEPARATOR.
const offerSeparator = "\u2063"

// PromotionalOfferAudience is the aud claim of a promotional offer V2 signature.
const PromotionalOfferAudience = "promotional-offer"

// PromotionalOfferPayload returns the string a promotional offer signature (the original
// version, for StoreKit's Product.PurchaseOption.promotionalOffer(offerID:keyID:nonce:
// signature:timestamp:) and SKPaymentDiscount) signs: bundle ID, key ID, product ID, offer ID,
// app account token and nonce, both lowercased, and timestamp (UNIX milliseconds), joined by
// U+2063.
func PromotionalOfferPayload(bundleID, keyID, productID, offerID, appAccountToken, nonce string, timestamp int64) string {
	return strings.Join([]string{
		bundleID, keyID, productID, offerID,
		strings.ToLower(appAccountToken), strings.ToLower(nonce),
		strconv.FormatInt(timestamp, 10),
	}, offerSeparator)
}

// SignPromotionalOffer signs a promotional offer the original way: an ECDSA P-256 SHA-256
// signature over PromotionalOfferPayload, ASN.1 DER encoded, in standard base64. key and keyID
// are an In-App Purchase key. appAccountToken may be empty; nonce must be a UUID, fresh for
// every signature; timestamp is in UNIX milliseconds (the offer is valid for 24 hours).
func SignPromotionalOffer(key *ecdsa.PrivateKey, keyID, bundleID, productID, offerID, appAccountToken, nonce string, timestamp int64) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", errors.New("sign promotional offer: key is not an ECDSA P-256 key")
	}
	if !isUUID(nonce) {
		return "", fmt.Errorf("sign promotional offer: nonce %q is not a UUID", nonce)
	}
	digest := sha256.Sum256([]byte(PromotionalOfferPayload(bundleID, keyID, productID, offerID, appAccountToken, nonce, timestamp)))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign promotional offer: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// PromotionalOfferV2 is what a promotional offer V2 signature grants.
type PromotionalOfferV2 struct {
	ProductID       string // required
	OfferIdentifier string // required: the promotional offer's identifier in App Store Connect
	TransactionID   string // optional but recommended: any transaction of the customer, or its appTransactionId
}

// SignPromotionalOfferV2 returns a promotional offer V2 signature, a compact JWS (ES256, raw
// R‖S signature) with header kid and typ JWT and claims iss (issuerID), iat (now), aud
// (promotional-offer), bid (bundleID), nonce (a fresh random UUID), productId,
// offerIdentifier and, when set, transactionId. key and keyID are an In-App Purchase key.
func SignPromotionalOfferV2(key *ecdsa.PrivateKey, keyID, issuerID, bundleID string, offer PromotionalOfferV2, now time.Time) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", errors.New("sign promotional offer v2: key is not an ECDSA P-256 key")
	}
	if offer.ProductID == "" || offer.OfferIdentifier == "" {
		return "", errors.New("sign promotional offer v2: productId and offerIdentifier are required")
	}
	claims := jwt.MapClaims{
		"iss":             issuerID,
		"iat":             now.Unix(),
		"aud":             PromotionalOfferAudience,
		"bid":             bundleID,
		"nonce":           newNonce(),
		"productId":       offer.ProductID,
		"offerIdentifier": offer.OfferIdentifier,
	}
	if offer.TransactionID != "" {
		claims["transactionId"] = offer.TransactionID
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = keyID
	t.Header["typ"] = "JWT"
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign promotional offer v2: %w", err)
	}
	return s, nil
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// newNonce returns a random (version 4) UUID in lowercase.
func newNonce() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
