package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// appendAt stores a notification received at at and returns its seq.
func appendAt(t testing.TB, db *DB, app string, at time.Time) uint64 {
	t.Helper()
	seq, err := db.Append(Incoming{App: app, Body: fmt.Appendf(nil, `{"signedPayload":"%s-%d"}`, app, at.UnixNano()), ReceivedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// process commits one outcome and returns the deliveries it created.
func process(t testing.TB, db *DB, o Outcome) []Delivery {
	t.Helper()
	if _, err := db.Process([]Outcome{o}); err != nil {
		t.Fatal(err)
	}
	ds, err := db.NotificationDeliveries(o.Seq)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func seqsOf(ns []Notification) []uint64 {
	var out []uint64
	for _, n := range ns {
		out = append(out, n.Seq)
	}
	return out
}

func idsOf(ds []Delivery) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func TestNotificationsPagesNewestFirstWithFilters(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	for i := range 25 {
		app := "a"
		if i%5 == 0 {
			app = "b"
		}
		seq := appendAt(t, db, app, t0.Add(time.Duration(i)*time.Minute))
		if i < 20 {
			o := Outcome{Seq: seq, State: StateVerified, Type: "SUBSCRIBED", Subtype: "INITIAL_BUY", Environment: "Sandbox", UUID: fmt.Sprint("u", i), Verified: true}
			if i%2 == 1 {
				o.State, o.Type, o.Subtype, o.Verified = StateUnverified, "REFUND", "", false
			}
			process(t, db, o)
		}
	}
	// Pages of 10: 25..16, 15..6, 5..1.
	var all []uint64
	before := uint64(0)
	for page := 0; ; page++ {
		ns, next, err := db.Notifications(NotificationFilter{}, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, seqsOf(ns)...)
		if next == 0 {
			if page != 2 {
				t.Errorf("%d pages, want 3", page+1)
			}
			break
		}
		before = next
	}
	want := make([]uint64, 25)
	for i := range want {
		want[i] = uint64(25 - i)
	}
	if !slices.Equal(all, want) {
		t.Fatalf("paged seqs = %v", all)
	}

	for _, tc := range []struct {
		name string
		f    NotificationFilter
		want []uint64
	}{
		{"app", NotificationFilter{App: "b"}, []uint64{21, 16, 11, 6, 1}},
		{"state received", NotificationFilter{State: StateReceived}, []uint64{25, 24, 23, 22, 21}},
		{"type", NotificationFilter{Type: "REFUND", App: "b"}, []uint64{16, 6}},
		{"type.subtype", NotificationFilter{Type: "SUBSCRIBED.INITIAL_BUY", App: "b"}, []uint64{11, 1}},
		{"wrong subtype", NotificationFilter{Type: "SUBSCRIBED.RESUBSCRIBE"}, nil},
		{"since", NotificationFilter{Since: t0.Add(22 * time.Minute)}, []uint64{25, 24, 23}},
		{"since and until", NotificationFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)}, []uint64{5, 4, 3}},
		{"environment", NotificationFilter{Environment: "Production"}, nil},
	} {
		ns, next, err := db.Notifications(tc.f, 0, 50)
		if err != nil || next != 0 || !slices.Equal(seqsOf(ns), tc.want) {
			t.Errorf("%s: %v next %d err %v; want %v", tc.name, seqsOf(ns), next, err, tc.want)
		}
	}
	// A cursor past the newest starts at the newest.
	if ns, _, _ := db.Notifications(NotificationFilter{}, 1000, 1); len(ns) != 1 || ns[0].Seq != 25 {
		t.Errorf("cursor past the end: %v", seqsOf(ns))
	}
}

func TestNotificationsScanIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes MaxScan notifications")
	}
	now := t0
	db := openTest(t, &now)
	// MaxScan+5 notifications, only the oldest matches.
	err := db.update(func(tx *bolt.Tx) error {
		for i := range MaxScan + 5 {
			app := "busy"
			if i == 0 {
				app = "rare"
			}
			seq, _ := tx.Bucket(bucketNotifications).NextSequence()
			n := Notification{Seq: seq, App: app, ReceivedAt: t0, State: StateVerified}
			if err := putJSON(tx.Bucket(bucketNotifications), u64(seq), n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ns, next, err := db.Notifications(NotificationFilter{App: "rare"}, 0, 50)
	if err != nil || len(ns) != 0 || next != 6 {
		t.Fatalf("first page: %v next %d err %v; want none and a cursor", seqsOf(ns), next, err)
	}
	ns, next, _ = db.Notifications(NotificationFilter{App: "rare"}, next, 50)
	if next != 0 || !slices.Equal(seqsOf(ns), []uint64{1}) {
		t.Fatalf("second page: %v next %d", seqsOf(ns), next)
	}
	c, err := db.CountNotifications(time.Time{})
	if err != nil || c.Complete || c.Scanned != MaxScan || c.Stored != MaxScan+5 {
		t.Errorf("counts = %+v, %v", c, err)
	}
}

func TestDeliveriesByNotificationTargetAndState(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	n1, n2 := appendAt(t, db, "a", t0), appendAt(t, db, "a", t0)
	d1 := process(t, db, Outcome{Seq: n1, State: StateVerified, Type: "DID_RENEW", UUID: "u1", Verified: true,
		Deliveries: []NewDelivery{{Target: "x", App: "a", Type: "DID_RENEW"}, {Target: "y", App: "a", Type: "DID_RENEW"}}})
	d2 := process(t, db, Outcome{Seq: n2, State: StateVerified, Type: "REFUND", UUID: "u2", Verified: true,
		Deliveries: []NewDelivery{{Target: "x", App: "a", Type: "REFUND"}}})
	if len(d1) != 2 || len(d2) != 1 || d1[0].Seq != n1 || d2[0].Seq != n2 {
		t.Fatalf("deliveries by notification: %+v %+v", d1, d2)
	}
	if _, err := db.RecordAttempt(d1[0].ID, Attempt{At: now, Status: 200}, Next{State: DeliverySucceeded}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    DeliveryFilter
		want []uint64
	}{
		{"all", DeliveryFilter{}, []uint64{3, 2, 1}},
		{"notification", DeliveryFilter{Seq: n1}, []uint64{2, 1}},
		{"notification and target", DeliveryFilter{Seq: n1, Target: "y"}, []uint64{2}},
		{"target", DeliveryFilter{Target: "x"}, []uint64{3, 1}},
		{"pending", DeliveryFilter{State: DeliveryPending}, []uint64{3, 2}},
		{"succeeded", DeliveryFilter{State: DeliverySucceeded}, []uint64{1}},
		{"type", DeliveryFilter{Type: "REFUND"}, []uint64{3}},
		{"unknown notification", DeliveryFilter{Seq: 99}, nil},
	} {
		ds, next, err := db.Deliveries(tc.f, 0, 50)
		if err != nil || next != 0 || !slices.Equal(idsOf(ds), tc.want) {
			t.Errorf("%s: %v next %d err %v; want %v", tc.name, idsOf(ds), next, err, tc.want)
		}
	}
	// Paging, with and without the index.
	for _, f := range []DeliveryFilter{{}, {Seq: n1}} {
		ds, next, _ := db.Deliveries(f, 0, 1)
		rest, next2, _ := db.Deliveries(f, next, 10)
		if len(ds) != 1 || next == 0 || next2 != 0 || slices.Contains(idsOf(rest), ds[0].ID) || len(rest) == 0 {
			t.Errorf("paging %+v: %v then %v (next %d, %d)", f, idsOf(ds), idsOf(rest), next, next2)
		}
	}
}

func TestReplayKeepsHistoryAndEmptiesTheDeadIndex(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq := appendAt(t, db, "a", t0)
	ds := process(t, db, Outcome{Seq: seq, State: StateVerified, UUID: "u", Verified: true,
		Deliveries: []NewDelivery{{Target: "x", App: "a", Payload: PayloadRaw}}})
	dead, err := db.RecordAttempt(ds[0].ID, Attempt{At: now, Status: 500, Error: "HTTP 500"}, Next{State: DeliveryDead})
	if err != nil {
		t.Fatal(err)
	}
	letters, err := db.DeadLetters("x", DeliveryFilter{}, 0, 10)
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters = %v, %v", letters, err)
	}
	nd := dead.NewDelivery
	nd.ReplayOf = dead.ID
	got, err := db.Replay([]Replay{{NewDelivery: nd}})
	if err != nil || len(got) != 1 || got[0].State != DeliveryPending || got[0].ReplayOf != dead.ID || got[0].Seq != seq {
		t.Fatalf("replay = %+v, %v", got, err)
	}
	old, _ := db.Delivery(dead.ID)
	if old.State != DeliveryDead || old.Attempts != 1 || old.ReplayedBy != got[0].ID || old.LastError != "HTTP 500" {
		t.Errorf("old delivery after replay = %+v", old)
	}
	if n, _ := db.DeadCount("x"); n != 0 {
		t.Errorf("dead index still holds %d", n)
	}
	if letters, _ := db.DeadLetters("x", DeliveryFilter{}, 0, 10); len(letters) != 0 {
		t.Errorf("replayed delivery is still a dead letter")
	}
	if due, _, _ := db.Due("x", now, 10, nil); len(due) != 1 || due[0].ID != got[0].ID {
		t.Errorf("due = %+v", due)
	}

	// A decoded payload needs a decoded document: stored with the replay.
	nd = NewDelivery{Seq: seq, Target: "d", App: "a", Payload: PayloadDecoded}
	if _, err := db.Replay([]Replay{{NewDelivery: nd}}); err == nil {
		t.Error("replay to a decoded target without a document succeeded")
	}
	if _, err := db.Replay([]Replay{{NewDelivery: nd, Decoded: []byte(`{"notification":{}}`)}}); err != nil {
		t.Fatal(err)
	}
	if doc, err := db.Decoded(seq); err != nil || string(doc) != `{"notification":{}}` {
		t.Errorf("decoded = %s, %v", doc, err)
	}
	if _, err := db.Replay([]Replay{{NewDelivery: NewDelivery{Seq: 99, Target: "x"}}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("replay of an unknown notification: %v", err)
	}
}

func TestRequeueMovesOnlyUnverifiedBackToTheInbox(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	unverified, verified := appendAt(t, db, "a", t0), appendAt(t, db, "a", t0)
	process(t, db, Outcome{Seq: unverified, State: StateUnverified, Reason: "untrusted root", UUID: "u1"})
	process(t, db, Outcome{Seq: verified, State: StateVerified, UUID: "u2", Verified: true})
	done, err := db.Requeue([]uint64{unverified, verified})
	if err != nil || !slices.Equal(done, []uint64{unverified}) {
		t.Fatalf("requeue = %v, %v", done, err)
	}
	inbox, _ := db.Inbox(10)
	if len(inbox) != 1 || inbox[0].Seq != unverified || inbox[0].State != StateReceived {
		t.Fatalf("inbox = %+v", inbox)
	}
	// Verified now: the UUID it held unverified becomes a verified one.
	process(t, db, Outcome{Seq: unverified, State: StateVerified, UUID: "u1", Verified: true})
	if ok, _ := db.HasUUID("u1"); !ok {
		t.Error("reverified UUID not held as verified")
	}
	if _, err := db.Requeue([]uint64{42}); !errors.Is(err, ErrNotFound) {
		t.Errorf("requeue of an unknown notification: %v", err)
	}
}

func TestDeliveryIndexIsBuiltForOlderFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := db.Append(Incoming{App: "a", Body: []byte(`{}`), ReceivedAt: t0})
	if _, err := db.CreateDeliveries([]NewDelivery{{Seq: seq, Target: "x"}, {Seq: seq, Target: "y"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// As written by a build without the index.
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketNotifDelivery) }); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err := db.NotificationDeliveries(seq)
	if err != nil || len(ds) != 2 {
		t.Fatalf("deliveries after reopening = %+v, %v", ds, err)
	}
}

func TestBacklogReportsPendingDeadAndLastError(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq := appendAt(t, db, "a", t0)
	ds := process(t, db, Outcome{Seq: seq, State: StateVerified, UUID: "u", Verified: true,
		Deliveries: []NewDelivery{{Target: "x"}, {Target: "x"}, {Target: "x"}}})
	db.RecordAttempt(ds[0].ID, Attempt{At: now, Error: "HTTP 502", Status: 502}, Next{State: DeliveryDead})
	b, err := db.Backlog("x")
	if err != nil || b.Pending != 2 || b.Dead != 1 || !b.OldestPending.Equal(t0) || b.LastError != "HTTP 502" || b.LastErrorDelivery != ds[0].ID {
		t.Errorf("backlog = %+v, %v", b, err)
	}
	db.RecordAttempt(ds[2].ID, Attempt{At: now, Error: "connection refused"}, Next{State: DeliveryPending, At: now.Add(time.Minute)})
	if b, _ := db.Backlog("x"); b.LastError != "connection refused" {
		t.Errorf("a failing pending delivery's error comes first: %+v", b)
	}
	// A newer dead delivery that was never tried does not hide the target's answer.
	zs := process(t, db, Outcome{Seq: appendAt(t, db, "a", t0), State: StateVerified, UUID: "z", Verified: true,
		Deliveries: []NewDelivery{{Target: "z"}, {Target: "z"}}})
	db.RecordAttempt(zs[0].ID, Attempt{At: now, Error: "HTTP 500", Status: 500}, Next{State: DeliveryDead})
	if _, err := db.ExpirePending("z", now.Add(time.Second), 10, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := db.Backlog("z"); b.Dead != 2 || b.LastError != "HTTP 500" || b.LastErrorDelivery != zs[0].ID {
		t.Errorf("backlog of z = %+v", b)
	}
	if b, err := db.Backlog("nobody"); err != nil || b != (TargetBacklog{}) {
		t.Errorf("unknown target: %+v, %v", b, err)
	}
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// TestDeliveriesOfANotificationFromItsRecordAndTheOlderIndex checks that a
// notification's record lists its deliveries, replays included, without
// notif_deliveries; and that a schema 2 file, whose deliveries only that
// index lists, is upgraded and read the same, with retention keeping a
// notification whose delivery is pending.
func TestDeliveriesOfANotificationFromItsRecordAndTheOlderIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq := appendAt(t, db, "a", t0)
	ds := process(t, db, Outcome{Seq: seq, State: StateVerified, Deliveries: []NewDelivery{{Target: "x"}, {Target: "y"}}})
	replayed, err := db.Replay([]Replay{{NewDelivery: NewDelivery{Seq: seq, Target: "x", ReplayOf: ds[0].ID}}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Notification(seq)
	if err != nil || !slices.Equal(n.DeliveryIDs, []uint64{ds[0].ID, ds[1].ID, replayed[0].ID}) {
		t.Fatalf("record lists %v (%v); want %d, %d, %d", n.DeliveryIDs, err, ds[0].ID, ds[1].ID, replayed[0].ID)
	}
	// As schema 2 wrote it: the ids in notif_deliveries, none in the record.
	err = db.update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketNotifDelivery).Cursor().First(); k != nil {
			return fmt.Errorf("notif_deliveries holds %x", k)
		}
		for _, id := range n.DeliveryIDs {
			if err := tx.Bucket(bucketNotifDelivery).Put(notifDeliveryKey(seq, id), nil); err != nil {
				return err
			}
		}
		old := n
		old.DeliveryIDs = nil
		v, _ := json.Marshal(old)
		return errors.Join(tx.Bucket(bucketNotifications).Put(u64(seq), v), tx.Bucket(bucketMeta).Put(keySchema, u64(2)))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if v := readU64(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion {
			return fmt.Errorf("schema %d after opening, want %d", v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	got, err := db.NotificationDeliveries(seq)
	if err != nil || len(got) != 3 || got[0].ID != ds[0].ID || got[2].ID != replayed[0].ID {
		t.Fatalf("deliveries of the schema 2 notification = %+v, %v", got, err)
	}
	page, next, err := db.Deliveries(DeliveryFilter{Seq: seq}, 0, 2)
	if err != nil || len(page) != 2 || page[0].ID != replayed[0].ID || next != ds[0].ID+1 {
		t.Fatalf("first page = %+v, next %d, %v", page, next, err)
	}
	if rest, next, _ := db.Deliveries(DeliveryFilter{Seq: seq}, next, 2); len(rest) != 1 || rest[0].ID != ds[0].ID || next != 0 {
		t.Errorf("second page = %+v, next %d", rest, next)
	}
	res, err := db.Sweep(context.Background(), RetentionPolicy{Notifications: t0.Add(time.Hour), Unverified: t0.Add(time.Hour)})
	if err != nil || res.Notifications != 0 {
		t.Errorf("sweep with deliveries pending deleted %+v (%v)", res, err)
	}
	if _, err := db.Body(seq); err != nil {
		t.Errorf("body of a notification with pending deliveries: %v", err)
	}
}
