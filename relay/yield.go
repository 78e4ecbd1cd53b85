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
//
// A request that waits for its commit needs no CPU until the fsync returns.
// When at most fewStoring requests are in flight and all of them wait so,
// the gate counts as quiet: at a steady rate, background work then runs
// during the fsyncs and keeps up with the stream. Counting those requests as
// busy left background work about one step per gap between requests: at
// 1 000 req/s it processed 0.35–0.48 notifications per request while the
// load lasted, so a stream that never paused built a backlog without end.
// In a flood, many requests wait for each commit and their successors arrive
// as soon as it returns, so the gate stays shut and acknowledgements keep
// the core.
type ingestGate struct {
	// state holds the requests in flight in its low 32 bits and, in its high
	// 32 bits, how many of them wait for their commit.
	state atomic.Int64
	// quiet gets a token when the gate becomes quiet. One waiter takes it,
	// so background steps start one at a time in a busy spell.
	quiet chan struct{}
	// maxWait is maxYield; tests change it.
	maxWait time.Duration
	// lastLeave is when a request last left (unix ns).
	lastLeave atomic.Int64

	// pause is how long a background step first sleeps while ingest is
	// active (see wait); tests change it.
	pause time.Duration
}

const (
	// fewStoring is the most requests, all waiting for their commit, that
	// leave the gate quiet.
	fewStoring = 4
	// storingOne counts one request waiting for its commit in a gate state.
	storingOne = 1 << 32
)

// stepPause is the sleep before a background step while ingest is active.
const stepPause = 20 * time.Microsecond

// idleAfter is how long ingest must have been quiet for the relay to count
// as idle: longer than the gaps of any steady stream worth the name.
const idleAfter = 50 * time.Millisecond

// idle reports whether no request is in flight and none has left for
// idleAfter, as after a burst: then background work may take all the CPU.
func (g *ingestGate) idle() bool {
	return g.inFlight() == 0 && time.Since(time.Unix(0, g.lastLeave.Load())) >= idleAfter
}

// inFlight is the number of ingest requests in flight.
func (g *ingestGate) inFlight() int64 { return g.state.Load() & (storingOne - 1) }

// quietState reports whether a gate state lets background work run: no
// request in flight, or a few that all wait for their commit.
func quietState(s int64) bool {
	n, storing := s&(storingOne-1), s>>32
	return n == 0 || (n == storing && n <= fewStoring)
}

func newIngestGate() *ingestGate {
	return &ingestGate{quiet: make(chan struct{}, 1), maxWait: maxYield, pause: stepPause}
}

func (g *ingestGate) enter() { g.state.Add(1) }

func (g *ingestGate) leave() {
	g.lastLeave.Store(time.Now().UnixNano())
	g.signal(g.state.Add(-1))
}

// storing and stored bracket a request's wait for its commit.
func (g *ingestGate) storing() { g.signal(g.state.Add(storingOne)) }
func (g *ingestGate) stored()  { g.state.Add(-storingOne) }

// signal hands a waiter the quiet token if state s is quiet.
func (g *ingestGate) signal(s int64) {
	if quietState(s) {
		select {
		case g.quiet <- struct{}{}:
		default:
		}
	}
}

// wait is called before each background step. While ingest is active it
// first sleeps for pause; then it returns once no ingest request is in
// flight or only a few that wait for their commit (see ingestGate), after
// maxWait, or when ctx ends, whichever comes first.
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
	if quietState(g.state.Load()) {
		return
	}
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	for !quietState(g.state.Load()) {
		select {
		case <-g.quiet: // maybe stale: look again
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
