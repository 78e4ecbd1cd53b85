package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestSweepDeletesExactlyWhatIsExpired(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	old, recent := t0, t0.Add(40*24*time.Hour)
	finish := func(d Delivery, at time.Time, state DeliveryState) {
		t.Helper()
		if _, err := db.RecordAttempt(d.ID, Attempt{At: at, Status: 200}, Next{State: state}); err != nil {
			t.Fatal(err)
		}
	}
	verified := func(seq uint64, uuid string, targets ...string) []Delivery {
		o := Outcome{Seq: seq, State: StateVerified, UUID: uuid, Verified: true, Decoded: []byte(`{}`)}
		for _, tg := range targets {
			o.Deliveries = append(o.Deliveries, NewDelivery{Target: tg})
		}
		return process(t, db, o)
	}

	delivered := appendAt(t, db, "a", old) // succeeded long ago: all of it goes
	finish(verified(delivered, "u-delivered", "x")[0], old, DeliverySucceeded)
	deadOne := appendAt(t, db, "a", old) // dead, kept longer: stays with its notification
	finish(verified(deadOne, "u-dead", "x")[0], old, DeliveryDead)
	pending := appendAt(t, db, "a", old) // still pending: untouchable
	verified(pending, "u-pending", "x")
	unverified := appendAt(t, db, "a", old)
	process(t, db, Outcome{Seq: unverified, State: StateUnverified, UUID: "u-unverified"})
	duplicate := appendAt(t, db, "a", old)
	// Same UUID as delivered: a duplicate.
	process(t, db, Outcome{Seq: duplicate, State: StateVerified, UUID: "u-delivered", Verified: true})
	mixed := appendAt(t, db, "a", old) // one succeeded, one dead
	ds := verified(mixed, "u-mixed", "x", "y")
	finish(ds[0], old, DeliverySucceeded)
	finish(ds[1], old, DeliveryDead)
	young := appendAt(t, db, "a", recent) // recent: stays
	now = recent
	finish(verified(young, "u-young", "x")[0], recent, DeliverySucceeded)
	lateFinish := appendAt(t, db, "a", old) // created long ago, finished recently: stays
	finish(verified(lateFinish, "u-late", "x")[0], recent, DeliverySucceeded)
	inbox := appendAt(t, db, "a", old) // never processed: untouchable
	if n, _ := db.Notification(duplicate); n.State != StateDuplicate {
		t.Fatalf("setup: %d is %s", duplicate, n.State)
	}

	policy := RetentionPolicy{
		Succeeded:     recent.Add(-24 * time.Hour),
		Dead:          old.Add(-time.Hour), // dead ones are not old enough yet
		Notifications: recent.Add(-24 * time.Hour),
		Unverified:    old.Add(-time.Hour),
	}
	res, err := db.Sweep(context.Background(), policy)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deliveries != 2 || res.Notifications != 2 {
		t.Errorf("first sweep deleted %+v; want 2 deliveries (delivered, mixed's succeeded) and 2 notifications (delivered, duplicate)", res)
	}
	gone := map[uint64]bool{delivered: true, duplicate: true}
	for seq := uint64(1); seq <= inbox; seq++ {
		_, err := db.Notification(seq)
		_, berr := db.Body(seq)
		if gone[seq] != errors.Is(err, ErrNotFound) || gone[seq] != errors.Is(berr, ErrNotFound) {
			t.Errorf("notification %d: %v, body %v; gone = %v", seq, err, berr, gone[seq])
		}
	}
	if _, err := db.Decoded(delivered); !errors.Is(err, ErrNotFound) {
		t.Errorf("decoded document of a deleted notification: %v", err)
	}
	if ok, _ := db.HasUUID("u-delivered"); ok {
		t.Error("the uuid entry of a deleted notification is still held")
	}
	if ok, _ := db.HasUUID("u-dead"); !ok {
		t.Error("a kept notification lost its uuid entry")
	}
	if in, _ := db.InInbox(inbox); !in {
		t.Error("the unprocessed notification left the inbox")
	}
	if atts, _ := db.Attempts(1); len(atts) != 0 {
		t.Errorf("attempts of a deleted delivery remain: %+v", atts)
	}
	if ds, _ := db.NotificationDeliveries(mixed); len(ds) != 1 || ds[0].State != DeliveryDead {
		t.Errorf("mixed notification keeps %+v; want its dead delivery", ds)
	}
	if n, _ := db.DeadCount("x"); n != 1 {
		t.Errorf("dead index of x = %d", n)
	}

	// Later: dead ones expire too, then their notifications, and the
	// unverified one; the pending one and the inbox still stay.
	policy.Dead, policy.Unverified = recent, recent
	res, err = db.Sweep(context.Background(), policy)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deliveries != 2 || res.Notifications != 3 {
		t.Errorf("second sweep deleted %+v; want 2 dead deliveries and 3 notifications (deadOne, mixed, unverified)", res)
	}
	for _, seq := range []uint64{pending, inbox, young, lateFinish} {
		if _, err := db.Notification(seq); err != nil {
			t.Errorf("notification %d: %v", seq, err)
		}
	}
	if n, _ := db.DeadCount("y"); n != 0 {
		t.Errorf("dead index of y = %d after its delivery was deleted", n)
	}
	if c, _, _ := db.PendingStats("x"); c != 1 {
		t.Errorf("pending deliveries of x = %d, want 1", c)
	}
}

