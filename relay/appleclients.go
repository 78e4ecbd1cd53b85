package relay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
)

// apiEnvironments are the environments the App Store Server API serves; one
// In-App Purchase key works for both.
var apiEnvironments = []apple.Environment{apple.EnvironmentProduction, apple.EnvironmentSandbox}

// appleClients are the App Store Server API clients of every app with an api
// block, per environment (Production, Sandbox): app name -> environment -> client.
type appleClients = map[string]map[apple.Environment]*apple.Client

// newAppleClients builds a client per app with an api block and per API
// environment. base carries what every client shares (Verifier, Now,
// HTTPClient, OnAttempt...); the app's key, identifiers and base URL are
// filled in. A key that is not an In-App Purchase key is a config error
// naming apps[i].api.private_key_file.
func newAppleClients(cfg *config.Config, log zerolog.Logger, base apple.ClientOptions) (appleClients, error) {
	out := make(appleClients)
	for i := range cfg.Apps {
		app := &cfg.Apps[i]
		if app.API == nil {
			continue
		}
		keyPath := fmt.Sprintf("apps[%d].api.private_key_file", i)
		file := app.API.PrivateKeyFile
		if file == "" {
			file = "private key"
		}
		key, err := apple.ParsePrivateKey(app.API.PrivateKey)
		if err != nil {
			return nil, &config.Error{Key: keyPath, Msg: fmt.Sprintf("%s: %v", file, err), Err: err}
		}
		clients := make(map[apple.Environment]*apple.Client, len(apiEnvironments))
		for _, env := range apiEnvironments {
			opts := base
			opts.IssuerID, opts.KeyID, opts.BundleID, opts.Key = app.API.IssuerID, app.API.KeyID, app.BundleID, key
			opts.Environment, opts.BaseURL = env, app.API.BaseURL
			c, err := apple.NewClient(opts)
			if err != nil {
				return nil, &config.Error{Key: fmt.Sprintf("apps[%d].api", i), Msg: err.Error(), Err: err}
			}
			clients[env] = c
		}
		out[app.Name] = clients
		log.Debug().Str("app", app.Name).Str("key_id", app.API.KeyID).Str("base_url", config.RedactURL(clients[apple.EnvironmentProduction].BaseURL())).
			Msg("App Store Server API client ready")
	}
	return out, nil
}

// appleClient returns the App Store Server API client of app for env; false
// when the app has no api block or env is not Production or Sandbox.
func (r *Relay) appleClient(app string, env apple.Environment) (*apple.Client, bool) {
	c, ok := r.appleClients[app][env]
	return c, ok
}

// apiEnvironmentsOf returns the API environments app accepts notifications
// from, in Production, Sandbox order; both when it lists neither (an app that
// only takes Xcode data can still look things up).
func apiEnvironmentsOf(app *config.App) []apple.Environment {
	var out []apple.Environment
	for _, env := range apiEnvironments {
		if slices.Contains(app.EnvironmentList(), string(env)) {
			out = append(out, env)
		}
	}
	if len(out) == 0 {
		return apiEnvironments
	}
	return out
}

// observeAppleAttempt counts one HTTP attempt to the App Store Server API:
// code is the HTTP status, or "error" when there was no answer.
func (m *metrics) observeAppleAttempt(a apple.APIAttempt) {
	code := "error"
	if a.Status != 0 {
		code = strconv.Itoa(a.Status)
	}
	m.appleRequests.WithLabelValues(a.Endpoint, code).Inc()
}

// appleState is the daemon's Apple work that the admin API reads: the
// latest check per app and the backfills running. The zero value is ready.
type appleState struct {
	mu        sync.Mutex
	checks    map[string][]AppStatus // app -> one per API environment
	backfills map[string]bool        // apps with a backfill running
	// work ends when the relay stops its background work; backfills asked
	// for over the admin API end with it.
	work context.Context
}

func (s *appleState) setWork(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.work = ctx
}

// bindWork returns a context that ends with ctx or with the relay's
// background work, whichever ends first.
func (s *appleState) bindWork(ctx context.Context) (context.Context, context.CancelFunc) {
	s.mu.Lock()
	work := s.work
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	if work == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(work, cancel)
	return ctx, func() { stop(); cancel() }
}

// setChecks records the statuses of a check.
func (s *appleState) setChecks(statuses []AppStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checks == nil {
		s.checks = make(map[string][]AppStatus)
	}
	byApp := make(map[string][]AppStatus)
	for _, st := range statuses {
		byApp[st.App] = append(byApp[st.App], st)
	}
	maps.Copy(s.checks, byApp)
}

// checksOf returns the statuses last recorded for app.
func (s *appleState) checksOf(app string) []AppStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.checks[app])
}

// startBackfill marks a backfill of app as running; false when one already is.
func (s *appleState) startBackfill(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backfills[app] {
		return false
	}
	if s.backfills == nil {
		s.backfills = make(map[string]bool)
	}
	s.backfills[app] = true
	return true
}

func (s *appleState) endBackfill(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.backfills, app)
}
