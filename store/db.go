package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this package writes. Opening a file written by a
// newer version fails with ErrNewerSchema rather than misreading it. Version
// 2 added the ingest log; a version 1 file is upgraded when opened, its
// bodies and inbox read where they are. Version 3 lists a notification's
// deliveries in its record rather than in notif_deliveries, which is read
// as well: an older asnrelay would take those notifications for ones
// without deliveries, and retention could delete them.
const SchemaVersion = 3

// DefaultMaxBatch bounds how many queued writes share one commit, and
// DefaultMaxBatchBytes the bodies they append: a flood of large bodies makes
// more commits, not bigger ones.
const (
	DefaultMaxBatch      = 1024
	DefaultMaxBatchBytes = 16 << 20
)

var (
	// ErrClosed is returned by writes after Close has begun.
	ErrClosed = errors.New("store closed")
	// ErrNotFound is returned when a notification or delivery does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNewerSchema is returned by Open for a file written by a newer asnrelay.
	ErrNewerSchema = errors.New("database written by a newer asnrelay")
)

// Options tune a DB. The zero value is ready to use.
type Options struct {
	// MaxBatch bounds the writes committed together; 0 means DefaultMaxBatch.
	MaxBatch int
	// MaxBatchBytes bounds the body bytes appended by one commit (a single
	// body may pass it); 0 means DefaultMaxBatchBytes.
	MaxBatchBytes int
	// Now is the clock used for timestamps; nil means time.Now.
	Now func() time.Time
	// OnCommit, if set, is called by the writer after each commit with the
	// number of writes and the time the commit took (for metrics).
	OnCommit func(writes int, took time.Duration)
	// OpenTimeout bounds the wait for the file lock; 0 means 1s.
	OpenTimeout time.Duration
	// TrimInterval is how often the file pages that reads have mapped are
	// let go (resident.go says why); 0 means DefaultTrimInterval, and a
	// negative interval never.
	TrimInterval time.Duration

	// noPrefill turns prefill off, for benchmarks to compare.
	noPrefill bool
}

// DB is an open asnrelay database.
type DB struct {
	bolt *bolt.DB
	path string
	opts Options

	mu     sync.RWMutex // guards closed and sends on writes and appends
	closed bool
	// appends are Append's writes: a client waits on each for its 200.
	// writes are all the others.
	appends, writes chan *write
	done            chan struct{} // closed when the writer has exited
	stopTrim        chan struct{} // closed by Close to stop the trimmer
	trimDone        chan struct{} // closed when the trimmer has exited

	// The writer's own buffers, reused from one commit to the next: the
	// appends of a commit and the batch value they make.
	ins  []*Incoming
	pack []byte
	// lastAppend is when the writer last committed appends.
	lastAppend time.Time

	// fill is a second handle on the file, for prefill (nil: none), and
	// filled the offset up to which the writer has written zeros.
	fill   *os.File
	filled int64
}

// maxKeptPack is the largest batch buffer the writer keeps for the next
// commit; a bigger one, made by a burst of large bodies, is let go.
const maxKeptPack = 4 << 20

// maxPassedOver is how many commits of appends alone may go by while other
// writes wait; the next commit takes everything queued.
const maxPassedOver = 4

// While appends keep coming (one committed in the last ingestRecent), a
// commit of other writes takes at most maxOthersWhileIngesting of them. An
// append that arrives meanwhile waits for that commit, and a commit's cost is
// mostly its pages: five processing and attempt writes made 20–34 pages
// and took 1.5–5 ms, the ack tail at 1 000 req/s. Two at a time: ack p99
// 4.4–5.4 ms against 5.6–7.1 in three interleaved pairs of runs, p50 lower
// too, for more commits (1.6–2.0 a request against 1.2–1.5).
const (
	maxOthersWhileIngesting = 2
	ingestRecent            = 10 * time.Millisecond
)

