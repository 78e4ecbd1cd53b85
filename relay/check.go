package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
)

// CheckTimeout bounds the online check of one app in one environment,
// retries included.
const CheckTimeout = 20 * time.Second

// checkRetries is how often a check retries what Apple says is retryable:
// a diagnosis should come quickly.
const checkRetries = 1

// checkWindow is how far back the online check asks for notification
// history: a cheap read every working key may make.
const checkWindow = time.Hour

// Status texts of AppStatus.Status besides a diagnosis.
const (
	StatusActive     = "Active"
	StatusNoAPI      = "no api block: Apple API features off"
	StatusNotChecked = "not checked yet"
)

// AppStatus is how one app's In-App Purchase key fares in one environment.
type AppStatus struct {
	App         string `json:"app"`
	Environment string `json:"environment"`
	// API says whether the app has an api block at all.
	API bool `json:"api"`
	// Active is true when the key was read and a token signed and, when
	// Online, Apple accepted a request made with it.
	Active bool `json:"active"`
	// Online says whether Apple was asked.
	Online bool `json:"online"`
	// Status is StatusActive, StatusNoAPI or what is wrong.
	Status    string    `json:"status"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// OK reports whether the status is no reason for alarm: the key works, or
// there is no key to work.
func (s AppStatus) OK() bool { return !s.API || s.Active }

// Check validates cfg, reads every In-App Purchase key and signs a token with
// it; online, it also asks Apple for the last hour of notification history
// per app and environment. It returns one AppStatus per app and API
// environment the app accepts, in config order. The error is a config error
// (a key that is not an In-App Purchase key); what Apple answers is a status.
func Check(ctx context.Context, cfg *config.Config, online bool) ([]AppStatus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clients, err := newAppleClients(cfg, zerolog.Nop(), apple.ClientOptions{UserAgent: "asnrelay-check", MaxRetries: checkRetries})
	if err != nil {
		return nil, err
	}
	return checkApps(ctx, cfg, clients, online, time.Now), nil
}

// checkApps checks every app and environment at once and returns the
// statuses in config order.
func checkApps(ctx context.Context, cfg *config.Config, clients appleClients, online bool, now func() time.Time) []AppStatus {
	var out []AppStatus
	for i := range cfg.Apps {
		app := &cfg.Apps[i]
		for _, env := range apiEnvironmentsOf(app) {
			out = append(out, AppStatus{App: app.Name, Environment: string(env), API: app.API != nil})
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		st := &out[i]
		if !st.API {
			st.Status, st.CheckedAt = StatusNoAPI, now()
			continue
		}
		c := clients[st.App][apple.Environment(st.Environment)]
		wg.Go(func() { checkClient(ctx, c, st, online, now) })
	}
	wg.Wait()
	return out
}

// checkClient fills st for one client.
func checkClient(ctx context.Context, c *apple.Client, st *AppStatus, online bool, now func() time.Time) {
	defer func() { st.CheckedAt = now() }()
	if c == nil {
		st.Status = "no client for this environment"
		return
	}
	if _, err := c.Token(); err != nil {
		st.Status = err.Error()
		return
	}
	if !online {
		st.Active, st.Status = true, StatusActive
		return
	}
	st.Online = true
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	end := now()
	_, err := c.GetNotificationHistory(ctx, "", apple.NotificationHistoryRequest{
		StartDate: apple.TimestampOf(end.Add(-checkWindow)), EndDate: apple.TimestampOf(end),
	})
	if err != nil {
		st.Status = diagnose(c, err)
		return
	}
	st.Active, st.Status = true, StatusActive
}

// diagnose turns an error of the App Store Server API into a status line:
// Apple's answer (a 401 says what to check), or why Apple was not reached.
func diagnose(c *apple.Client, err error) string {
	var ae *apple.APIError
	var ne *apple.NetworkError
	switch {
	case errors.As(err, &ae):
		return strings.TrimPrefix(ae.Error(), "apple api "+ae.Endpoint+": ")
	case errors.As(err, &ne):
		return fmt.Sprintf("cannot reach %s: %v", config.RedactURL(c.BaseURL()), ne.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s within %s", config.RedactURL(c.BaseURL()), CheckTimeout)
	}
	return err.Error()
}
