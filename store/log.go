package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The ingest log holds what Append acknowledged: every commit of appends adds
// one batch, the bodies and their metadata packed back to back in one value,
// so that a body is written once and the commit writes few pages besides.
// Each batch is a nested bucket of its own with that one value. Under a
// shared parent the value would share its leaf with the batches before it,
// and bbolt would write them again at every commit.
//
// A batch's value:
//
//	version      1 byte (batchVersion)
//	count        uint32, big-endian
//	offsets      count × uint32, big-endian: where each entry starts
//	entries      count × entry
//
// An entry: receivedAt (varint unix ns), then app, remoteAddr, contentType
// and body, each as a uvarint length and the bytes. Entry i has sequence
// number first+i, where first is the batch's key in the log bucket.

const batchVersion = 1

// batchKey is the key of the one value inside a batch's bucket.
var batchKey = []byte("b")

// errBadBatch marks a batch value that does not decode.
var errBadBatch = errors.New("malformed ingest log batch")

// logEntry is one acknowledged body with its metadata. Body aliases bbolt's
// memory and is valid only inside the transaction that read it.
type logEntry struct {
	Seq         uint64
	ReceivedAt  time.Time
	App         string
	RemoteAddr  string
	ContentType string
	Body        []byte
}

// notification is the metadata of an entry not processed yet.
func (e logEntry) notification() Notification {
	return Notification{Seq: e.Seq, App: e.App, ReceivedAt: e.ReceivedAt, RemoteAddr: e.RemoteAddr,
		ContentType: e.ContentType, Size: len(e.Body), State: StateReceived}
}

// encodeBatch appends the batch value of ins to buf.
func encodeBatch(buf []byte, ins []*Incoming) []byte {
	start := len(buf)
	buf = append(buf, batchVersion)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(ins)))
	table := len(buf)
	buf = append(buf, make([]byte, 4*len(ins))...)
	for i, in := range ins {
		binary.BigEndian.PutUint32(buf[table+4*i:], uint32(len(buf)-start))
		buf = binary.AppendVarint(buf, in.ReceivedAt.UnixNano())
		for _, s := range [...]string{in.App, in.RemoteAddr, in.ContentType} {
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
		buf = binary.AppendUvarint(buf, uint64(len(in.Body)))
		buf = append(buf, in.Body...)
	}
	return buf
}

// batch is a decoded batch header: entries are decoded on demand.
type batch struct {
	first uint64
	value []byte
	count int
}

func parseBatch(first uint64, v []byte) (batch, error) {
	if len(v) < 5 || v[0] != batchVersion {
		return batch{}, fmt.Errorf("batch %d: %w", first, errBadBatch)
	}
	n := binary.BigEndian.Uint32(v[1:])
	if n == 0 || uint64(n)*4 > uint64(len(v)-5) {
		return batch{}, fmt.Errorf("batch %d: %w", first, errBadBatch)
	}
	return batch{first: first, value: v, count: int(n)}, nil
}

// last is the sequence number of the batch's last entry.
func (b batch) last() uint64 { return b.first + uint64(b.count) - 1 }

// entry decodes entry i.
func (b batch) entry(i int) (logEntry, error) {
	bad := func() (logEntry, error) {
		return logEntry{}, fmt.Errorf("batch %d entry %d: %w", b.first, i, errBadBatch)
	}
	off := binary.BigEndian.Uint32(b.value[5+4*i:])
	if off < uint32(5+4*b.count) || uint64(off) >= uint64(len(b.value)) {
		return bad()
	}
	p := b.value[off:]
	at, n := binary.Varint(p)
	if n <= 0 {
		return bad()
	}
	p = p[n:]
	var fields [4][]byte
	for f := range fields {
		size, n := binary.Uvarint(p)
		if n <= 0 || size > uint64(len(p)-n) {
			return bad()
		}
		fields[f], p = p[n:n+int(size)], p[n+int(size):]
	}
	return logEntry{Seq: b.first + uint64(i), ReceivedAt: time.Unix(0, at),
		App: string(fields[0]), RemoteAddr: string(fields[1]), ContentType: string(fields[2]), Body: fields[3]}, nil
}

