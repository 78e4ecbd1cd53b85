package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/store"
)

// Backfill limits and defaults.
const (
	// DefaultBackfillWindow is how far back a backfill reaches when not told,
	// and how far backfill_on_start reaches when the app has no notification yet.
	DefaultBackfillWindow = 72 * time.Hour
	// MaxBackfillWindow is how far back Apple keeps notification history.
	MaxBackfillWindow = 180 * 24 * time.Hour
	// BackfillTimeout bounds one backfill: Apple's history comes in pages of
	// 20, rate-limited per app.
	BackfillTimeout = 30 * time.Minute
	// backfillOverlap moves backfill_on_start's window back from the last
	// notification received, for what Apple signed while the relay was going down.
	backfillOverlap = 10 * time.Minute
	// backfillSlack is how much older than MaxBackfillWindow a start may be
	// and still be taken as "as far back as Apple goes".
	backfillSlack = time.Hour
	// backfillRemoteAddr is the RemoteAddr of notifications a backfill stores.
	backfillRemoteAddr = "backfill"
)

// BackfillRequest is the body of POST /api/v1/backfill: fetch Apple's
// notification history of App between Start and End (default now) and store
// every notification the relay does not hold yet.
type BackfillRequest struct {
	App string `json:"app"`
	// Environment is Production or Sandbox; empty means each of them the app
	// accepts.
	Environment  string    `json:"environment,omitempty"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end,omitzero"`
	OnlyFailures bool      `json:"only_failures,omitempty"`
}

