package apple

import (
	"errors"
	"fmt"
)

// VerifyNotification verifies a notification's signedPayload, decodes it, and verifies and
// decodes the signed data nested in it (data.signedTransactionInfo, data.signedRenewalInfo,
// appData.signedAppTransactionInfo) into n.Transaction, n.RenewalInfo and n.AppTransaction. A
// failure anywhere fails the whole notification; the error then names the nested field. It
// does not check whose notification it is: see [CheckIdentity].
func (v *Verifier) VerifyNotification(signedPayload string) (*Notification, error) {
	payload, err := v.VerifyJWS(signedPayload)
	if err != nil {
		return nil, err
	}
	n, err := decodeNotificationPayload(payload)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	if err := decodeNested(n, func(field, jws string) ([]byte, error) {
		p, err := v.VerifyJWS(jws)
		if err != nil {
			return nil, nestedErr(field, err)
		}
		return p, nil
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// VerifyTransaction verifies and decodes a signed transaction (JWSTransaction).
func (v *Verifier) VerifyTransaction(jws string) (*Transaction, error) {
	return verifyAs[Transaction](v, jws, func(t *Transaction, raw []byte) { t.Raw = raw })
}

// VerifyRenewalInfo verifies and decodes signed renewal information (JWSRenewalInfo).
func (v *Verifier) VerifyRenewalInfo(jws string) (*RenewalInfo, error) {
	return verifyAs[RenewalInfo](v, jws, func(r *RenewalInfo, raw []byte) { r.Raw = raw })
}

// VerifyAppTransaction verifies and decodes a signed app transaction (JWSAppTransaction). Its
// chain is checked at receiptCreationDate.
func (v *Verifier) VerifyAppTransaction(jws string) (*AppTransaction, error) {
	return verifyAs[AppTransaction](v, jws, func(a *AppTransaction, raw []byte) { a.Raw = raw })
}

func verifyAs[T any](v *Verifier, jws string, setRaw func(*T, []byte)) (*T, error) {
	payload, err := v.VerifyJWS(jws)
	if err != nil {
		return nil, err
	}
	t := new(T)
	if err := unmarshalObject(payload, t); err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	setRaw(t, payload)
	return t, nil
}

// DecodeNotification decodes a signedPayload and the signed data nested in it without
// verifying anything. Use it for data Apple does not sign (Xcode, LocalTesting), when
// verification is switched off, and to show what an unverified notification claims (its
// notificationUUID, type, environment); never trust what it returns.
//
// Errors are *VerificationError with Reason malformed. When the outer payload decodes but
// nested data does not, DecodeNotification returns the Notification, without the nested
// model that failed, together with the error.
func DecodeNotification(signedPayload string) (*Notification, error) {
	payload, err := decodeUnverified(signedPayload)
	if err != nil {
		return nil, err
	}
	n, err := decodeNotificationPayload(payload)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	if err := decodeNested(n, func(field, jws string) ([]byte, error) {
		p, err := decodeUnverified(jws)
		if err != nil {
			return nil, nestedErr(field, err)
		}
		return p, nil
	}); err != nil {
		return n, err
	}
	return n, nil
}

// decodeUnverified returns the payload of a compact JWS without looking at its header or
// signature.
func decodeUnverified(jws string) ([]byte, error) {
	_, payloadB64, _, err := splitJWS(jws)
	if err != nil {
		return nil, err
	}
	payload, err := decodeSegment(payloadB64)
	if err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	return payload, nil
}

func decodeNotificationPayload(payload []byte) (*Notification, error) {
	n := new(Notification)
	if err := unmarshalObject(payload, n); err != nil {
		return nil, err
	}
	n.Raw = payload
	return n, nil
}

// decodeNested fills n.Transaction, n.RenewalInfo and n.AppTransaction from the nested JWS
// fields, getting each payload from open.
func decodeNested(n *Notification, open func(field, jws string) ([]byte, error)) error {
	if d := n.Data; d != nil {
		if d.SignedTransactionInfo != "" {
			t := new(Transaction)
			raw, err := decodeInto(open, "signedTransactionInfo", d.SignedTransactionInfo, t)
			if err != nil {
				return err
			}
			t.Raw, n.Transaction = raw, t
		}
		if d.SignedRenewalInfo != "" {
			r := new(RenewalInfo)
			raw, err := decodeInto(open, "signedRenewalInfo", d.SignedRenewalInfo, r)
			if err != nil {
				return err
			}
			r.Raw, n.RenewalInfo = raw, r
		}
	}
	if a := n.AppData; a != nil && a.SignedAppTransactionInfo != "" {
		at := new(AppTransaction)
		raw, err := decodeInto(open, "signedAppTransactionInfo", a.SignedAppTransactionInfo, at)
		if err != nil {
			return err
		}
		at.Raw, n.AppTransaction = raw, at
	}
	return nil
}

// decodeInto opens a nested JWS and decodes its payload into dst, returning the payload.
func decodeInto(open func(field, jws string) ([]byte, error), field, jws string, dst any) ([]byte, error) {
	payload, err := open(field, jws)
	if err != nil {
		return nil, err
	}
	if err := unmarshalObject(payload, dst); err != nil {
		return nil, verificationErr(ReasonMalformed, fmt.Errorf("%s: payload: %w", field, err))
	}
	return payload, nil
}

// nestedErr prefixes a nested field's name to its VerificationError.
func nestedErr(field string, err error) error {
	var ve *VerificationError
	if errors.As(err, &ve) {
		return verificationErr(ve.Reason, fmt.Errorf("%s: %w", field, ve.Err))
	}
	return fmt.Errorf("%s: %w", field, err)
}
