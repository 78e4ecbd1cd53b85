package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// batchKeys returns the first sequence number of every batch in the log.
func batchKeys(t *testing.T, db *DB) []uint64 {
	t.Helper()
	var keys []uint64
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLog).ForEach(func(k, _ []byte) error {
			keys = append(keys, readU64(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestAppendsOfOneCommitShareOneBatch(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	release := make(chan struct{})
	blockWriter(t, db, release)
	const n = 50
	var wg sync.WaitGroup
	got := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			seq, err := db.Append(Incoming{App: "a", Body: fmt.Appendf(nil, `{"signedPayload":"%d"}`, i),
				RemoteAddr: fmt.Sprintf("17.58.0.%d", i), ContentType: "application/json", ReceivedAt: now.Add(time.Duration(i))})
			if err != nil {
				t.Error(err)
			}
			got[i] = seq
		})
	}
	waitQueued(t, db.appends, n)
	close(release)
	wg.Wait()

	if keys := batchKeys(t, db); !slices.Equal(keys, []uint64{1}) {
		t.Fatalf("batches = %v, want one starting at 1", keys)
	}
	for i, seq := range got {
		body, err := db.Body(seq)
		want := fmt.Appendf(nil, `{"signedPayload":"%d"}`, i)
		if err != nil || !bytes.Equal(body, want) {
			t.Errorf("body %d = %q, %v; want %q", seq, body, err, want)
		}
		n, err := db.Notification(seq)
		if err != nil || n.State != StateReceived || n.RemoteAddr != fmt.Sprintf("17.58.0.%d", i) ||
			n.ContentType != "application/json" || !n.ReceivedAt.Equal(now.Add(time.Duration(i))) || n.Size != len(want) {
			t.Errorf("notification %d = %+v, %v", seq, n, err)
		}
	}
}

func TestBatchBytesAreBounded(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "asnrelay.db"), Options{MaxBatchBytes: 10 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	release := make(chan struct{})
	blockWriter(t, db, release)
	var wg sync.WaitGroup
	body := bytes.Repeat([]byte("a"), 4<<10)
	for range 6 {
		wg.Go(func() {
			if _, err := db.Append(Incoming{App: "a", Body: body}); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, db.appends, 6)
	close(release)
	wg.Wait()
	// 10 KiB a commit: three 4 KiB bodies pass it, so each batch holds three.
	if keys := batchKeys(t, db); !slices.Equal(keys, []uint64{1, 4}) {
		t.Errorf("batches = %v, want [1 4]", keys)
	}
}

func TestProcessingMovesTheWatermarkInOrderOnly(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	a, b, c := appendAt(t, db, "a", t0), appendAt(t, db, "a", t0), appendAt(t, db, "a", t0)
	// b first: a still waits, so the watermark stays put.
	process(t, db, Outcome{Seq: b, State: StateUnverified})
	if in := inboxSeqs(t, db); !slices.Equal(in, []uint64{a, c}) {
		t.Fatalf("inbox = %v, want [%d %d]", in, a, c)
	}
	for seq, want := range map[uint64]bool{a: true, b: false, c: true} {
		if in, err := db.InInbox(seq); err != nil || in != want {
			t.Errorf("InInbox(%d) = %v, %v; want %v", seq, in, err, want)
		}
	}
	if n, err := db.NotificationCount(); err != nil || n != 3 {
		t.Errorf("count = %d, %v; want 3", n, err)
	}
	process(t, db, Outcome{Seq: a, State: StateUnverified})
	if w := watermark(t, db); w != b {
		t.Errorf("watermark = %d, want %d (a and b processed)", w, b)
	}
	// Requeued notifications come first, then the log.
	if _, err := db.Requeue([]uint64{b}); err != nil {
		t.Fatal(err)
	}
	if in := inboxSeqs(t, db); !slices.Equal(in, []uint64{b, c}) {
		t.Errorf("inbox = %v, want [%d %d]", in, b, c)
	}
	c2, err := db.CountNotifications(time.Time{})
	if err != nil || c2.Stored != 3 || c2.Inbox != 2 || c2.ByState[StateReceived] != 2 || c2.ByState[StateUnverified] != 1 {
		t.Errorf("counts = %+v, %v", c2, err)
	}
}

func inboxSeqs(t *testing.T, db *DB) []uint64 {
	t.Helper()
	inbox, err := db.Inbox(100)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range inbox {
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

func watermark(t *testing.T, db *DB) uint64 {
	t.Helper()
	var w uint64
	db.bolt.View(func(tx *bolt.Tx) error { w = processedThrough(tx); return nil })
	return w
}

func TestListingMergesRecordsAndTheLog(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	var seqs []uint64
	for i := range 7 {
		seqs = append(seqs, appendAt(t, db, "a", t0.Add(time.Duration(i)*time.Second)))
	}
	for _, seq := range seqs[:3] {
		process(t, db, Outcome{Seq: seq, State: StateVerified, UUID: fmt.Sprint(seq), Type: "TEST", Verified: true})
	}
	process(t, db, Outcome{Seq: seqs[5], State: StateUnverified}) // ahead of the watermark
	// Pages of two, newest first, across records and log entries.
	var all []uint64
	var states []State
	for before := uint64(0); ; {
		ns, next, err := db.Notifications(NotificationFilter{}, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			all, states = append(all, n.Seq), append(states, n.State)
		}
		if next == 0 {
			break
		}
		before = next
	}
	want := []uint64{7, 6, 5, 4, 3, 2, 1}
	wantStates := []State{StateReceived, StateUnverified, StateReceived, StateReceived, StateVerified, StateVerified, StateVerified}
	if !slices.Equal(all, want) || !slices.Equal(states, wantStates) {
		t.Errorf("listed %v %v, want %v %v", all, states, want, wantStates)
	}
	ns, _, err := db.Notifications(NotificationFilter{State: StateReceived, Since: t0.Add(4 * time.Second)}, 0, 10)
	if err != nil || !slices.Equal(seqsOf(ns), []uint64{7, 5}) {
		t.Errorf("received since 4 s: %v, %v", seqsOf(ns), err)
	}
}

func TestRetentionDeletesABatchWithItsLastNotification(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	release := make(chan struct{})
	blockWriter(t, db, release)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if _, err := db.Append(Incoming{App: "a", Body: fmt.Appendf(nil, `{"n":%d}`, i), ReceivedAt: t0}); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, db.appends, 3)
	close(release)
	wg.Wait()
	late := appendAt(t, db, "a", t0.Add(48*time.Hour))
	for seq := uint64(1); seq <= 3; seq++ {
		state := StateVerified
		if seq == 2 {
			state = StateUnverified // kept longer
		}
		process(t, db, Outcome{Seq: seq, State: state, UUID: fmt.Sprint(seq), Verified: state == StateVerified})
	}
	process(t, db, Outcome{Seq: late, State: StateVerified, UUID: "late", Verified: true})
	sweep := func(unverified time.Time) {
		t.Helper()
		if _, err := db.Sweep(context.Background(), RetentionPolicy{Notifications: t0.Add(time.Hour), Unverified: unverified}); err != nil {
			t.Fatal(err)
		}
	}
	sweep(t0.Add(-time.Hour))
	for seq, gone := range map[uint64]bool{1: true, 2: false, 3: true, late: false} {
		_, err := db.Body(seq)
		if errors.Is(err, ErrNotFound) != gone {
			t.Errorf("body %d: %v; want gone = %v", seq, err, gone)
		}
	}
	if keys := batchKeys(t, db); !slices.Equal(keys, []uint64{1, late}) {
		t.Errorf("batches = %v, want [1 %d]: 2 still needs the first", keys, late)
	}
	sweep(t0.Add(time.Hour))
	if keys := batchKeys(t, db); !slices.Equal(keys, []uint64{late}) {
		t.Errorf("batches = %v, want only [%d]", keys, late)
	}
}

// TestVersion1FileIsUpgraded opens a file laid out as before the ingest
// log (bodies, records and inbox per notification) and checks that what it
// holds is read and processed, and that new appends follow it.
func TestVersion1FileIsUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketBodies, bucketNotifications, bucketInbox} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchema, u64(1)); err != nil {
			return err
		}
		for seq := uint64(1); seq <= 2; seq++ {
			tx.Bucket(bucketNotifications).SetSequence(seq)
			state := StateVerified
			if seq == 2 {
				state = StateReceived
				tx.Bucket(bucketInbox).Put(u64(seq), nil)
			}
			putJSON(tx.Bucket(bucketNotifications), u64(seq), Notification{Seq: seq, App: "a", ReceivedAt: t0, State: state})
			tx.Bucket(bucketBodies).Put(u64(seq), fmt.Appendf(nil, "old %d", seq))
		}
		return nil
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seq, err := db.Append(Incoming{App: "a", Body: []byte("new"), ReceivedAt: t0})
	if err != nil || seq != 3 {
		t.Fatalf("append = %d, %v; want 3", seq, err)
	}
	if in := inboxSeqs(t, db); !slices.Equal(in, []uint64{2, 3}) {
		t.Fatalf("inbox = %v, want [2 3]", in)
	}
	for s, want := range map[uint64]string{1: "old 1", 2: "old 2", 3: "new"} {
		if body, err := db.Body(s); err != nil || string(body) != want {
			t.Errorf("body %d = %q, %v; want %q", s, body, err, want)
		}
	}
	process(t, db, Outcome{Seq: 2, State: StateUnverified})
	process(t, db, Outcome{Seq: 3, State: StateUnverified})
	if in := inboxSeqs(t, db); len(in) != 0 {
		t.Errorf("inbox after processing = %v", in)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestBatchRoundTrip(t *testing.T) {
	ins := []*Incoming{
		{App: "a", Body: []byte(`{"signedPayload":"x"}`), RemoteAddr: "17.58.0.1", ContentType: "application/json", ReceivedAt: t0},
		{App: "", Body: nil, ReceivedAt: time.Unix(0, -5)},
		{App: "b", Body: bytes.Repeat([]byte{0, 0xff}, 300), ReceivedAt: t0.Add(time.Nanosecond)},
	}
	b, err := parseBatch(10, encodeBatch(nil, ins))
	if err != nil || b.count != 3 || b.last() != 12 {
		t.Fatalf("parse = %+v, %v", b, err)
	}
	for i, in := range ins {
		e, err := b.entry(i)
		if err != nil || e.Seq != uint64(10+i) || e.App != in.App || e.RemoteAddr != in.RemoteAddr ||
			e.ContentType != in.ContentType || !bytes.Equal(e.Body, in.Body) || !e.ReceivedAt.Equal(in.ReceivedAt) {
			t.Errorf("entry %d = %+v, %v", i, e, err)
		}
	}
}

// FuzzBatch decodes arbitrary batch values: a damaged file gives errors,
// never a panic or an entry reaching past the value.
func FuzzBatch(f *testing.F) {
	f.Add(encodeBatch(nil, []*Incoming{{App: "a", Body: []byte("{}"), ReceivedAt: t0}}))
	f.Add(encodeBatch(nil, []*Incoming{{App: "a"}, {RemoteAddr: "x", Body: []byte("yz")}}))
	f.Add([]byte{batchVersion, 0, 0, 0, 1, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, v []byte) {
		b, err := parseBatch(1, v)
		if err != nil {
			return
		}
		for i := range b.count {
			e, err := b.entry(i)
			if err != nil {
				continue
			}
			if len(e.Body) > len(v) {
				t.Fatalf("entry %d: body of %d bytes from a value of %d", i, len(e.Body), len(v))
			}
		}
	})
}