// write is one unit of work for the writer goroutine: an append (in) or any
// other change (apply).
type write struct {
	in    *Incoming
	apply func(tx *bolt.Tx) error
	seq   uint64 // an append's sequence number, set by the writer
	err   chan error
}

// size is what w counts against MaxBatchBytes.
func (w *write) size() int {
	if w.in == nil {
		return 0
	}
	return len(w.in.Body)
}

// Open opens or creates the database at path and starts its writer.
func Open(path string, opts Options) (*DB, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	if opts.TrimInterval == 0 {
		opts.TrimInterval = DefaultTrimInterval
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.OpenTimeout,
		// The freelist is written with every commit (bbolt's default). Not
		// writing it saves nothing measurable on this append-mostly load,
		// but makes every open walk the whole file: on a 1.3 GB store,
		// 12 s cold and 1.3 GB resident, against under 1 ms and 3 MB.
		NoFreelistSync: false,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: file is locked by another process (is asnrelay already running?)", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := b.Update(initSchema); err != nil {
		b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path, opts: opts, done: make(chan struct{}),
		stopTrim: make(chan struct{}), trimDone: make(chan struct{}),
		appends: make(chan *write, opts.MaxBatch), writes: make(chan *write, opts.MaxBatch)}
	if !opts.noPrefill {
		db.fill = openFill(path)
	}
	go db.writer()
	if opts.TrimInterval > 0 {
		go db.trimmer(opts.TrimInterval)
	} else {
		close(db.trimDone)
	}
	return db, nil
}

func initSchema(tx *bolt.Tx) error {
	// Files written before the notif_deliveries index existed get it built once.
	indexMissing := tx.Bucket(bucketDeliveries) != nil && tx.Bucket(bucketNotifDelivery) == nil
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if indexMissing {
		if err := indexDeliveries(tx); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keySchema)
	switch {
	case v != nil && readU64(v) > SchemaVersion:
		return fmt.Errorf("%w: schema %d, this build reads up to %d", ErrNewerSchema, readU64(v), SchemaVersion)
	case v != nil && readU64(v) == SchemaVersion:
		return nil
	case v != nil && readU64(v) == 2:
		return meta.Put(keySchema, u64(SchemaVersion)) // nothing to move
	}
	// New, or version 1: every notification so far has its record, and the
	// unprocessed ones are in the inbox bucket.
	if err := meta.Put(keyProcessed, u64(tx.Bucket(bucketNotifications).Sequence())); err != nil {
		return err
	}
	return meta.Put(keySchema, u64(SchemaVersion))
}

// Path returns the file name of the database.
func (db *DB) Path() string { return db.path }

// Close stops accepting writes, commits those already queued, and closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.appends)
	close(db.writes)
	close(db.stopTrim)
	db.mu.Unlock()
	<-db.done
	<-db.trimDone
	if db.fill != nil {
		db.fill.Close()
	}
	return db.bolt.Close()
}

// Check runs bbolt's consistency check and returns every problem found.
func (db *DB) Check() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// update queues apply for the writer and waits until it is committed.
func (db *DB) update(apply func(tx *bolt.Tx) error) error {
	return db.queue(db.writes, &write{apply: apply, err: make(chan error, 1)})
}

// queue hands w to the writer on ch and waits until it is committed.
func (db *DB) queue(ch chan *write, w *write) error {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	ch <- w
	db.mu.RUnlock()
	return <-w.err
}

