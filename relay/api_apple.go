package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

// registerAppleAPI adds the admin endpoints that call Apple.
func (r *Relay) registerAppleAPI(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/backfill", r.guard(r.authorized(r.apiHandler(r.apiBackfill))))
}

// apiBackfill serves POST /api/v1/backfill (BackfillRequest): it answers
// BackfillResult once the history is walked, which may take minutes.
func (r *Relay) apiBackfill(w http.ResponseWriter, req *http.Request) error {
	var br BackfillRequest
	if err := readJSON(w, req, &br); err != nil {
		return err
	}
	envs, err := r.checkBackfill(&br)
	if err != nil {
		return err
	}
	// The admin server's WriteTimeout is for ordinary requests.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(BackfillTimeout + time.Minute))
	// A backfill stops with the relay, not only with the client.
	ctx, cancel := r.appleState.bindWork(req.Context())
	defer cancel()
	res, err := r.backfill(ctx, br, envs)
	switch {
	case errors.Is(err, errBackfillRunning):
		return errConflict("a backfill of %q is already running; try again when it is done", br.App)
	case errors.Is(err, store.ErrClosed):
		return err
	case err != nil:
		return &apiError{status: http.StatusBadGateway, msg: backfillStopped(res, err)}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// Backfill asks the daemon to backfill (POST /api/v1/backfill) and waits
// for the counts, up to BackfillTimeout.
func (c *AdminClient) Backfill(ctx context.Context, in BackfillRequest) (BackfillResult, []byte, error) {
	long := *c
	long.timeout = BackfillTimeout + time.Minute
	long.http = &http.Client{Transport: c.http.Transport, CheckRedirect: c.http.CheckRedirect, Jar: c.http.Jar}
	return postJSON[BackfillResult](ctx, &long, "/api/v1/backfill", in)
}

// backfillStopped says how far a failed backfill got.
func backfillStopped(res BackfillResult, err error) string {
	return fmt.Sprintf("backfill stopped after fetching %d notifications (%d stored, %d already held): %v",
		res.Fetched, res.Stored, res.Skipped, err)
}

// withAppleStatus adds to info the latest check of the app's key.
func (r *Relay) withAppleStatus(info AppInfo) AppInfo {
	app, ok := r.apps[info.Name]
	if !ok {
		return info
	}
	info.Status = make(map[string]string)
	checks := r.appleState.checksOf(info.Name)
	for _, env := range apiEnvironmentsOf(app) {
		info.Status[string(env)] = StatusNotChecked
		if app.API == nil {
			info.Status[string(env)] = StatusNoAPI
		}
	}
	for _, st := range checks {
		info.Status[st.Environment] = st.Status
		if st.CheckedAt.After(info.CheckedAt) {
			info.CheckedAt = st.CheckedAt
		}
	}
	return info
}

// appleStartup runs in the background at start: the online check of every
// app's key (logged, recorded for GET /api/v1/apps and asnrelay_apple_api_up),
// then backfill_on_start. Neither stops the relay.
func (r *Relay) appleStartup(ctx context.Context) {
	r.appleState.setWork(ctx)
	if len(r.appleClients) == 0 {
		return
	}
	statuses := checkApps(ctx, r.cfg, r.appleClients, true, r.now)
	if ctx.Err() != nil {
		return
	}
	r.appleState.setChecks(statuses)
	for _, st := range statuses {
		if !st.API {
			continue
		}
		up := 0.0
		ev := r.log.Info()
		if st.Active {
			up = 1
		} else {
			ev = r.log.Warn()
		}
		r.metrics.appleAPIUp.WithLabelValues(st.App, st.Environment).Set(up)
		ev.Str("app", st.App).Str("environment", st.Environment).Str("status", st.Status).Msg("App Store Server API key check")
	}
	r.backfillOnStart(ctx)
}
