// Package forward delivers stored notifications to HTTP targets, with retry,
// exponential backoff, probing of failing targets, and dead letters.
//
// Each target has one worker. A healthy target gets up to Concurrency
// deliveries at once, earliest due first. When an attempt fails the target is
// marked failing: its backlog waits while a single delivery probes it, at
// increasing intervals, and once a probe succeeds the backlog drains at full
// concurrency again. Every attempt is recorded in the store before the worker
// moves on, so a crash at any point resumes from the store: delivery is
// at-least-once and targets must tolerate duplicates (webhook-id helps them).
package forward
