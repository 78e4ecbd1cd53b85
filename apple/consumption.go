package apple

import (
	"context"
	"net/http"
	"net/url"
)

// DeliveryStatus says whether the app delivered a working In-App Purchase (deliveryStatus of
// a ConsumptionRequest).
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryStatusDelivered               DeliveryStatus = "DELIVERED"
	DeliveryStatusUndeliveredQualityIssue DeliveryStatus = "UNDELIVERED_QUALITY_ISSUE"
	DeliveryStatusUndeliveredWrongItem    DeliveryStatus = "UNDELIVERED_WRONG_ITEM"
	DeliveryStatusUndeliveredServerOutage DeliveryStatus = "UNDELIVERED_SERVER_OUTAGE"
	DeliveryStatusUndeliveredOther        DeliveryStatus = "UNDELIVERED_OTHER"
)

// RefundPreference is the outcome the developer prefers for a refund request
// (refundPreference of a ConsumptionRequest).
type RefundPreference string

// Refund preferences.
const (
	RefundPreferenceDecline       RefundPreference = "DECLINE"
	RefundPreferenceGrantFull     RefundPreference = "GRANT_FULL"
	RefundPreferenceGrantProrated RefundPreference = "GRANT_PRORATED"
)

// MaxConsumptionPercentage is 100 % in milliunits.
const MaxConsumptionPercentage = 100_000

// ConsumptionRequest is the body of Send Consumption Information, in its current form (the
// one sent to /inApps/v2/transactions/consumption; the older ConsumptionRequestV1 with
// accountTenure, playTime and the like is deprecated).
type ConsumptionRequest struct {
	// CustomerConsented must be true: Apple answers 400 (errorCode 4000035) otherwise, and
	// without consent no answer may be sent at all.
	CustomerConsented     bool           `json:"customerConsented"`
	SampleContentProvided bool           `json:"sampleContentProvided"`
	DeliveryStatus        DeliveryStatus `json:"deliveryStatus"`
	// ConsumptionPercentage is the share consumed, in milliunits (0–100000). Leave it nil for
	// auto-renewable subscriptions: Apple computes their consumption itself.
	ConsumptionPercentage *int32 `json:"consumptionPercentage,omitempty"`
	// RefundPreference is optional.
	RefundPreference RefundPreference `json:"refundPreference,omitempty"`
}

// Validate reports the mistakes Apple would reject: no consent, no delivery status, a
// percentage out of range, GRANT_PRORATED with a zero percentage. Errors match
// ErrInvalidRequest. Unknown enumeration values pass, as Apple may add some.
func (r ConsumptionRequest) Validate() error {
	const ep = EndpointSendConsumptionInformation
	switch {
	case !r.CustomerConsented:
		return invalidRequest(ep, "customerConsented is false: consumption information may only be sent with the customer's consent")
	case r.DeliveryStatus == "":
		return invalidRequest(ep, "deliveryStatus is empty")
	case r.ConsumptionPercentage != nil && (*r.ConsumptionPercentage < 0 || *r.ConsumptionPercentage > MaxConsumptionPercentage):
		return invalidRequest(ep, "consumptionPercentage %d is not between 0 and %d milliunits", *r.ConsumptionPercentage, MaxConsumptionPercentage)
	case r.RefundPreference == RefundPreferenceGrantProrated && r.ConsumptionPercentage != nil && *r.ConsumptionPercentage == 0:
		return invalidRequest(ep, "refundPreference GRANT_PRORATED needs a consumptionPercentage above 0")
	}
	return nil
}

// SendConsumptionInformation answers a CONSUMPTION_REQUEST notification (PUT
// /inApps/v2/transactions/consumption/{transactionId}); Apple answers 202 Accepted. Apple
// wants the answer within 12 hours of the notification. The request is validated first.
func (c *Client) SendConsumptionInformation(ctx context.Context, transactionID string, req ConsumptionRequest) error {
	const ep = EndpointSendConsumptionInformation
	if transactionID == "" {
		return invalidRequest(ep, "empty transaction id")
	}
	if err := req.Validate(); err != nil {
		return err
	}
	return c.do(ctx, request{endpoint: ep, method: http.MethodPut, path: "/inApps/v2/transactions/consumption/" + url.PathEscape(transactionID), body: req})
}
