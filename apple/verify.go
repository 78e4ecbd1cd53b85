package apple

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Size limits, checked before any decoding so that hostile input costs linear work at most.
// Apple's signed payloads are a few KiB.
const (
	MaxJWSBytes    = 512 << 10 // a whole compact JWS
	MaxHeaderBytes = 64 << 10  // its base64url header segment
)

// OIDs Apple puts in the certificates that sign App Store data.
const (
	LeafOID         = "1.2.840.113635.100.6.11.1" // on the leaf (signing) certificate
	IntermediateOID = "1.2.840.113635.100.6.2.1"  // on the intermediate (Apple WWDR) certificate
)

// Verifier verifies App Store signed data against a set of trusted roots. It is safe for
// concurrent use.
type Verifier struct {
	roots     *x509.CertPool
	rootCerts []*x509.Certificate
	now       func() time.Time
	chains    *chainCache // shared by copies made with WithClock
}

// NewVerifier returns a Verifier that trusts Apple Root CA - G3 plus extraRoots (test CAs,
// other Apple roots). Nil entries are ignored.
func NewVerifier(extraRoots []*x509.Certificate) *Verifier {
	v := &Verifier{roots: x509.NewCertPool(), now: time.Now, chains: &chainCache{}}
	for _, c := range append([]*x509.Certificate{AppleRootCA()}, extraRoots...) {
		if c == nil {
			continue
		}
		v.roots.AddCert(c)
		v.rootCerts = append(v.rootCerts, c)
	}
	return v
}

// WithClock returns a copy of v that uses now as the time of verification. The clock only
// matters for payloads without a signedDate (or receiptCreationDate).
func (v *Verifier) WithClock(now func() time.Time) *Verifier {
	c := *v
	c.now = now
	return &c
}

// jwsHeader is the part of a JWS header that verification reads.
type jwsHeader struct {
	Alg string   `json:"alg"`
	X5C []string `json:"x5c"`
}

// VerifyJWS verifies a compact JWS as Apple's SignedDataVerifier does (see the package
// documentation) and returns its payload, the JSON bytes as signed. Errors are
// *VerificationError.
func (v *Verifier) VerifyJWS(jws string) ([]byte, error) {
	headerB64, payloadB64, sigB64, err := splitJWS(jws)
	if err != nil {
		return nil, err
	}
	if len(headerB64) > MaxHeaderBytes {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("header is %d bytes, over the %d byte limit", len(headerB64), MaxHeaderBytes))
	}
	headerJSON, err := decodeSegment(headerB64)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("header: %w", err))
	}
	var hdr jwsHeader
	if err := unmarshalObject(headerJSON, &hdr); err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("header: %w", err))
	}
	if hdr.Alg != jwt.SigningMethodES256.Alg() {
		return nil, verificationErr(ReasonBadAlgorithm, fmt.Errorf("alg %q, want ES256", hdr.Alg))
	}
	if len(hdr.X5C) != 3 {
		return nil, verificationErr(ReasonBadChainLength, fmt.Errorf("x5c has %d certificates, want 3", len(hdr.X5C)))
	}
	// The signing input, header.payload, is the start of the JWS itself.
	signed := jws[:len(headerB64)+1+len(payloadB64)]
	key := chainID(hdr.X5C) // three, checked above
	if chain, ok := v.chains.get(key); ok {
		if payload, at, err := v.payloadAndTime(payloadB64); err == nil && chain.covers(at) {
			return verifySignature(signed, sigB64, chain.leafKey, payload)
		}
		// Outside the cached window, or a bad payload: the full path says why.
	}
	certs := make([]*x509.Certificate, len(hdr.X5C))
	for i, s := range hdr.X5C {
		der, err := decodeStdBase64(s)
		if err != nil {
			return nil, verificationErr(ReasonBadCertificate, fmt.Errorf("x5c[%d]: %w", i, err))
		}
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, verificationErr(ReasonBadCertificate, fmt.Errorf("x5c[%d]: %w", i, err))
		}
	}
	payload, err := decodeSegment(payloadB64)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	at, err := v.effectiveTime(payload)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	sig, err := decodeSegment(sigB64)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("signature: %w", err))
	}
	root, err := v.verifyChain(certs[0], certs[1], at)
	if err != nil {
		return nil, err
	}
	leafKey, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || leafKey.Curve != elliptic.P256() {
		return nil, verificationErr(ReasonBadCertificate, errors.New("x5c[0]: public key is not ECDSA P-256"))
	}
	if err := jwt.SigningMethodES256.Verify(signed, sig, leafKey); err != nil {
		return nil, verificationErr(ReasonBadSignature, err)
	}
	v.chains.put(key, verifiedChain{
		leafKey:   leafKey,
		notBefore: latest(certs[0].NotBefore, certs[1].NotBefore, root.NotBefore),
		notAfter:  earliest(certs[0].NotAfter, certs[1].NotAfter, root.NotAfter),
	})
	return payload, nil
}

// payloadAndTime decodes the payload segment and the instant its chain must be valid at.
func (v *Verifier) payloadAndTime(payloadB64 string) ([]byte, time.Time, error) {
	payload, err := decodeSegment(payloadB64)
	if err != nil {
		return nil, time.Time{}, err
	}
	at, err := v.effectiveTime(payload)
	return payload, at, err
}

