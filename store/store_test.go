package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTest opens a fresh database whose clock is *now, and checks the file's
// integrity when the test ends.
func openTest(t testing.TB, now *time.Time) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return *now }
	db, err := Open(path, Options{Now: clock})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestAppendStoresExactBytesAndQueuesThem(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	body := []byte("{ \"signedPayload\" : \"a.b.c\" ,\n\"x\":\"\\u00e9\" }")
	seq, err := db.Append(Incoming{App: "myapp", Body: body, RemoteAddr: "17.58.0.1", ContentType: "application/json", ReceivedAt: now})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	got, err := db.Body(seq)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body = %q, %v; want %q", got, err, body)
	}
	n, err := db.Notification(seq)
	if err != nil {
		t.Fatalf("notification: %v", err)
	}
	if n.App != "myapp" || n.State != StateReceived || n.Size != len(body) || !n.ReceivedAt.Equal(now) {
		t.Errorf("metadata = %+v", n)
	}
	inbox, err := db.Inbox(10)
	if err != nil || len(inbox) != 1 || inbox[0].Seq != seq || !bytes.Equal(inbox[0].Body, body) {
		t.Fatalf("inbox = %+v, %v", inbox, err)
	}
}

func TestConcurrentAppendsAllCommitInOrder(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	const n = 200
	var wg sync.WaitGroup
	seqs := make(chan uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := db.Append(Incoming{App: "a", Body: fmt.Appendf(nil, `{"signedPayload":"%d"}`, i), ReceivedAt: now})
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			seqs <- seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d handed out twice", s)
		}
		seen[s] = true
	}
	inbox, err := db.Inbox(n + 1)
	if err != nil || len(inbox) != n {
		t.Fatalf("inbox holds %d, %v; want %d", len(inbox), err, n)
	}
	for i := 1; i < len(inbox); i++ {
		if inbox[i-1].Seq >= inbox[i].Seq {
			t.Fatalf("inbox out of order at %d", i)
		}
	}
}

