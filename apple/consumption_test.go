package apple_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/asnrelay/asnrelay/apple"
)

func TestConsumptionRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  apple.ConsumptionRequest
		ok   bool
	}{
		{"minimal", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered}, true},
		{"full", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](100000), RefundPreference: apple.RefundPreferenceGrantProrated}, true},
		{"unknown values pass", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: "SOMETHING_NEW", RefundPreference: "MAYBE"}, true},
		{"prorated without a percentage (auto-renewable)", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, RefundPreference: apple.RefundPreferenceGrantProrated}, true},
		{"no consent", apple.ConsumptionRequest{DeliveryStatus: apple.DeliveryStatusDelivered}, false},
		{"no delivery status", apple.ConsumptionRequest{CustomerConsented: true}, false},
		{"percentage over 100%", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](100001)}, false},
		{"negative percentage", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](-1)}, false},
		{"prorated at 0%", apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](0), RefundPreference: apple.RefundPreferenceGrantProrated}, false},
	}
	for _, tt := range tests {
		err := tt.req.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, apple.ErrInvalidRequest)) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
	b, _ := json.Marshal(apple.ConsumptionRequest{CustomerConsented: true, DeliveryStatus: apple.DeliveryStatusDelivered, ConsumptionPercentage: ptr[int32](0)})
	if want := `{"customerConsented":true,"sampleContentProvided":false,"deliveryStatus":"DELIVERED","consumptionPercentage":0}`; string(b) != want {
		t.Errorf("JSON %s, want %s (a 0 percentage is sent when set)", b, want)
	}
}
