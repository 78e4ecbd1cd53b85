package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

const (
	// ProviderTimeout bounds a provider_url call, answer included.
	ProviderTimeout = 10 * time.Second
	// maxProviderAnswer bounds what is read of a provider's answer.
	maxProviderAnswer = 64 << 10
)

// ProviderRequest is what asnrelay POSTs to an app's consumption.provider_url
// for each CONSUMPTION_REQUEST before answering Apple.
type ProviderRequest struct {
	App              string `json:"app"`
	Environment      string `json:"environment"`
	TransactionID    string `json:"transaction_id"`
	NotificationUUID string `json:"notification_uuid"`
	// Request is 1 for the transaction's first CONSUMPTION_REQUEST, 2 when
	// Apple asks again, and so on.
	Request int `json:"request"`
	// Reason is Apple's consumptionRequestReason.
	Reason string `json:"reason"`
	// Deadline is when Apple stops waiting for the answer.
	Deadline time.Time `json:"deadline"`
	// Transaction is the decoded, verified transaction.
	Transaction json.RawMessage `json:"transaction,omitempty"`
	// Policy is the answer the configuration gives, sent unless the answer
	// overrides some of its fields.
	Policy store.ConsumptionAnswer `json:"policy"`
}

// askProvider POSTs req to providerURL and returns the fields the answer sets: a 2xx
// with a JSON object (unknown keys are ignored; 204 or an empty body sets
// nothing). Anything else is an error, and the caller uses its policy.
func askProvider(ctx context.Context, client *http.Client, providerURL, userAgent string, req ProviderRequest) (store.ConsumptionFields, error) {
	var f store.ConsumptionFields
	body, err := json.Marshal(req)
	if err != nil {
		return f, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, providerURL, bytes.NewReader(body))
	if err != nil {
		return f, fmt.Errorf("provider_url: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(hr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return f, fmt.Errorf("provider_url: no answer within the timeout")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the configured one; say what went wrong
		}
		return f, fmt.Errorf("provider_url: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderAnswer+1))
	if err != nil {
		return f, fmt.Errorf("provider_url: read answer: %w", err)
	}
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return f, fmt.Errorf("provider_url: HTTP %d", resp.StatusCode)
	case len(data) > maxProviderAnswer:
		return f, fmt.Errorf("provider_url: answer larger than %d bytes", maxProviderAnswer)
	}
	f, err = parseProviderAnswer(data)
	if err != nil {
		return f, fmt.Errorf("provider_url: %w", err)
	}
	return f, nil
}

// parseProviderAnswer reads a provider's answer: empty, null, or a JSON
// object whose known keys hold valid values. Unknown keys are ignored.
func parseProviderAnswer(data []byte) (store.ConsumptionFields, error) {
	var f store.ConsumptionFields
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return store.ConsumptionFields{}, fmt.Errorf("answer is not the expected JSON object: %v", err)
	}
	if err := checkFields(f); err != nil {
		return store.ConsumptionFields{}, err
	}
	return f, nil
}
