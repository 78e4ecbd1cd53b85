// Package store keeps notifications, their exact bodies and their deliveries in one bbolt file.
//
// # Buckets
//
//	meta            "schema" -> uint64 schema version (big-endian)
//	bodies          seq -> exact request body, never modified
//	notifications   seq -> Notification (JSON)
//	inbox           seq -> empty; notifications received but not yet processed
//	uuids           notificationUUID -> seq (8 bytes) + verified flag (1 byte)
//	decoded         seq -> decoded JSON document for `payload: decoded` targets
//	deliveries      id -> Delivery (JSON)
//	due/<target>    nextAttemptAt (unix ns) + id -> empty; pending deliveries in due order
//	pending/<target> id -> empty; pending deliveries in creation order (oldest first)
//	dead/<target>   id -> empty; dead deliveries, oldest first
//	attempts        id + attempt number (uint32) -> Attempt (JSON)
//
// seq and id are bbolt bucket sequences encoded as 8-byte big-endian integers, so
// cursors read them in arrival order. Due keys put the time first, so the work due
// next is always at the start of a target's bucket.
//
// # Durability
//
// Every write goes through one writer goroutine. It takes every write queued while
// the previous commit was running, applies them in one bbolt transaction and
// commits it with one fsync (group commit), then answers each caller. When Append
// returns nil the body is on disk. A write that fails inside a batch is retried on
// its own, so one bad write cannot fail its neighbours.
//
// # Caveats
//
// bbolt allows one process per file: the daemon holds the file lock, and every
// other command talks to the daemon's admin API instead.
package store