// appendBatch stores ins as one batch, numbered after the newest
// notification, and returns the first sequence number.
func appendBatch(tx *bolt.Tx, buf []byte, ins []*Incoming) (uint64, []byte, error) {
	records := tx.Bucket(bucketNotifications)
	first := records.Sequence() + 1
	if err := records.SetSequence(first + uint64(len(ins)) - 1); err != nil {
		return 0, buf, err
	}
	b, err := growing(tx, bucketLog).CreateBucket(u64(first))
	if err != nil {
		return 0, buf, err
	}
	buf = encodeBatch(buf[:0], ins)
	return first, buf, b.Put(batchKey, buf)
}

func readBatch(log *bolt.Bucket, k []byte) (batch, error) {
	sub := log.Bucket(k)
	if sub == nil {
		return batch{}, fmt.Errorf("batch %d: %w", readU64(k), errBadBatch)
	}
	return parseBatch(readU64(k), sub.Get(batchKey))
}

// seekBatch positions c on the batch that would hold seq: the last one that
// starts at or before seq, failing that the first one. It returns its key,
// nil for an empty log.
func seekBatch(c *bolt.Cursor, seq uint64) []byte {
	k, _ := c.Seek(u64(seq))
	switch {
	case k == nil:
		k, _ = c.Last()
	case readU64(k) > seq:
		if prev, _ := c.Prev(); prev != nil {
			k = prev
		} else {
			k, _ = c.First()
		}
	}
	return k
}

// batchOf returns the batch holding seq; found is false when none does.
func batchOf(tx *bolt.Tx, seq uint64) (b batch, found bool, err error) {
	k := seekBatch(tx.Bucket(bucketLog).Cursor(), seq)
	if k == nil || readU64(k) > seq {
		return batch{}, false, nil
	}
	b, err = readBatch(tx.Bucket(bucketLog), k)
	if err != nil || seq > b.last() {
		return batch{}, false, err
	}
	return b, true, nil
}

// logEntryAt returns the log entry of seq; found is false when the log does
// not hold it (a file written before the log, or a batch retention deleted).
func logEntryAt(tx *bolt.Tx, seq uint64) (logEntry, bool, error) {
	b, found, err := batchOf(tx, seq)
	if err != nil || !found {
		return logEntry{}, false, err
	}
	e, err := b.entry(int(seq - b.first))
	return e, err == nil, err
}

// processedThrough is the watermark: every log entry up to it has a record in
// notifications (or had one, until retention deleted it). Entries after it
// are in the inbox unless they have a record, which out-of-order processing
// writes before the watermark reaches them.
func processedThrough(tx *bolt.Tx) uint64 {
	return readU64(tx.Bucket(bucketMeta).Get(keyProcessed))
}

// advanceProcessed moves the watermark over the records written after it.
func advanceProcessed(tx *bolt.Tx) error {
	w := processedThrough(tx)
	records := tx.Bucket(bucketNotifications)
	next := w
	for next < records.Sequence() && records.Get(u64(next+1)) != nil {
		next++
	}
	if next == w {
		return nil
	}
	return tx.Bucket(bucketMeta).Put(keyProcessed, u64(next))
}

