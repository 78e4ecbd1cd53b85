// Package store keeps notifications, their exact bodies and their deliveries in one bbolt file.
//
// # Buckets
//
//	meta            "schema" -> uint64 schema version (big-endian)
//	                "processed" -> the watermark: the log's entries up to it are processed
//	log             first seq -> nested bucket: "b" -> one batch, every body one
//	                commit acknowledged with its metadata (log.go has the layout)
//	notifications   seq -> Notification (JSON), written when it is processed; it
//	                lists the ids of the notification's deliveries (schema 3)
//	inbox           seq -> empty; notifications put back by Requeue
//	bodies          seq -> exact request body, in files written before the log
//	uuids           notificationUUID -> seq (8 bytes) + verified flag (1 byte)
//	decoded         seq -> decoded JSON document for `payload: decoded` targets
//	deliveries      id -> Delivery (JSON), with its latest 20 attempts
//	due/<target>    nextAttemptAt (unix ns) + id -> empty; pending deliveries in due order
//	pending/<target> id -> empty; pending deliveries in creation order (oldest first)
//	dead/<target>   id -> empty; dead deliveries not yet replayed, oldest first
//	attempts        id + attempt number (uint32) -> Attempt (JSON); read, no longer
//	                written: attempts recorded before the delivery kept them
//	notif_deliveries seq + id -> empty; deliveries of a notification that its record
//	                does not list: those of files written before schema 3, and
//	                those created before the notification had a record
//	consumption     transactionId -> ConsumptionJob (JSON): every CONSUMPTION_REQUEST
//	                of the transaction and what became of its answer
//	consumption_due sendAt (unix ns) + transactionId -> empty; one key per
//	                transaction with a pending request, for its oldest one
//	refunds         transactionId -> Refund (JSON): the refund ledger record
//	refunds_by_time firstSeen (unix ns) + transactionId -> empty; ledger records
//	                in the order they were created
//
// seq and id are bbolt bucket sequences encoded as 8-byte big-endian integers, so
// cursors read them in arrival order (seq is the notifications bucket's). Due keys put the time first, so the work due
// next is always at the start of a target's bucket.
//
// # Apple work
//
// Process writes the Apple work of a verified (not duplicate) notification in
// the transaction that records its state: a CONSUMPTION_REQUEST, REFUND,
// REFUND_DECLINED, REFUND_REVERSED or REVOKE updates the transaction's ledger
// record, and a CONSUMPTION_REQUEST of an app with consumption enabled adds a
// request to the transaction's consumption job. Jobs are keyed by transaction,
// not notificationUUID, because Apple repeats the request with new UUIDs; the
// due index holds one key per transaction, so one answer at most is in
// flight per transaction and requests are answered in order. A final answer
// and the ledger's copy of it commit together. REFUND, REFUND_DECLINED and
// REVOKE cancel the answers still pending for the transaction. Ledger records
// and jobs are kept forever (they are small and rare); they do not depend on
// the notifications retention deletes.
//
// # The ingest log
//
// Append writes nothing per notification: the appends of one commit become one
// batch, their bodies and metadata back to back in one value, so that a body
// is written once and a commit touches few pages besides. A notification that
// waits to be processed is a log entry after the watermark without a record;
// its metadata (state received) is read from the log. Process writes the
// record and moves the watermark over every record that follows it, so
// processing in order keeps the watermark at the newest processed one.
//
// # Durability
//
// Every write goes through one writer goroutine. It takes every write queued while
// the previous commit was running, applies them in one bbolt transaction and
// commits it (bbolt fsyncs the pages, then the meta page: group commit), then
// answers each caller. When Append returns nil the body is on disk. Appends go first: while some are queued, a
// commit holds only them (a client waits on each), and the other writes commit
// in the gaps, at most maxOthersWhileIngesting at a time while appends keep
// coming, or with the appends after maxPassedOver commits without them. A
// write that fails inside a batch is retried on its own, so one bad write
// cannot fail its neighbours.
//
// # Replays
//
// A replay never rewrites history: it creates a new delivery whose ReplayOf
// names the one it repeats, which keeps its state and attempts and records
// ReplayedBy. A replayed dead delivery leaves dead/<target> (the dead-letter
// queue), so replaying "all dead" twice does not send anything twice.
// Requeue puts unverified notifications back in the inbox for another
// verification.
//
// # Retention
//
// Sweep deletes succeeded and dead deliveries (with their attempts and index
// entries) that finished before their cutoff, then notifications received
// before theirs that are processed and have no delivery left: a notification
// lives as long as its longest-kept delivery. Deleting a notification deletes
// its metadata, decoded document and the notificationUUID entry it holds
// (after that, a copy with the same UUID is no longer a duplicate; the caller
// keeps notifications at least as long as Apple retries), and Body no longer
// returns it. Its bytes go with its batch, once the last notification of the
// batch is deleted: a batch with one notification kept longer (a dead
// delivery) keeps its neighbours' bytes on disk as long. Nothing in the inbox
// or pending is ever deleted, nor anything after the watermark. Each transaction deletes at most
// SweepKeys keys, through the writer like every other write. bbolt reuses
// freed pages but never shrinks the file; Compact (daemon stopped) does.
//
// # Memory
//
// bbolt reads through a shared, read-only memory map of the whole file, so
// every page a read touches stays resident in the process until the kernel
// wants the memory back: with a large file, resident memory would grow by
// every body processed or delivered. Every DefaultTrimInterval the DB tells
// the kernel it no longer needs the mapped pages of a file over 64 MiB
// (madvise MADV_DONTNEED, Linux only). The pages stay in the page cache and
// the next read maps them again. Buckets keyed by growing sequence numbers
// fill their pages before splitting (bbolt's FillPercent 1), so that the last
// page, which each commit rebuilds in memory, holds fewer entries.
//
// # Caveats
//
// bbolt allows one process per file: the daemon holds the file lock, and every
// other command talks to the daemon's admin API instead.
package store
