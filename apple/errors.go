package apple

import "errors"

// Reason says why signed data was rejected. The values are stable: they are stored with
// unverified notifications, used as metric labels and shown to operators.
type Reason string

// Reasons for rejecting signed data ([Verifier]).
const (
	ReasonMalformed         Reason = "malformed"           // bad base64, JSON or JWS structure, or over a size limit
	ReasonBadAlgorithm      Reason = "bad_algorithm"       // header alg is not ES256
	ReasonBadChainLength    Reason = "bad_chain_length"    // header x5c does not hold exactly 3 certificates
	ReasonBadCertificate    Reason = "bad_certificate"     // an x5c certificate does not decode or parse, or the leaf key is not ECDSA P-256
	ReasonUntrustedRoot     Reason = "untrusted_root"      // leaf and intermediate do not chain to a trusted root
	ReasonExpiredChain      Reason = "expired_chain"       // a certificate of the chain is not valid at signedDate
	ReasonMissingOID        Reason = "missing_oid"         // the leaf or intermediate lacks Apple's OID
	ReasonIntermediateNotCA Reason = "intermediate_not_ca" // x5c[1] is not a CA certificate
	ReasonBadSignature      Reason = "bad_signature"       // the ES256 signature does not match
)

// Reasons for rejecting a verified notification that belongs to another app ([CheckIdentity]).
const (
	ReasonWrongBundle      Reason = "wrong_bundle"
	ReasonWrongAppAppleID  Reason = "wrong_app_apple_id"
	ReasonWrongEnvironment Reason = "wrong_environment"
)

// VerificationError reports signed data that failed verification or an identity check.
type VerificationError struct {
	Reason Reason
	Err    error
}

// Error reads like "verify jws: untrusted_root: x509: certificate signed by unknown authority"
// or "check identity: wrong_bundle: bundleId "com.x" does not match "com.y"".
func (e *VerificationError) Error() string {
	op := "verify jws"
	switch e.Reason {
	case ReasonWrongBundle, ReasonWrongAppAppleID, ReasonWrongEnvironment:
		op = "check identity"
	}
	if e.Err == nil {
		return op + ": " + string(e.Reason)
	}
	return op + ": " + string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *VerificationError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the first *VerificationError in err's chain, or "" if there
// is none.
func ReasonOf(err error) Reason {
	var ve *VerificationError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

func verificationErr(reason Reason, err error) *VerificationError {
	return &VerificationError{Reason: reason, Err: err}
}