// unprocessedLog calls fn for each log entry after the watermark that has no
// record yet, oldest first, until fn returns false.
func unprocessedLog(tx *bolt.Tx, fn func(e logEntry) (bool, error)) error {
	w := processedThrough(tx)
	records := tx.Bucket(bucketNotifications)
	log := tx.Bucket(bucketLog)
	c := log.Cursor()
	for k := seekBatch(c, w+1); k != nil; k, _ = c.Next() {
		b, err := readBatch(log, k)
		if err != nil {
			return err
		}
		if b.last() <= w {
			continue
		}
		for i := 0; i < b.count; i++ {
			seq := b.first + uint64(i)
			if seq <= w || records.Get(u64(seq)) != nil {
				continue
			}
			e, err := b.entry(i)
			if err != nil {
				return err
			}
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// dropBatchIfDone deletes the batch holding seq once every one of its
// entries is processed and no record of it is left: a batch's bodies go when
// the last notification committed with them goes.
func dropBatchIfDone(tx *bolt.Tx, seq uint64) error {
	b, found, err := batchOf(tx, seq)
	if err != nil || !found || b.last() > processedThrough(tx) {
		return err
	}
	k, _ := tx.Bucket(bucketNotifications).Cursor().Seek(u64(b.first))
	if k != nil && readU64(k) <= b.last() {
		return nil
	}
	return tx.Bucket(bucketLog).DeleteBucket(u64(b.first))
}

// unprocessedCount is how many log entries wait to be processed.
func unprocessedCount(tx *bolt.Tx) (int, error) {
	w := processedThrough(tx)
	log := tx.Bucket(bucketLog)
	n := 0
	c := log.Cursor()
	for k := seekBatch(c, w+1); k != nil; k, _ = c.Next() {
		b, err := readBatch(log, k)
		if err != nil {
			return 0, err
		}
		if b.last() > w {
			n += int(b.last() - max(w, b.first-1))
		}
	}
	// Records past the watermark, written out of order, are processed.
	rc := tx.Bucket(bucketNotifications).Cursor()
	for k, _ := rc.Seek(u64(w + 1)); k != nil; k, _ = rc.Next() {
		if _, inLog, err := batchOf(tx, readU64(k)); err != nil {
			return 0, err
		} else if inLog {
			n--
		}
	}
	return n, nil
}

// newestFirst calls fn for each notification below seq before (0: all),
// newest first, until fn returns false: records, and the log entries still
// waiting for theirs, merged by sequence number.
func newestFirst(tx *bolt.Tx, before uint64, fn func(n Notification) (bool, error)) error {
	records := tx.Bucket(bucketNotifications).Cursor()
	var rk, rv []byte
	if before == 0 {
		rk, rv = records.Last()
	} else if rk, rv = records.Seek(u64(before)); rk == nil {
		rk, rv = records.Last()
	} else {
		rk, rv = records.Prev()
	}
	pending := newLogNewestFirst(tx, before)
	e, ok, err := pending.next()
	for err == nil && (rk != nil || ok) {
		var n Notification
		switch {
		case ok && (rk == nil || e.Seq > readU64(rk)):
			n = e.notification()
			e, ok, err = pending.next()
		default:
			if err = json.Unmarshal(rv, &n); err != nil {
				return fmt.Errorf("notification %d: %w", readU64(rk), err)
			}
			if ok && e.Seq == readU64(rk) { // both: the record is newer
				e, ok, err = pending.next()
			}
			rk, rv = records.Prev()
		}
		if err != nil {
			return err
		}
		if more, err := fn(n); err != nil || !more {
			return err
		}
	}
	return err
}

// logNewestFirst walks the log entries after the watermark backwards.
type logNewestFirst struct {
	log     *bolt.Bucket
	c       *bolt.Cursor
	w       uint64 // the watermark: entries up to it have records
	below   uint64 // only entries before this one
	b       batch
	i       int // the entry of b to yield next; -1 when b is used up
	started bool
	done    bool
}

func newLogNewestFirst(tx *bolt.Tx, before uint64) *logNewestFirst {
	log := tx.Bucket(bucketLog)
	if before == 0 {
		before = math.MaxUint64
	}
	return &logNewestFirst{log: log, c: log.Cursor(), w: processedThrough(tx), below: before, i: -1}
}

func (it *logNewestFirst) next() (logEntry, bool, error) {
	for !it.done && it.i < 0 {
		var k []byte
		if !it.started {
			it.started = true
			if k = seekBatch(it.c, it.below-1); k != nil && readU64(k) >= it.below {
				k = nil // the log starts after before
			}
		} else {
			k, _ = it.c.Prev()
		}
		if k == nil {
			it.done = true
			break
		}
		b, err := readBatch(it.log, k)
		if err != nil {
			return logEntry{}, false, err
		}
		it.b, it.i = b, b.count-1
		if b.last() >= it.below {
			it.i = int(it.below - 1 - b.first)
		}
	}
	if it.done || it.b.first+uint64(it.i) <= it.w {
		it.done = true
		return logEntry{}, false, nil
	}
	e, err := it.b.entry(it.i)
	it.i--
	return e, err == nil, err
}
