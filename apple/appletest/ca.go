// Package appletest mints App Store–shaped signed data with a throwaway certificate chain, for
// tests and for the send-test command.
//
// A CA is a root → intermediate → leaf chain built like Apple's (ECDSA P-256 keys, Apple's
// OIDs on leaf and intermediate). Trust its Root in an apple.Verifier and everything it signs
// verifies like data from Apple; Options mint deliberately broken chains.
package appletest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/asnrelay/asnrelay/apple"
)

// Validity is a certificate validity window.
type Validity struct {
	NotBefore, NotAfter time.Time
}

// Options describe a CA, including broken ones.
type Options struct {
	// Validity applies to all three certificates unless overridden below.
	Validity Validity
	// Per-certificate validity; nil means Validity.
	Root, Intermediate, Leaf *Validity

	NoLeafOID         bool // leaf without OID 1.2.840.113635.100.6.11.1
	NoIntermediateOID bool // intermediate without OID 1.2.840.113635.100.6.2.1
	IntermediateNotCA bool // intermediate that is not a CA (basic constraints CA:false)
}

// CA is a throwaway root → intermediate → leaf chain with Apple's OIDs, and the keys to sign
// with it. Its fields must not be modified.
type CA struct {
	Root, Intermediate, Leaf          *x509.Certificate
	RootKey, IntermediateKey, LeafKey *ecdsa.PrivateKey
}

// New mints a CA whose three certificates are valid from notBefore to notAfter.
func New(notBefore, notAfter time.Time) (*CA, error) {
	return NewWithOptions(Options{Validity: Validity{NotBefore: notBefore, NotAfter: notAfter}})
}

// NewWithOptions mints a CA as opts describe.
func NewWithOptions(opts Options) (*CA, error) {
	pick := func(v *Validity) Validity {
		if v != nil {
			return *v
		}
		return opts.Validity
	}
	ca := &CA{}
	var err error
	if ca.RootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	if ca.IntermediateKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("generate intermediate key: %w", err)
	}
	if ca.LeafKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}

	rootTmpl := template("asnrelay test root CA", pick(opts.Root))
	rootTmpl.IsCA, rootTmpl.BasicConstraintsValid = true, true
	rootTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	if ca.Root, err = create(rootTmpl, rootTmpl, ca.RootKey, ca.RootKey); err != nil {
		return nil, fmt.Errorf("create root certificate: %w", err)
	}

	interTmpl := template("asnrelay test intermediate CA", pick(opts.Intermediate))
	interTmpl.BasicConstraintsValid = true
	if opts.IntermediateNotCA {
		interTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	} else {
		interTmpl.IsCA, interTmpl.MaxPathLenZero = true, true
		interTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if !opts.NoIntermediateOID {
		interTmpl.ExtraExtensions = append(interTmpl.ExtraExtensions, appleExtension(apple.IntermediateOID))
	}
	if ca.Intermediate, err = create(interTmpl, ca.Root, ca.IntermediateKey, ca.RootKey); err != nil {
		return nil, fmt.Errorf("create intermediate certificate: %w", err)
	}

	leafTmpl := template("asnrelay test signing", pick(opts.Leaf))
	leafTmpl.BasicConstraintsValid = true
	leafTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if !opts.NoLeafOID {
		leafTmpl.ExtraExtensions = append(leafTmpl.ExtraExtensions, appleExtension(apple.LeafOID))
	}
	if ca.Leaf, err = create(leafTmpl, ca.Intermediate, ca.LeafKey, ca.IntermediateKey); err != nil {
		return nil, fmt.Errorf("create leaf certificate: %w", err)
	}
	return ca, nil
}

func template(cn string, v Validity) *x509.Certificate {
	b := make([]byte, 16)
	rand.Read(b) // never fails since Go 1.24
	b[0] &= 0x7f // positive
	return &x509.Certificate{
		SerialNumber: new(big.Int).Add(new(big.Int).SetBytes(b), big.NewInt(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"asnrelay test"}},
		NotBefore:    v.NotBefore,
		NotAfter:     v.NotAfter,
	}
}

func create(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// appleExtension is a non-critical extension with Apple's OID and an ASN.1 NULL value, as in
// Apple's certificates.
func appleExtension(oid string) pkix.Extension {
	var id asn1.ObjectIdentifier
	for _, part := range strings.Split(oid, ".") {
		n, _ := strconv.Atoi(part)
		id = append(id, n)
	}
	return pkix.Extension{Id: id, Value: []byte{0x05, 0x00}}
}

// RootPEM returns the root certificate in PEM, for an apple.root_certs file.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})
}

// X5C returns the chain as a JWS x5c header value: leaf, intermediate, root, each standard
// base64 DER.
func (ca *CA) X5C() []string {
	return []string{
		base64.StdEncoding.EncodeToString(ca.Leaf.Raw),
		base64.StdEncoding.EncodeToString(ca.Intermediate.Raw),
		base64.StdEncoding.EncodeToString(ca.Root.Raw),
	}
}

// SignJWS signs payload, encoded as JSON, as Apple does: a compact JWS with header
// {"alg":"ES256","x5c":[leaf, intermediate, root]} and a raw R‖S signature by the leaf key.
// A payload that is already []byte or json.RawMessage is used as is.
func (ca *CA) SignJWS(payload any) (string, error) {
	return ca.SignJWSWithHeader(map[string]any{"alg": "ES256", "x5c": ca.X5C()}, payload)
}

// SignJWSWithHeader is SignJWS with the given header, used verbatim: tests use it for other
// algorithms, other x5c chains and extra header fields. The signature is always ES256 by the
// leaf key.
func (ca *CA) SignJWSWithHeader(header map[string]any, payload any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("encode jws header: %w", err)
	}
	var p []byte
	switch v := payload.(type) {
	case []byte:
		p = v
	case json.RawMessage:
		p = v
	default:
		if p, err = json.Marshal(payload); err != nil {
			return "", fmt.Errorf("encode jws payload: %w", err)
		}
	}
	signingInput := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sig, err := jwt.SigningMethodES256.Sign(signingInput, ca.LeafKey)
	if err != nil {
		return "", fmt.Errorf("sign jws: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
