package relay

import (
	"context"
	"sync/atomic"
	"time"
)

// maxYield is the longest background work waits for the ingest path to go
// quiet. It bounds how far a sustained flood can starve verification and
// forwarding: each of them still takes a step at least this often. In a
// flood of 128 connections the gate is hardly ever quiet, so this is how
// much of the core verification takes from acknowledgements: at 5 ms about
// 200 verifications a second. With 20 ms the closed loop made 28.8 k req/s
// against 26.6 k on average over eight interleaved pairs (6 of 8 higher).
const maxYield = 20 * time.Millisecond

// ingestGate puts acknowledgements first. Ingest requests enter and leave
// it; verification and forwarding call wait before each step, and so run in
// the gaps between requests. A burst is acknowledged at full speed, which is
// what Apple's retry schedule rewards, and processed right after it from the
// durable inbox.
type ingestGate struct {
	inflight atomic.Int64
	// quiet gets a token when the last request in flight leaves. One waiter
	// takes it, so background steps start one at a time in a busy spell.
	quiet chan struct{}
	// maxWait is maxYield; tests change it.
	maxWait time.Duration
	// lastLeave is when a request last left (unix ns).
	lastLeave atomic.Int64

	// pause is how long a background step first sleeps while ingest is
	// active (see wait); tests change it.
	pause time.Duration
}

// stepPause is the sleep before a background step while ingest is active.
const stepPause = 20 * time.Microsecond

// idleAfter is how long ingest must have been quiet for the relay to count
// as idle: longer than the gaps of any steady stream worth the name.
const idleAfter = 50 * time.Millisecond

// idle reports whether no request is in flight and none has left for
// idleAfter, as after a burst: then background work may take all the CPU.
func (g *ingestGate) idle() bool {
	return g.inflight.Load() == 0 && time.Since(time.Unix(0, g.lastLeave.Load())) >= idleAfter
}

func newIngestGate() *ingestGate {
	return &ingestGate{quiet: make(chan struct{}, 1), maxWait: maxYield, pause: stepPause}
}

func (g *ingestGate) enter() { g.inflight.Add(1) }

func (g *ingestGate) leave() {
	g.lastLeave.Store(time.Now().UnixNano())
	if g.inflight.Add(-1) == 0 {
		select {
		case g.quiet <- struct{}{}:
		default:
		}
	}
}

// wait is called before each background step. While ingest is active it
// first sleeps for pause; then it returns once no ingest request is in
// flight, after maxWait, or when ctx ends, whichever comes first.
//
// The sleep matters even when nothing is in flight: a request that has
// arrived but not yet been read is invisible to the gate, and the Go
// scheduler runs goroutines that are already runnable before it polls the
// network again. A background step that follows the previous one at once
// keeps such requests waiting; one that sleeps first lets them in, and
// spaces background work out while requests keep coming, so that
// acknowledgements keep the core and the backlog is worked off once ingest
// goes quiet.
func (g *ingestGate) wait(ctx context.Context) {
	if !g.idle() {
		t := time.NewTimer(g.pause)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if g.inflight.Load() == 0 {
		return
	}
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	for g.inflight.Load() > 0 {
		select {
		case <-g.quiet: // maybe stale: look again
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
