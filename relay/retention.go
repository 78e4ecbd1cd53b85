package relay

import (
	"context"
	"path/filepath"
	"time"

	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

const (
	// RetentionInterval is how often the retention sweep runs (and once at
	// start). Often, so that each sweep frees few pages: bbolt writes its
	// whole freelist at every commit, and with 75 000 free pages a one-append
	// commit took 1.06 ms instead of 0.45 ms until new writes reused them.
	RetentionInterval = time.Minute
	// MinNotificationRetention is the least time a notification is kept,
	// whatever retention.delivered says: its notificationUUID is what makes
	// Apple's retries (up to about 6.5 days after the first try) duplicates.
	MinNotificationRetention = 7 * 24 * time.Hour
	// compactLockTimeout is how long compact waits for the database lock.
	compactLockTimeout = time.Second
)

// retentionPolicy turns retention.delivered and retention.dead into the
// cutoffs of a sweep at now. Succeeded deliveries go after
// retention.delivered, dead ones after retention.dead; a notification goes
// once it has no delivery left and is older than retention.delivered
// (retention.dead when unverified: those are the ones to look into), and
// never before MinNotificationRetention. A zero duration keeps that kind
// forever.
func retentionPolicy(r config.Retention, now time.Time) store.RetentionPolicy {
	var p store.RetentionPolicy
	if r.Delivered > 0 {
		p.Succeeded = now.Add(-r.Delivered)
		p.Notifications = now.Add(-max(r.Delivered, MinNotificationRetention))
	}
	if r.Dead > 0 {
		p.Dead = now.Add(-r.Dead)
		p.Unverified = now.Add(-max(r.Dead, MinNotificationRetention))
	}
	return p
}

// sweepRetention deletes what retention says is old now.
func (r *Relay) sweepRetention(ctx context.Context) (store.SweepResult, error) {
	start := time.Now()
	res, err := r.db.Sweep(ctx, retentionPolicy(r.cfg.Retention, r.now()))
	if err != nil {
		r.log.Error().Err(err).Msg("retention sweep")
		return res, err
	}
	if res.Deliveries > 0 || res.Notifications > 0 {
		r.log.Info().Int("deliveries", res.Deliveries).Int("notifications", res.Notifications).
			Dur("took", time.Since(start)).Msg("retention: deleted old records")
	}
	return res, nil
}

// runRetention sweeps at start and every RetentionInterval until ctx ends.
func (r *Relay) runRetention(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.sweepRetention(ctx)
		t.Reset(RetentionInterval)
	}
}

// Compact rewrites the database of the configuration at configPath to
// reclaim the space retention freed. The daemon must be stopped: the
// database is locked otherwise (store.ErrLocked). It returns the file's path
// and its size before and after.
func Compact(configPath string) (string, store.CompactResult, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return "", store.CompactResult{}, err
	}
	path := filepath.Join(cfg.DataDir, DBFile)
	res, err := store.Compact(path, compactLockTimeout)
	return path, res, err
}
