package relay

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultStatsWindow is how far back GET /api/v1/stats counts notifications
// by state, app and type unless ?since= says otherwise.
const DefaultStatsWindow = 24 * time.Hour

// apiStats serves GET /api/v1/stats.
func (r *Relay) apiStats(w http.ResponseWriter, req *http.Request) error {
	qr := newQueryReader(req.URL.Query(), r.now(), "since")
	since := qr.time("since")
	if qr.err != nil {
		return qr.err
	}
	if since.IsZero() {
		since = r.now().Add(-DefaultStatsWindow)
	}
	st, err := r.stats(since)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// stats gathers the figures of the stats endpoint and the dashboard: bucket
// statistics and bounded scans only.
func (r *Relay) stats(since time.Time) (Stats, error) {
	now := r.now()
	st := Stats{Version: r.opts.Version, Now: now, Targets: []TargetStats{}}
	c, err := r.db.CountNotifications(since)
	if err != nil {
		return st, err
	}
	st.Notifications = NotificationStats{
		Stored: c.Stored, Inbox: c.Inbox, LastID: c.LastSeq, Since: since, Scanned: c.Scanned,
		Complete: c.Complete, ByState: map[string]int{}, ByApp: c.ByAppType,
	}
	for s, n := range c.ByState {
		st.Notifications.ByState[string(s)] = n
	}
	health := r.forward.Health()
	for _, t := range r.cfg.Targets {
		b, err := r.db.Backlog(t.Name)
		if err != nil {
			return st, err
		}
		ts := TargetStats{Name: t.Name, Pending: b.Pending, Dead: b.Dead, LastError: b.LastError, LastErrorDelivery: b.LastErrorDelivery}
		if !b.OldestPending.IsZero() {
			ts.OldestPendingSeconds = max(now.Sub(b.OldestPending).Seconds(), 0)
		}
		if h, ok := health[t.Name]; ok {
			ts.Failing, ts.InFlight = h.Failing, h.InFlight
			if h.Failing {
				ts.NextProbe = h.NextProbe
			}
		}
		st.Targets = append(st.Targets, ts)
	}
	st.Ingest = r.ingestStats()
	if st.Refunds, err = r.refundStats("", since); err != nil {
		return st, err
	}
	return st, nil
}

// ingestStats reads asnrelay_ingest_requests_total.
func (r *Relay) ingestStats() IngestStats {
	is := IngestStats{ByApp: map[string]map[string]int{}}
	ch := make(chan prometheus.Metric, 64)
	go func() {
		r.metrics.ingestRequests.Collect(ch)
		close(ch)
	}()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		var app, code string
		for _, l := range pb.GetLabel() {
			switch l.GetName() {
			case "app":
				app = l.GetValue()
			case "code":
				code = l.GetValue()
			}
		}
		n := int(pb.GetCounter().GetValue())
		if is.ByApp[app] == nil {
			is.ByApp[app] = map[string]int{}
		}
		is.ByApp[app][code] += n
		is.Requests += n
	}
	return is
}

// apiApps serves GET /api/v1/apps: the configured apps.
func (r *Relay) apiApps(w http.ResponseWriter, req *http.Request) error {
	if qr := newQueryReader(req.URL.Query(), r.now()); qr.err != nil {
		return qr.err
	}
	list := AppList{Apps: make([]AppInfo, 0, len(r.cfg.Apps))}
	for _, a := range r.cfg.Apps {
		list.Apps = append(list.Apps, r.withAppleStatus(AppInfo{
			Name: a.Name, BundleID: a.BundleID, AppAppleID: a.AppAppleID,
			Environments: a.EnvironmentList(), API: a.API != nil,
		}))
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}