func TestProcessDedupesAndCreatesDeliveries(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	var seqs []uint64
	for range 4 {
		seq, err := db.Append(Incoming{App: "a", Body: []byte(`{"signedPayload":"x"}`), ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	deliver := []NewDelivery{{Target: "t1", Payload: PayloadRaw, App: "a"}}
	res, err := db.Process([]Outcome{
		{Seq: seqs[0], State: StateUnverified, UUID: "u1", Deliveries: deliver},               // first copy, unverified
		{Seq: seqs[1], State: StateVerified, UUID: "u1", Verified: true, Deliveries: deliver}, // verified beats unverified
		{Seq: seqs[2], State: StateVerified, UUID: "u1", Verified: true, Deliveries: deliver}, // retry of a verified one
		{Seq: seqs[3], State: StateUnverified, UUID: "u1", Deliveries: deliver},               // forged copy
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []State{StateUnverified, StateVerified, StateDuplicate, StateDuplicate}
	for i, p := range res {
		if p.State != want[i] {
			t.Errorf("outcome %d: state %s, want %s", i, p.State, want[i])
		}
	}
	if res[2].Deliveries != 0 || res[1].Deliveries != 1 {
		t.Errorf("deliveries = %+v", res)
	}
	inbox, _ := db.Inbox(10)
	if len(inbox) != 0 {
		t.Errorf("inbox still holds %d", len(inbox))
	}
	due, _, err := db.Due("t1", now, 10, nil)
	if err != nil || len(due) != 2 {
		t.Fatalf("due = %d, %v; want 2", len(due), err)
	}
	if ok, _ := db.HasUUID("u1"); !ok {
		t.Error("HasUUID(u1) = false after a verified copy")
	}
}

func TestDeliveryLifecycle(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq, _ := db.Append(Incoming{App: "a", Body: []byte(`{"signedPayload":"x"}`), ReceivedAt: now})
	ds, err := db.CreateDeliveries([]NewDelivery{{Seq: seq, Target: "t"}, {Seq: seq, Target: "t"}})
	if err != nil || len(ds) != 2 {
		t.Fatalf("create: %v", err)
	}
	// First fails and is rescheduled a minute later; second succeeds.
	later := now.Add(time.Minute)
	d, err := db.RecordAttempt(ds[0].ID, Attempt{At: now, Status: 500, Error: "HTTP 500"}, Next{State: DeliveryPending, At: later})
	if err != nil || d.Attempts != 1 || d.State != DeliveryPending {
		t.Fatalf("record: %+v, %v", d, err)
	}
	if _, err := db.RecordAttempt(ds[1].ID, Attempt{At: now, Status: 200}, Next{State: DeliverySucceeded}); err != nil {
		t.Fatal(err)
	}
	due, next, _ := db.Due("t", now, 10, nil)
	if len(due) != 0 || !next.Equal(later) {
		t.Fatalf("due now = %d, next = %v; want 0 and %v", len(due), next, later)
	}
	due, _, _ = db.Due("t", later, 10, nil)
	if len(due) != 1 || due[0].ID != ds[0].ID {
		t.Fatalf("due later = %+v", due)
	}
	if _, err := db.RecordAttempt(ds[1].ID, Attempt{At: now}, Next{State: DeliverySucceeded}); err == nil {
		t.Error("recording on a finished delivery succeeded")
	}
	count, oldest, _ := db.PendingStats("t")
	if count != 1 || !oldest.Equal(now) {
		t.Errorf("pending stats = %d, %v", count, oldest)
	}
	atts, _ := db.Attempts(ds[0].ID)
	if len(atts) != 1 || atts[0].Status != 500 || atts[0].N != 1 {
		t.Errorf("attempts = %+v", atts)
	}
	// Expiry ignores the next attempt time: it goes by age.
	dead, err := db.ExpirePending("t", now.Add(time.Second), 10, nil)
	if err != nil || len(dead) != 1 || dead[0].State != DeliveryDead {
		t.Fatalf("expire = %+v, %v", dead, err)
	}
	if count, _, _ := db.PendingStats("t"); count != 0 {
		t.Errorf("pending after expiry = %d", count)
	}
	if n, _ := db.DeadCount("t"); n != 1 {
		t.Errorf("dead count = %d, want 1", n)
	}
	if due, next, _ := db.Due("t", later.Add(time.Hour), 10, nil); len(due) != 0 || !next.IsZero() {
		t.Errorf("dead delivery still due: %v %v", due, next)
	}
}

func TestDueSkipsInFlightAndHonoursLimit(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq, _ := db.Append(Incoming{App: "a", Body: []byte(`{}`), ReceivedAt: now})
	ds, _ := db.CreateDeliveries([]NewDelivery{{Seq: seq, Target: "t"}, {Seq: seq, Target: "t"}, {Seq: seq, Target: "t"}})
	due, _, _ := db.Due("t", now, 2, func(id uint64) bool { return id == ds[0].ID })
	if len(due) != 2 || due[0].ID != ds[1].ID || due[1].ID != ds[2].ID {
		t.Fatalf("due = %+v", due)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucketIfNotExists(bucketMeta)
		return m.Put(keySchema, u64(SchemaVersion+1))
	})
	b.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("open newer schema: %v, want ErrNewerSchema", err)
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.Append(Incoming{Body: []byte("{}")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := db.Append(Incoming{App: "a", Body: []byte(`{"signedPayload":"p"}`)})
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if inbox, _ := db.Inbox(10); len(inbox) != 1 || inbox[0].Seq != seq {
		t.Fatalf("inbox after reopen = %+v", inbox)
	}
	seq2, _ := db.Append(Incoming{App: "a", Body: []byte(`{}`)})
	if seq2 <= seq {
		t.Errorf("sequence went back: %d after %d", seq2, seq)
	}
}

// BenchmarkAppendParallel measures durable appends of 4 KiB bodies, fsync on,
// from many goroutines: the group commit shares each fsync among them.
func BenchmarkAppendParallel(b *testing.B) {
	var commits, writes atomic.Int64
	db, err := Open(filepath.Join(b.TempDir(), "asnrelay.db"), Options{OnCommit: func(n int, _ time.Duration) {
		commits.Add(1)
		writes.Add(int64(n))
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	body := bytes.Repeat([]byte("a"), 4096)
	b.SetParallelism(32)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Append(Incoming{App: "a", Body: body}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if c := commits.Load(); c > 0 {
		b.ReportMetric(float64(writes.Load())/float64(c), "writes/commit")
	}
}

func TestInboxBoundsBodyBytes(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	big := bytes.Repeat([]byte("a"), 3<<20)
	for range 5 {
		if _, err := db.Append(Incoming{App: "a", Body: big}); err != nil {
			t.Fatal(err)
		}
	}
	inbox, err := db.Inbox(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 3 { // 3 × 3 MiB passes MaxInboxBytes (8 MiB); the rest waits
		t.Errorf("inbox returned %d bodies of 3 MiB, want 3", len(inbox))
	}
}

// blockWriter queues a write that holds the writer until release is closed,
// and returns once the writer is inside it.
func blockWriter(t *testing.T, db *DB, release chan struct{}) {
	t.Helper()
	inside := make(chan struct{})
	go db.update(func(tx *bolt.Tx) error {
		close(inside)
		<-release
		return nil
	})
	<-inside
}

// waitQueued polls until ch holds n writes.
func waitQueued(t *testing.T, ch chan *write, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(ch) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", len(ch), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// appendInBackground starts n appends, each in a goroutine of wg.
func appendInBackground(t *testing.T, wg *sync.WaitGroup, db *DB, n int) {
	for range n {
		wg.Go(func() {
			if _, err := db.Append(Incoming{App: "a", Body: []byte(`{}`)}); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAppendsCommitBeforeOtherWrites(t *testing.T) {
	var mu sync.Mutex
	var commits []int
	db, err := Open(filepath.Join(t.TempDir(), "asnrelay.db"), Options{OnCommit: func(n int, _ time.Duration) {
		mu.Lock()
		commits = append(commits, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	release := make(chan struct{})
	blockWriter(t, db, release)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := db.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("other"), []byte("1")) }); err != nil {
			t.Error(err)
		}
	})
	waitQueued(t, db.writes, 1)
	appendInBackground(t, &wg, db, 2)
	waitQueued(t, db.appends, 2)
	close(release)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	// The blocking write, then both appends alone, then the write that
	// was queued before them.
	if !slices.Equal(commits, []int{1, 2, 1}) {
		t.Fatalf("commit sizes %v, want [1 2 1]", commits)
	}
}

func TestOtherWritesAreNotStarvedByAppends(t *testing.T) {
	var commits atomic.Int64
	db, err := Open(filepath.Join(t.TempDir(), "asnrelay.db"), Options{MaxBatch: 2,
		OnCommit: func(int, time.Duration) { commits.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	release := make(chan struct{})
	blockWriter(t, db, release)
	committedIn := make(chan int64, 1)
	go db.update(func(tx *bolt.Tx) error {
		committedIn <- commits.Load() // this commit's index: OnCommit has not run for it yet
		return nil
	})
	waitQueued(t, db.writes, 1)

	// A flood: senders wait on the full append queue, so it is never empty
	// when the writer picks its next batch.
	var wg sync.WaitGroup
	appendInBackground(t, &wg, db, 20)
	waitQueued(t, db.appends, 2)
	close(release)
	wg.Wait()
	// Commit 0 is the blocking write; appends alone may take the next
	// maxPassedOver commits, and the one after must take the other write.
	if n := <-committedIn; n > maxPassedOver+1 {
		t.Fatalf("the other write committed in commit %d, after %d commits of appends alone (at most %d)", n, n-1, maxPassedOver)
	}
}

// TestAttemptsKeepTheLatestInTheRecord checks that a delivery's record keeps
// its latest maxKeptAttempts attempts while Attempts counts them all, and
// that attempts in the attempts bucket, where files written before the log
// kept them, come first.
func TestAttemptsKeepTheLatestInTheRecord(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq := appendAt(t, db, "a", now)
	id := process(t, db, Outcome{Seq: seq, State: StateVerified, Deliveries: []NewDelivery{{Target: "t", App: "a"}}})[0].ID
	// An attempt recorded the way an older asnrelay did.
	older, _ := json.Marshal(Attempt{N: 1, At: now, Status: 502})
	err := db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketAttempts).Put(attemptKey(id, 1), older); err != nil {
			return err
		}
		d, err := getDelivery(tx, id)
		d.Attempts = 1
		return errors.Join(err, putDelivery(tx, d))
	})
	if err != nil {
		t.Fatal(err)
	}
	total := maxKeptAttempts + 5
	for n := 2; n <= total; n++ {
		next := Next{State: DeliveryPending, At: now}
		if n == total {
			next = Next{State: DeliverySucceeded}
		}
		if _, err := db.RecordAttempt(id, Attempt{At: now, Status: 500 + n}, next); err != nil {
			t.Fatal(err)
		}
	}
	d, err := db.Delivery(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Attempts != total || len(d.Log) != maxKeptAttempts || d.Log[0].N != total-maxKeptAttempts+1 || d.Log[maxKeptAttempts-1].N != total {
		t.Fatalf("attempts %d, log of %d from %d; want %d, %d from %d", d.Attempts, len(d.Log), d.Log[0].N, total, maxKeptAttempts, total-maxKeptAttempts+1)
	}
	atts, err := db.Attempts(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != maxKeptAttempts+1 || atts[0].N != 1 || atts[0].Status != 502 || atts[1].N != total-maxKeptAttempts+1 {
		t.Errorf("Attempts = %d from %+v", len(atts), atts[:2])
	}
	if atts, err := db.Attempts(id + 1); err != nil || len(atts) != 0 {
		t.Errorf("Attempts of a delivery that does not exist = %v, %v", atts, err)
	}
}

// TestOtherWritesCommitTwoAtATimeWhileAppendsCome checks that, with an
// append committed in the last ingestRecent, a commit takes at most
// maxOthersWhileIngesting other writes, and all that are queued otherwise.
func TestOtherWritesCommitTwoAtATimeWhileAppendsCome(t *testing.T) {
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var sizes []int
	db, err := Open(filepath.Join(t.TempDir(), "asnrelay.db"), Options{Now: clock, OnCommit: func(n int, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// burst holds the writer in a commit, queues six other writes behind it,
	// lets it go, and returns the sizes of the commits that followed.
	burst := func() []int {
		held, release := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = db.update(func(*bolt.Tx) error { close(held); <-release; return nil })
		}()
		<-held
		mu.Lock()
		before := len(sizes)
		mu.Unlock()
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := db.update(func(*bolt.Tx) error { return nil }); err != nil {
					t.Error(err)
				}
			}()
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(db.writes) < 6 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // poll: the writes are on their way to the queue
		}
		close(release)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sizes[before+1:]) // after the held commit
	}

	if _, err := db.Append(Incoming{App: "a", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got := burst(); !slices.Equal(got, []int{2, 2, 2}) {
		t.Errorf("commits right after an append: %v, want [2 2 2]", got)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if got := burst(); !slices.Equal(got, []int{6}) {
		t.Errorf("commits with no append for a second: %v, want [6]", got)
	}
}
