package apple

import (
	"encoding/json"
	"fmt"
)

// DecodedJSON returns the document asnrelay sends to targets configured with
// "payload: decoded". Its shape is stable:
//
//	{
//	  "notification":   {...},       // the notification payload (responseBodyV2DecodedPayload)
//	  "transaction":    {...} | null, // data.signedTransactionInfo, decoded (JWSTransactionDecodedPayload)
//	  "renewalInfo":    {...} | null, // data.signedRenewalInfo, decoded (JWSRenewalInfoDecodedPayload)
//	  "appTransaction": {...} | null  // appData.signedAppTransactionInfo, decoded (JWSAppTransactionDecodedPayload)
//	}
//
// Each object is the payload exactly as Apple signed it (compacted): Apple's field names, dates
// as millisecond numbers, every field including ones this package does not model, and the
// nested signed fields of "notification" kept as the original JWS strings. A member is null
// when the notification has no such nested data. Whether the data was verified is not part of
// the document; asnrelay says so in its request headers.
func (n *Notification) DecodedJSON() ([]byte, error) {
	doc := struct {
		Notification   json.RawMessage `json:"notification"`
		Transaction    json.RawMessage `json:"transaction"`
		RenewalInfo    json.RawMessage `json:"renewalInfo"`
		AppTransaction json.RawMessage `json:"appTransaction"`
	}{}
	var err error
	if doc.Notification, err = rawOrMarshal(n.Raw, n); err != nil {
		return nil, err
	}
	if n.Transaction != nil {
		if doc.Transaction, err = rawOrMarshal(n.Transaction.Raw, n.Transaction); err != nil {
			return nil, err
		}
	}
	if n.RenewalInfo != nil {
		if doc.RenewalInfo, err = rawOrMarshal(n.RenewalInfo.Raw, n.RenewalInfo); err != nil {
			return nil, err
		}
	}
	if n.AppTransaction != nil {
		if doc.AppTransaction, err = rawOrMarshal(n.AppTransaction.Raw, n.AppTransaction); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode decoded notification: %w", err)
	}
	return b, nil
}

// rawOrMarshal returns raw, or v encoded when raw is empty (a model built in code, not decoded).
func rawOrMarshal(raw json.RawMessage, v any) (json.RawMessage, error) {
	if len(raw) > 0 {
		return raw, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode decoded notification: %w", err)
	}
	return b, nil
}