// verifySignature checks the ES256 signature over signed (header.payload) of a
// JWS whose chain is known good.
func verifySignature(signed, sigB64 string, key *ecdsa.PublicKey, payload []byte) ([]byte, error) {
	sig, err := decodeSegment(sigB64)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("signature: %w", err))
	}
	if err := jwt.SigningMethodES256.Verify(signed, sig, key); err != nil {
		return nil, verificationErr(ReasonBadSignature, err)
	}
	return payload, nil
}

func latest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func earliest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.Before(out) {
			out = t
		}
	}
	return out
}

// effectiveTime is the instant the chain must be valid at: the payload's signedDate, else its
// receiptCreationDate (app transactions), else now. It also rejects a payload that is not a
// JSON object.
func (v *Verifier) effectiveTime(payload []byte) (time.Time, error) {
	var dates struct {
		SignedDate          *Timestamp `json:"signedDate"`
		ReceiptCreationDate *Timestamp `json:"receiptCreationDate"`
	}
	if err := unmarshalObject(payload, &dates); err != nil {
		return time.Time{}, err
	}
	switch {
	case dates.SignedDate != nil:
		return dates.SignedDate.Time(), nil
	case dates.ReceiptCreationDate != nil:
		return dates.ReceiptCreationDate.Time(), nil
	}
	return v.now(), nil
}

// verifyChain checks that leaf → intermediate → trusted root is a valid chain at time at, with
// Apple's OIDs, and returns the root that anchors it.
func (v *Verifier) verifyChain(leaf, intermediate *x509.Certificate, at time.Time) (*x509.Certificate, error) {
	if !intermediate.BasicConstraintsValid || !intermediate.IsCA {
		return nil, verificationErr(ReasonIntermediateNotCA, fmt.Errorf("x5c[1] %q is not a CA certificate", intermediate.Subject.CommonName))
	}
	for i, c := range []*x509.Certificate{leaf, intermediate} {
		if err := validAt(c, at); err != nil {
			return nil, verificationErr(ReasonExpiredChain, fmt.Errorf("x5c[%d] %w", i, err))
		}
	}
	intermediates := x509.NewCertPool()
	intermediates.AddCert(intermediate)
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: intermediates,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		// x509 reports an expired root as an unknown authority; say what really happened.
		if root := v.expiredIssuer(intermediate, at); root != nil {
			return nil, verificationErr(ReasonExpiredChain, fmt.Errorf("root %w", validAt(root, at)))
		}
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, verificationErr(ReasonExpiredChain, err)
		}
		return nil, verificationErr(ReasonUntrustedRoot, err)
	}
	// The intermediate must be x5c[1] itself and the root one of ours, directly above it.
	var root *x509.Certificate
	for _, chain := range chains {
		if len(chain) == 3 && chain[1].Equal(intermediate) {
			root = chain[2]
			break
		}
	}
	if root == nil {
		return nil, verificationErr(ReasonUntrustedRoot, errors.New("no chain leaf → x5c[1] → trusted root"))
	}
	if !hasExtension(leaf, LeafOID) {
		return nil, verificationErr(ReasonMissingOID, fmt.Errorf("leaf certificate lacks OID %s", LeafOID))
	}
	if !hasExtension(intermediate, IntermediateOID) {
		return nil, verificationErr(ReasonMissingOID, fmt.Errorf("intermediate certificate lacks OID %s", IntermediateOID))
	}
	return root, nil
}

// expiredIssuer returns the trusted root that signed intermediate but is not valid at at, if any.
func (v *Verifier) expiredIssuer(intermediate *x509.Certificate, at time.Time) *x509.Certificate {
	for _, root := range v.rootCerts {
		if !bytes.Equal(intermediate.RawIssuer, root.RawSubject) || validAt(root, at) == nil {
			continue
		}
		if intermediate.CheckSignatureFrom(root) == nil {
			return root
		}
	}
	return nil
}

func validAt(c *x509.Certificate, at time.Time) error {
	if at.Before(c.NotBefore) || at.After(c.NotAfter) {
		return fmt.Errorf("%q is valid from %s to %s, not at %s", c.Subject.CommonName,
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func hasExtension(c *x509.Certificate, oid string) bool {
	for _, ext := range c.Extensions {
		if ext.Id.String() == oid {
			return true
		}
	}
	return false
}

// splitJWS splits a compact JWS into its three segments.
func splitJWS(jws string) (header, payload, sig string, err error) {
	if len(jws) > MaxJWSBytes {
		return "", "", "", verificationErr(ReasonMalformed, fmt.Errorf("jws is %d bytes, over the %d byte limit", len(jws), MaxJWSBytes))
	}
	header, rest, ok1 := strings.Cut(jws, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return "", "", "", verificationErr(ReasonMalformed, fmt.Errorf("jws has %d parts, want 3", strings.Count(jws, ".")+1))
	}
	return header, payload, sig, nil
}

// decodeSegment decodes a base64url JWS segment. Padding is tolerated, as in Apple's libraries.
func decodeSegment(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("bad base64url: %w", err)
	}
	return b, nil
}

// decodeStdBase64 decodes an x5c entry: standard base64, padded or not.
func decodeStdBase64(s string) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	return b, nil
}

// unmarshalObject decodes data, which must be a JSON object, into dst.
func unmarshalObject(data []byte, dst any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	return nil
}
