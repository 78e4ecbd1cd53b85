package appletest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/asnrelay/asnrelay/apple"
)

// Notification describes a notification for SignNotification. Zero fields get the defaults
// noted; everything else is left out of the payload when zero.
type Notification struct {
	Type       string    // notificationType; default "TEST"
	Subtype    string    // subtype
	UUID       string    // notificationUUID; default a random UUID
	Version    string    // default "2.0"
	SignedDate time.Time // default the middle of the leaf's validity, so that the chain is valid at it

	// Identity, sent in data (or appData with AppTransaction).
	BundleID    string // default "com.example.app"
	AppAppleID  int64
	Environment string // default "Sandbox"

	// Other data fields.
	BundleVersion            string
	Status                   apple.SubscriptionStatus
	ConsumptionRequestReason string

	// Signed into data.signedTransactionInfo and data.signedRenewalInfo. Empty bundleId,
	// environment and signedDate are filled from the notification.
	Transaction *apple.Transaction
	RenewalInfo *apple.RenewalInfo

	// Instead of data: at most one of these.
	Summary               *apple.Summary               // sent as summary, as is
	ExternalPurchaseToken *apple.ExternalPurchaseToken // sent as externalPurchaseToken, as is
	AppTransaction        *apple.AppTransaction        // sent as appData.signedAppTransactionInfo; empty bundleId, appAppleId, receiptType and receiptCreationDate are filled in

	// Extra sets top-level payload fields last, overriding the ones above: unknown fields,
	// fractional dates, odd values.
	Extra map[string]any
}

// SignNotification returns the signedPayload of n: a JWS signed by the CA, with its nested
// transaction, renewal info or app transaction signed by the CA too.
func (ca *CA) SignNotification(n Notification) (string, error) {
	payload, err := ca.notificationPayload(n)
	if err != nil {
		return "", err
	}
	return ca.SignJWS(payload)
}

// Body returns n as an App Store Server Notification request body: {"signedPayload":"..."}.
func (ca *CA) Body(n Notification) ([]byte, error) {
	signed, err := ca.SignNotification(n)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"signedPayload": signed})
}

func (ca *CA) notificationPayload(n Notification) (map[string]any, error) {
	if n.Type == "" {
		n.Type = string(apple.NotificationTypeTest)
	}
	if n.UUID == "" {
		n.UUID = newUUID()
	}
	if n.Version == "" {
		n.Version = "2.0"
	}
	if n.SignedDate.IsZero() {
		n.SignedDate = ca.Leaf.NotBefore.Add(ca.Leaf.NotAfter.Sub(ca.Leaf.NotBefore) / 2)
	}
	if n.BundleID == "" {
		n.BundleID = "com.example.app"
	}
	if n.Environment == "" {
		n.Environment = string(apple.EnvironmentSandbox)
	}
	signedDate := apple.TimestampOf(n.SignedDate)

	p := map[string]any{
		"notificationType": n.Type,
		"notificationUUID": n.UUID,
		"version":          n.Version,
		"signedDate":       signedDate,
	}
	if n.Subtype != "" {
		p["subtype"] = n.Subtype
	}
	switch {
	case n.Summary != nil:
		p["summary"] = n.Summary
	case n.ExternalPurchaseToken != nil:
		p["externalPurchaseToken"] = n.ExternalPurchaseToken
	case n.AppTransaction != nil:
		at := *n.AppTransaction
		if at.BundleID == "" {
			at.BundleID = n.BundleID
		}
		if at.AppAppleID == 0 {
			at.AppAppleID = n.AppAppleID
		}
		if at.ReceiptType == "" {
			at.ReceiptType = apple.Environment(n.Environment)
		}
		if at.ReceiptCreationDate == 0 {
			at.ReceiptCreationDate = signedDate
		}
		signed, err := ca.SignJWS(at)
		if err != nil {
			return nil, fmt.Errorf("sign app transaction: %w", err)
		}
		p["appData"] = apple.AppData{AppAppleID: n.AppAppleID, BundleID: n.BundleID, Environment: apple.Environment(n.Environment), SignedAppTransactionInfo: signed}
	default:
		data := apple.Data{
			AppAppleID:               n.AppAppleID,
			BundleID:                 n.BundleID,
			BundleVersion:            n.BundleVersion,
			Environment:              apple.Environment(n.Environment),
			Status:                   n.Status,
			ConsumptionRequestReason: apple.ConsumptionRequestReason(n.ConsumptionRequestReason),
		}
		if n.Transaction != nil {
			t := *n.Transaction
			if t.BundleID == "" {
				t.BundleID = n.BundleID
			}
			if t.Environment == "" {
				t.Environment = apple.Environment(n.Environment)
			}
			if t.SignedDate == 0 {
				t.SignedDate = signedDate
			}
			signed, err := ca.SignJWS(t)
			if err != nil {
				return nil, fmt.Errorf("sign transaction: %w", err)
			}
			data.SignedTransactionInfo = signed
		}
		if n.RenewalInfo != nil {
			r := *n.RenewalInfo
			if r.Environment == "" {
				r.Environment = apple.Environment(n.Environment)
			}
			if r.SignedDate == 0 {
				r.SignedDate = signedDate
			}
			signed, err := ca.SignJWS(r)
			if err != nil {
				return nil, fmt.Errorf("sign renewal info: %w", err)
			}
			data.SignedRenewalInfo = signed
		}
		p["data"] = data
	}
	for k, v := range n.Extra {
		p[k] = v
	}
	return p, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
