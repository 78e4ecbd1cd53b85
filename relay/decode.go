package relay

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"

	"github.com/asnrelay/asnrelay/apple"
)

// Kinds of signed data Decode recognises.
const (
	KindNotification   = "notification"
	KindTransaction    = "transaction"
	KindRenewalInfo    = "renewalInfo"
	KindAppTransaction = "appTransaction"
	KindUnknown        = "unknown"
)

// DecodeOptions say how Decode trusts what it reads.
type DecodeOptions struct {
	// RootCertFiles are trusted besides Apple Root CA - G3 (PEM or DER).
	RootCertFiles []string
	// NoVerify decodes without checking signatures.
	NoVerify bool
}

// Decoded is what Decode found.
type Decoded struct {
	Kind     string
	Verified bool
	// JSON is indented: for a notification the document targets with
	// `payload: decoded` receive, otherwise the signed payload.
	JSON []byte
}

// Decode reads a notification request body ({"signedPayload": ...}) or a
// bare JWS (notification, transaction, renewal info or app transaction),
// verifies it offline unless told not to, and returns it decoded.
func Decode(input []byte, opts DecodeOptions) (*Decoded, error) {
	jws := string(bytes.TrimSpace(input))
	if len(jws) > 0 && jws[0] == '{' {
		var body struct {
			SignedPayload string `json:"signedPayload"`
		}
		if err := json.Unmarshal(input, &body); err != nil || body.SignedPayload == "" {
			return nil, fmt.Errorf("input is JSON but not a body with a string signedPayload")
		}
		jws = body.SignedPayload
	}
	payload, err := apple.DecodeJWS(jws)
	if err != nil {
		return nil, err
	}
	d := &Decoded{Kind: kindOf(payload), Verified: !opts.NoVerify}
	var roots []*x509.Certificate
	for _, path := range opts.RootCertFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("root certificate: %w", err)
		}
		certs, err := apple.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("root certificate %s: %w", path, err)
		}
		roots = append(roots, certs...)
	}
	v := apple.NewVerifier(roots)

	var out []byte
	switch {
	case d.Kind == KindNotification:
		var n *apple.Notification
		if opts.NoVerify {
			n, err = apple.DecodeNotification(jws)
		} else {
			n, err = v.VerifyNotification(jws)
		}
		if n == nil {
			return nil, err
		}
		out, err = n.DecodedJSON()
	case opts.NoVerify:
		out = payload
	case d.Kind == KindTransaction:
		var t *apple.Transaction
		if t, err = v.VerifyTransaction(jws); err == nil {
			out = t.Raw
		}
	case d.Kind == KindRenewalInfo:
		var r *apple.RenewalInfo
		if r, err = v.VerifyRenewalInfo(jws); err == nil {
			out = r.Raw
		}
	case d.Kind == KindAppTransaction:
		var a *apple.AppTransaction
		if a, err = v.VerifyAppTransaction(jws); err == nil {
			out = a.Raw
		}
	default:
		out, err = v.VerifyJWS(jws)
	}
	if err != nil {
		return nil, err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		return nil, err
	}
	pretty.WriteByte('\n')
	d.JSON = pretty.Bytes()
	return d, nil
}

// kindOf guesses what a payload is from the fields only that kind has.
func kindOf(payload []byte) string {
	var keys map[string]json.RawMessage
	if json.Unmarshal(payload, &keys) != nil {
		return KindUnknown
	}
	has := func(k string) bool { _, ok := keys[k]; return ok }
	switch {
	case has("notificationType"):
		return KindNotification
	case has("autoRenewProductId") || has("autoRenewStatus"):
		return KindRenewalInfo
	case has("transactionId"):
		return KindTransaction
	case has("receiptType") || has("appTransactionId"):
		return KindAppTransaction
	}
	return KindUnknown
}