// BackfillResult counts what a backfill did: Fetched notifications from
// Apple's history, of which Stored were new and went through the pipeline and
// Skipped were already held (verified).
type BackfillResult struct {
	App          string    `json:"app"`
	Environments []string  `json:"environments"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Fetched      int       `json:"fetched"`
	Stored       int       `json:"stored"`
	Skipped      int       `json:"skipped"`
}

// errBackfillRunning is answered while another backfill of the same app runs.
var errBackfillRunning = errors.New("a backfill of this app is already running")

// backfill runs req (already checked by checkBackfill): it walks Apple's
// notification history page by page and appends each notification not held
// yet, exactly as ingest would, so that verification, dedupe and routing
// apply. On an error it returns what it did so far with the error.
func (r *Relay) backfill(ctx context.Context, req BackfillRequest, envs []apple.Environment) (BackfillResult, error) {
	res := BackfillResult{App: req.App, Start: req.Start, End: req.End, Environments: []string{}}
	if !r.appleState.startBackfill(req.App) {
		return res, errBackfillRunning
	}
	defer r.appleState.endBackfill(req.App)
	ctx, cancel := context.WithTimeout(ctx, BackfillTimeout)
	defer cancel()

	log := r.log.With().Str("app", req.App).Time("start", req.Start).Time("end", req.End).Logger()
	seen := make(map[string]bool)
	var err error
	for _, env := range envs {
		res.Environments = append(res.Environments, string(env))
		if err = r.backfillEnvironment(ctx, req, env, seen, &res); err != nil {
			break
		}
	}
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	ev.Strs("environments", res.Environments).Int("fetched", res.Fetched).Int("stored", res.Stored).
		Int("skipped", res.Skipped).Msg("backfill")
	return res, err
}

func (r *Relay) backfillEnvironment(ctx context.Context, req BackfillRequest, env apple.Environment, seen map[string]bool, res *BackfillResult) error {
	client, ok := r.appleClient(req.App, env)
	if !ok {
		return fmt.Errorf("backfill %s %s: the app has no api block", req.App, env)
	}
	pages := client.NotificationHistoryPages(ctx, apple.NotificationHistoryRequest{
		StartDate: apple.TimestampOf(req.Start), EndDate: apple.TimestampOf(req.End), OnlyFailures: req.OnlyFailures,
	})
	for page, err := range pages {
		if err != nil {
			return fmt.Errorf("backfill %s %s: %w", req.App, env, err)
		}
		before := res.Stored
		for _, item := range page.NotificationHistory {
			res.Fetched++
			stored, err := r.backfillOne(req.App, item.SignedPayload, seen)
			if err != nil {
				return fmt.Errorf("backfill %s %s: %w", req.App, env, err)
			}
			if stored {
				res.Stored++
			} else {
				res.Skipped++
			}
		}
		if res.Stored > before {
			r.processor.wake() // process each page while the next is fetched
		}
	}
	return nil
}

// backfillOne appends one notification of Apple's history unless a verified
// notification with its notificationUUID is held (or this backfill stored it
// already). The UUID is read unverified: the pipeline verifies, and a forged
// one can at worst skip or store, never deliver, something unverified.
func (r *Relay) backfillOne(app, signedPayload string, seen map[string]bool) (bool, error) {
	if signedPayload == "" {
		return false, nil
	}
	if n, err := apple.DecodeNotification(signedPayload); err == nil && n.NotificationUUID != "" {
		if seen[n.NotificationUUID] {
			return false, nil
		}
		seen[n.NotificationUUID] = true
		held, err := r.db.HasUUID(n.NotificationUUID)
		if err != nil {
			return false, err
		}
		if held {
			return false, nil
		}
	}
	body, err := json.Marshal(struct {
		SignedPayload string `json:"signedPayload"`
	}{signedPayload})
	if err != nil {
		return false, err
	}
	if _, err := r.db.Append(store.Incoming{
		App: app, Body: body, RemoteAddr: backfillRemoteAddr, ContentType: "application/json", ReceivedAt: r.now(),
	}); err != nil {
		return false, err
	}
	return true, nil
}

// checkBackfill fills in req's defaults and checks it; errors are the
// caller's mistakes (400). It returns the environments to walk.
func (r *Relay) checkBackfill(req *BackfillRequest) ([]apple.Environment, error) {
	app, ok := r.apps[req.App]
	switch {
	case req.App == "":
		return nil, errBadRequest("app is required")
	case !ok:
		return nil, errNotFound("no app %q in the config", req.App)
	case app.API == nil:
		return nil, errBadRequest("app %q has no api block: backfill needs its In-App Purchase key", req.App)
	}
	var envs []apple.Environment
	switch env := apple.Environment(req.Environment); {
	case env == "":
		envs = apiEnvironmentsOf(app)
	case slices.Contains(apiEnvironments, env):
		envs = []apple.Environment{env}
	default:
		return nil, errBadRequest("environment %q: want Production or Sandbox", req.Environment)
	}
	now := r.now()
	if req.End.IsZero() || req.End.After(now) {
		req.End = now
	}
	// A start a client computed as 180 days ago is a little older by now;
	// Apple wants it within 180 days of its own clock.
	earliest := now.Add(-MaxBackfillWindow).Add(time.Minute)
	if req.Start.Before(earliest) && !req.Start.Before(earliest.Add(-backfillSlack)) {
		req.Start = earliest
	}
	switch {
	case req.Start.IsZero():
		return nil, errBadRequest("start is required")
	case !req.Start.Before(req.End):
		return nil, errBadRequest("start %s is not before end %s", req.Start.Format(time.RFC3339), req.End.Format(time.RFC3339))
	case req.Start.Before(earliest):
		return nil, errBadRequest("start %s is more than 180 days ago: Apple keeps notification history for 180 days", req.Start.Format(time.RFC3339))
	}
	return envs, nil
}

// backfillOnStart backfills every app with backfill_on_start from the last
// notification the relay received (or DefaultBackfillWindow ago) to now.
func (r *Relay) backfillOnStart(ctx context.Context) {
	for i := range r.cfg.Apps {
		app := &r.cfg.Apps[i]
		if !app.BackfillOnStart || app.API == nil {
			continue
		}
		start, err := r.backfillStart()
		if err != nil {
			r.log.Error().Err(err).Str("app", app.Name).Msg("backfill on start: find the last notification")
			continue
		}
		req := BackfillRequest{App: app.Name, Start: start}
		envs, err := r.checkBackfill(&req)
		if err != nil {
			r.log.Error().Err(err).Str("app", app.Name).Msg("backfill on start")
			continue
		}
		r.backfill(ctx, req, envs) // logs its outcome
		if ctx.Err() != nil {
			return
		}
	}
}

// backfillStart is where backfill_on_start begins: a little before the
// newest notification the relay received, of any app (the relay was up until
// then, and would have received every app's notifications), else
// DefaultBackfillWindow ago; never more than MaxBackfillWindow ago.
func (r *Relay) backfillStart() (time.Time, error) {
	now := r.now()
	start := now.Add(-DefaultBackfillWindow)
	newest, _, err := r.db.Notifications(store.NotificationFilter{}, 0, 1)
	if err != nil {
		return time.Time{}, err
	}
	if len(newest) > 0 {
		start = newest[0].ReceivedAt.Add(-backfillOverlap)
	}
	if earliest := now.Add(-MaxBackfillWindow).Add(time.Minute); start.Before(earliest) {
		start = earliest
	}
	return start, nil
}
