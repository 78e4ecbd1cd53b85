package relay

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

func TestRetentionPolicy(t *testing.T) {
	const day = 24 * time.Hour
	now := t0
	for _, tc := range []struct {
		r    config.Retention
		want store.RetentionPolicy
	}{
		{config.Retention{Delivered: 30 * day, Dead: 90 * day}, store.RetentionPolicy{
			Succeeded: now.Add(-30 * day), Notifications: now.Add(-30 * day), Dead: now.Add(-90 * day), Unverified: now.Add(-90 * day)}},
		// Notifications outlive Apple's retries whatever the setting.
		{config.Retention{Delivered: day, Dead: 2 * day}, store.RetentionPolicy{
			Succeeded: now.Add(-day), Notifications: now.Add(-MinNotificationRetention), Dead: now.Add(-2 * day), Unverified: now.Add(-MinNotificationRetention)}},
		{config.Retention{}, store.RetentionPolicy{}},
	} {
		if got := retentionPolicy(tc.r, now); got != tc.want {
			t.Errorf("retentionPolicy(%+v) = %+v, want %+v", tc.r, got, tc.want)
		}
	}
}

func TestRetentionSweepsAtStartOnTheRelaysClock(t *testing.T) {
	ca := newCA(t)
	s := newSink(t)
	clock := newTestClock(t0)
	cfg := testConfig(t, ca, target("t", s.URL))
	h := startRelayWith(t, cfg, Options{Version: "test", Now: clock.now})
	h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: "old-1"}))
	h.post(t, "myapp", body(t, newCA(t), appletest.Notification{UUID: "old-unverified"}))
	deliveredTo(t, s, 1)
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliverySucceeded}, 1)
	h.waitProcessed(t, 2)
	h.stop(t)

	// 31 days later: past retention.delivered (30d), not retention.dead (90d).
	clock.add(31 * 24 * time.Hour)
	h = startRelayWith(t, cfg, Options{Version: "test", Now: clock.now})
	waitFor(t, "the sweep at start", func() bool { return h.count(t) == 1 })
	if _, err := h.r.db.Notification(1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delivered notification: %v", err)
	}
	if n, err := h.r.db.Notification(2); err != nil || n.State != store.StateUnverified {
		t.Errorf("unverified notification: %+v, %v", n, err)
	}
	if ds, _, _ := h.r.db.Deliveries(store.DeliveryFilter{}, 0, 10); len(ds) != 0 {
		t.Errorf("deliveries left: %+v", ds)
	}
	// A fresh one is untouched by the next sweep.
	h.post(t, "myapp", body(t, ca, appletest.Notification{UUID: "new-1"}))
	deliveredTo(t, s, 2)
	if res, err := h.r.sweepRetention(context.Background()); err != nil || res != (store.SweepResult{}) {
		t.Errorf("sweep = %+v, %v", res, err)
	}
}

func TestCompactNeedsTheDaemonStopped(t *testing.T) {
	ca := newCA(t)
	cfg := testConfig(t, ca)
	dir := filepath.Dir(cfg.DataDir)
	path := filepath.Join(dir, "asnrelay.yaml")
	writeFile(t, path, []byte("listen: \"127.0.0.1:0\"\ndata_dir: "+cfg.DataDir+"\nadmin: {listen: \"127.0.0.1:0\"}\n"+
		"apps:\n  - name: myapp\n    bundle_id: "+testBundle+"\n    environments: [Sandbox]\n"))
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Apple.RootCerts = cfg.Apple.RootCerts
	h := startRelay(t, c)
	h.post(t, "myapp", body(t, ca, appletest.Notification{}))
	if _, _, err := Compact(path); !errors.Is(err, store.ErrLocked) {
		t.Errorf("compact while serving: %v, want ErrLocked", err)
	}
	h.stop(t)
	db, res, err := Compact(path)
	if err != nil || db != filepath.Join(cfg.DataDir, DBFile) || res.Before == 0 || res.After == 0 {
		t.Errorf("compact = %s %+v, %v", db, res, err)
	}
}