// writer is the only goroutine that writes. It commits what was queued while
// the previous commit ran as one transaction with one fsync (group commit).
// Appends go first: when some are queued, the commit holds only them, so a
// client's 200 waits for a small commit, not for processing and delivery
// records. Those commit between appends, or with them once they have been
// passed over maxPassedOver times in a row.
func (db *DB) writer() {
	defer close(db.done)
	appends, others := db.appends, db.writes
	batch := make([]*write, 0, db.opts.MaxBatch)
	passed := 0
	for appends != nil || others != nil {
		// Appends first: only the writer receives, so a queued one is there.
		var first *write
		var ok bool
		urgent := len(appends) > 0
		if urgent {
			first, ok = <-appends
		} else {
			select {
			case first, ok = <-appends:
				urgent = true
			case first, ok = <-others:
			}
		}
		if !ok { // closed by Close: stop reading it
			if urgent {
				appends = nil
			} else {
				others = nil
			}
			continue
		}
		batch = append(batch[:0], first)
		size := first.size()
		withOthers := !urgent || passed >= maxPassedOver
		if withOthers {
			limit := db.opts.MaxBatch
			if !urgent && db.opts.Now().Sub(db.lastAppend) < ingestRecent {
				limit = maxOthersWhileIngesting
			}
			batch, others = db.drain(batch, others, &size, limit)
			passed = 0
		}
		queued := len(batch)
		batch, appends = db.drain(batch, appends, &size, db.opts.MaxBatch)
		if urgent || len(batch) > queued {
			db.lastAppend = db.opts.Now()
		}
		if !withOthers && len(others) > 0 {
			passed++
		}
		db.commit(batch)
		if len(appends) == 0 && len(others) == 0 {
			db.prefill() // nothing waits: a good time
		}
	}
}

// drain adds to batch what ch holds, up to limit writes and MaxBatchBytes of
// bodies (counted in *size), without waiting; it returns nil for a closed
// channel.
func (db *DB) drain(batch []*write, ch chan *write, size *int, limit int) ([]*write, chan *write) {
	for ch != nil && len(batch) < limit && *size < db.opts.MaxBatchBytes {
		select {
		case w, ok := <-ch:
			if !ok {
				return batch, nil
			}
			batch = append(batch, w)
			*size += w.size()
		default:
			return batch, ch
		}
	}
	return batch, ch
}

func (db *DB) commit(batch []*write) {
	start := time.Now()
	err := db.bolt.Update(func(tx *bolt.Tx) error { return db.apply(tx, batch) })
	if err != nil && len(batch) > 1 {
		// Find the culprit: every write gets its own transaction and its own answer.
		for i := range batch {
			w := batch[i : i+1]
			w[0].err <- db.bolt.Update(func(tx *bolt.Tx) error { return db.apply(tx, w) })
		}
		db.release()
		return
	}
	db.release()
	if db.opts.OnCommit != nil {
		db.opts.OnCommit(len(batch), time.Since(start))
	}
	for _, w := range batch {
		w.err <- err
	}
}

// apply writes batch in tx: its appends first, as one batch of the ingest
// log, then the other writes in order.
func (db *DB) apply(tx *bolt.Tx, batch []*write) error {
	db.ins = db.ins[:0]
	for _, w := range batch {
		if w.in != nil {
			db.ins = append(db.ins, w.in)
		}
	}
	if len(db.ins) > 0 {
		first, pack, err := appendBatch(tx, db.pack, db.ins)
		db.pack = pack
		if err != nil {
			return err
		}
		for _, w := range batch {
			if w.in != nil {
				w.seq = first
				first++
			}
		}
	}
	for _, w := range batch {
		if w.apply != nil {
			if err := w.apply(tx); err != nil {
				return err
			}
		}
	}
	return nil
}

// release drops the writer's references to the bodies just committed, and a
// batch buffer too big to keep.
func (db *DB) release() {
	clear(db.ins)
	if cap(db.pack) > maxKeptPack {
		db.pack = nil
	}
}

// getJSON decodes the record at key in b; found is false when there is none.
// Callers name the record in their errors.
func getJSON[T any](b *bolt.Bucket, key []byte) (v T, found bool, err error) {
	raw := b.Get(key)
	if raw == nil {
		return v, false, nil
	}
	return v, true, json.Unmarshal(raw, &v)
}
