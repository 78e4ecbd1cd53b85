package apple

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims of the bearer token of the App Store Server API.
const (
	// APIAudience is the aud claim Apple requires.
	APIAudience = "appstoreconnect-v1"
	// TokenLifetime is how long a bearer token is valid (exp - iat). Apple rejects tokens valid
	// for more than 60 minutes; its own libraries use 5, and so does this package.
	TokenLifetime = 5 * time.Minute
)

// ErrInvalidPrivateKey is matched (errors.Is) by every error of ParsePrivateKey.
var ErrInvalidPrivateKey = errors.New("invalid In-App Purchase key")

const p8Hint = "expected the .p8 In-App Purchase key downloaded from App Store Connect (Users and Access > Integrations > In-App Purchase)"

// ParsePrivateKey parses an In-App Purchase key: the .p8 file App Store Connect lets you
// download once, a PEM "PRIVATE KEY" block holding a PKCS#8 ECDSA P-256 key. A SEC1 "EC
// PRIVATE KEY" block with a P-256 key is accepted too. Errors say what the file holds instead
// (a certificate, an RSA key, a key on another curve...) and never include key material.
func ParsePrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, keyErr("not a PEM file: %s", p8Hint)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			return nil, keyErr("the PRIVATE KEY block is not a valid PKCS#8 key (is the file complete?); %s", p8Hint)
		}
	case "EC PRIVATE KEY":
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, keyErr("the EC PRIVATE KEY block is not a valid SEC1 key; %s", p8Hint)
		}
	case "CERTIFICATE":
		return nil, keyErr("the file holds a certificate, not a private key; %s", p8Hint)
	case "RSA PRIVATE KEY":
		return nil, keyErr("the file holds an RSA key, want an ECDSA P-256 key; %s", p8Hint)
	case "PUBLIC KEY":
		return nil, keyErr("the file holds a public key, not a private key; %s", p8Hint)
	case "ENCRYPTED PRIVATE KEY":
		return nil, keyErr("the file holds an encrypted private key, which is not supported; %s", p8Hint)
	default:
		return nil, keyErr("the file holds a PEM block of type %q, want PRIVATE KEY; %s", block.Type, p8Hint)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, keyErr("the file holds an ECDSA key on curve %s, want P-256; %s", k.Curve.Params().Name, p8Hint)
		}
		return k, nil
	case *rsa.PrivateKey:
		return nil, keyErr("the file holds an RSA key, want an ECDSA P-256 key; %s", p8Hint)
	case ed25519.PrivateKey:
		return nil, keyErr("the file holds an Ed25519 key, want an ECDSA P-256 key; %s", p8Hint)
	default:
		return nil, keyErr("the file holds a %T key, want an ECDSA P-256 key; %s", key, p8Hint)
	}
}

func keyErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPrivateKey}, args...)...)
}

// Token returns a fresh bearer token for the App Store Server API: ES256 with header kid (the
// Key ID) and typ JWT, claims iss (the Issuer ID), iat (now), exp (now + TokenLifetime), aud
// (appstoreconnect-v1) and bid (the bundle ID). The client signs a new one for every request,
// as Apple asks; Token is exported for diagnostics (asnrelay check).
func (c *Client) Token() (string, error) {
	now := c.now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": c.issuerID,
		"iat": now.Unix(),
		"exp": now.Add(TokenLifetime).Unix(),
		"aud": APIAudience,
		"bid": c.bundleID,
	})
	t.Header["kid"] = c.keyID
	t.Header["typ"] = "JWT"
	s, err := t.SignedString(c.key)
	if err != nil {
		return "", fmt.Errorf("sign api token: %w", err)
	}
	return s, nil
}
