package relay

import (
	"fmt"
	"slices"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

const (
	// ConsumptionDeadline is how long Apple waits for the answer to a
	// CONSUMPTION_REQUEST.
	ConsumptionDeadline = 12 * time.Hour
	// ConsumptionSafetyMargin keeps the scheduled send this far before the
	// deadline, whatever the review delay, so that retries have room.
	ConsumptionSafetyMargin = 30 * time.Minute
)

// Where an answer's fields came from.
const (
	sourcePolicy   = "policy"
	sourceProvider = "provider"
	sourceOverride = "override"
)

var (
	deliveryStatuses = []string{
		string(apple.DeliveryStatusDelivered), string(apple.DeliveryStatusUndeliveredQualityIssue),
		string(apple.DeliveryStatusUndeliveredWrongItem), string(apple.DeliveryStatusUndeliveredServerOutage),
		string(apple.DeliveryStatusUndeliveredOther),
	}
	refundPreferences = []string{
		string(apple.RefundPreferenceDecline), string(apple.RefundPreferenceGrantFull), string(apple.RefundPreferenceGrantProrated),
	}
)

// consumptionSchedule returns when Apple stops waiting for the answer to a
// request and when to send it. The deadline runs from the earlier of
// Apple's signedDate and our receipt: a notification Apple had to retry
// arrives late, but its clock started when Apple first sent it. The send
// time is after the review delay and at least ConsumptionSafetyMargin
// before the deadline (never before receipt).
func consumptionSchedule(received, signed time.Time, reviewDelay time.Duration) (deadline, sendAt time.Time) {
	start := received
	if !signed.IsZero() && signed.Before(received) {
		start = signed
	}
	deadline = start.Add(ConsumptionDeadline)
	sendAt = received.Add(reviewDelay)
	if latest := deadline.Add(-ConsumptionSafetyMargin); sendAt.After(latest) {
		sendAt = latest
	}
	if sendAt.Before(received) {
		sendAt = received
	}
	return deadline, sendAt
}

// refundPreference picks refundPreference for reason: by_reason, then
// default; "" leaves it out of the answer.
func refundPreference(p config.RefundPreference, reason string) apple.RefundPreference {
	if pref, ok := p.ByReason[reason]; ok {
		return apple.RefundPreference(pref)
	}
	return apple.RefundPreference(p.Default)
}

// policyAnswer is the answer the app's consumption policy gives for reason.
func policyAnswer(c config.Consumption, reason string) apple.ConsumptionRequest {
	return apple.ConsumptionRequest{
		CustomerConsented:     c.CustomerConsented,
		DeliveryStatus:        apple.DeliveryStatus(c.DeliveryStatus),
		SampleContentProvided: c.SampleContentProvided,
		RefundPreference:      refundPreference(c.RefundPreference, reason),
	}
}

// applyFields returns a with the fields set in f replacing its own.
func applyFields(a apple.ConsumptionRequest, f store.ConsumptionFields) apple.ConsumptionRequest {
	if f.CustomerConsented != nil {
		a.CustomerConsented = *f.CustomerConsented
	}
	if f.DeliveryStatus != nil {
		a.DeliveryStatus = apple.DeliveryStatus(*f.DeliveryStatus)
	}
	if f.SampleContentProvided != nil {
		a.SampleContentProvided = *f.SampleContentProvided
	}
	if f.ConsumptionPercentage != nil {
		p := *f.ConsumptionPercentage
		a.ConsumptionPercentage = &p
	}
	if f.RefundPreference != nil {
		a.RefundPreference = apple.RefundPreference(*f.RefundPreference)
	}
	return a
}

// checkFields reports a field value Apple does not know, naming the field.
func checkFields(f store.ConsumptionFields) error {
	if f.DeliveryStatus != nil && !slices.Contains(deliveryStatuses, *f.DeliveryStatus) {
		return fmt.Errorf("delivery_status %q is not one of %v", *f.DeliveryStatus, deliveryStatuses)
	}
	if f.RefundPreference != nil && *f.RefundPreference != "" && !slices.Contains(refundPreferences, *f.RefundPreference) {
		return fmt.Errorf("refund_preference %q is not one of %v (or \"\" to leave it out)", *f.RefundPreference, refundPreferences)
	}
	if p := f.ConsumptionPercentage; p != nil && (*p < 0 || *p > apple.MaxConsumptionPercentage) {
		return fmt.Errorf("consumption_percentage %d is not between 0 and %d milliunits", *p, apple.MaxConsumptionPercentage)
	}
	return nil
}

// storedAnswer is the record of an answer.
func storedAnswer(a apple.ConsumptionRequest) *store.ConsumptionAnswer {
	return &store.ConsumptionAnswer{
		CustomerConsented: a.CustomerConsented, DeliveryStatus: string(a.DeliveryStatus),
		SampleContentProvided: a.SampleContentProvided, ConsumptionPercentage: a.ConsumptionPercentage,
		RefundPreference: string(a.RefundPreference),
	}
}

// preferenceLabel is the metric label of an answer's refund preference.
func preferenceLabel(a *store.ConsumptionAnswer) string {
	if a == nil || a.RefundPreference == "" {
		return "none"
	}
	if !slices.Contains(refundPreferences, a.RefundPreference) {
		return "other"
	}
	return a.RefundPreference
}