func TestSweepUsesSmallTransactions(t *testing.T) {
	var (
		mu      sync.Mutex
		commits []int
	)
	db, err := Open(filepath.Join(t.TempDir(), "asnrelay.db"), Options{Now: func() time.Time { return t0 }, OnCommit: func(writes int, _ time.Duration) {
		mu.Lock()
		commits = append(commits, writes)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const notifications, perNotification = 300, 4
	for range notifications {
		seq := appendAt(t, db, "a", t0)
		o := Outcome{Seq: seq, State: StateVerified, UUID: fmt.Sprint(seq), Verified: true}
		for i := range perNotification {
			o.Deliveries = append(o.Deliveries, NewDelivery{Target: fmt.Sprint("t", i)})
		}
		for _, d := range process(t, db, o) {
			if _, err := db.RecordAttempt(d.ID, Attempt{At: t0, Status: 200}, Next{State: DeliverySucceeded}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mu.Lock()
	before := len(commits)
	mu.Unlock()
	cutoff := t0.Add(time.Hour)
	res, err := db.Sweep(context.Background(), RetentionPolicy{Succeeded: cutoff, Dead: cutoff, Notifications: cutoff, Unverified: cutoff})
	if err != nil || res.Deliveries != notifications*perNotification || res.Notifications != notifications {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	mu.Lock()
	sweeps := len(commits) - before
	mu.Unlock()
	// 1200 deliveries of 4 keys each at most 500 keys a transaction, then
	// 300 notifications of up to 5 keys: at least 10 + 3 transactions.
	if sweeps < 13 {
		t.Errorf("sweep used %d transactions; want small ones (>= 13)", sweeps)
	}
	if n, _ := db.NotificationCount(); n != 0 {
		t.Errorf("%d notifications left", n)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestSweepStopsWithItsContext(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq := appendAt(t, db, "a", t0)
	process(t, db, Outcome{Seq: seq, State: StateDuplicate})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := db.Sweep(ctx, RetentionPolicy{Notifications: t0.Add(time.Hour)})
	if err != nil || res.Notifications != 0 {
		t.Errorf("sweep with a cancelled context = %+v, %v", res, err)
	}
}

func TestCompactShrinksTheFileAndKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 32<<10)
	var keep uint64
	for i := range 200 {
		seq, err := db.Append(Incoming{App: "a", Body: big, ReceivedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		o := Outcome{Seq: seq, State: StateDuplicate}
		if i == 199 {
			o = Outcome{Seq: seq, State: StateVerified, UUID: "kept", Verified: true, Deliveries: []NewDelivery{{Target: "x"}}}
			keep = seq
		}
		process(t, db, o)
	}
	if _, err := db.Sweep(context.Background(), RetentionPolicy{Notifications: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("compact while the store is open: %v, want ErrLocked", err)
	}
	db.Close()

	res, err := Compact(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Before < 200*32<<10 || res.After >= res.Before/10 {
		t.Errorf("compact %d -> %d bytes", res.Before, res.After)
	}
	if fi, _ := os.Stat(path); fi.Size() != res.After || fi.Mode().Perm() != 0o600 {
		t.Errorf("file after compact: %d bytes, mode %v", fi.Size(), fi.Mode())
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, _ := db.NotificationCount(); n != 1 {
		t.Errorf("%d notifications after compact, want 1", n)
	}
	if ds, _ := db.NotificationDeliveries(keep); len(ds) != 1 {
		t.Errorf("deliveries after compact: %+v", ds)
	}
	// Sequences survive: new records do not reuse numbers.
	seq, _ := db.Append(Incoming{App: "a", Body: []byte(`{}`), ReceivedAt: t0})
	if seq != 201 {
		t.Errorf("next seq after compact = %d, want 201", seq)
	}
	if ok, _ := db.HasUUID("kept"); !ok {
		t.Error("uuid index lost")
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
	if _, err := Compact(filepath.Join(t.TempDir(), "missing.db"), 0); err == nil {
		t.Error("compact of a missing file succeeded")
	}
}
