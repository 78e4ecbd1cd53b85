package relay

import (
	"context"
	"testing"
	"time"
)

func TestIngestGateWaitsForQuiet(t *testing.T) {
	g := newIngestGate()
	g.maxWait = time.Hour // only a quiet moment can end a wait here
	g.wait(t.Context())   // nothing in flight: returns at once

	g.enter()
	g.enter()
	returned := make(chan struct{})
	go func() { g.wait(t.Context()); close(returned) }()
	g.leave()
	stillWaiting(t, returned, "wait returned with a request still in flight")
	g.leave()
	waitReturned(t, returned, "wait did not return once ingest went quiet")

	// A token left from an earlier quiet moment does not end a later wait.
	g.enter()
	g.leave() // nobody waits: the token stays
	g.enter()
	returned = make(chan struct{})
	go func() { g.wait(t.Context()); close(returned) }()
	stillWaiting(t, returned, "a stale quiet signal ended the wait")
	g.leave()
	<-returned
}

func TestIngestGateBoundsTheWait(t *testing.T) {
	g := newIngestGate()
	g.enter() // a flood that never ends
	start := time.Now()
	done := make(chan struct{})
	go func() { g.wait(t.Context()); close(done) }()
	waitReturned(t, done, "background work starved: wait did not give up")
	if took := time.Since(start); took < g.maxWait {
		t.Fatalf("wait gave up after %s, before maxWait (%s)", took, g.maxWait)
	}

	g.maxWait = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	g.wait(ctx) // a cancelled context ends the wait at once; the test would hang otherwise
}

func TestIngestGateIsIdleOnlyAfterAQuietSpell(t *testing.T) {
	g := newIngestGate()
	if !g.idle() {
		t.Fatal("a gate that never saw a request is not idle")
	}
	g.enter()
	if g.idle() {
		t.Fatal("idle with a request in flight")
	}
	g.leave()
	if g.idle() {
		t.Fatal("idle right after a request left")
	}
	g.lastLeave.Store(time.Now().Add(-idleAfter).UnixNano())
	if !g.idle() {
		t.Fatalf("not idle %s after the last request left", idleAfter)
	}
}

func TestIngestGatePausesStepsWhileIngestIsActive(t *testing.T) {
	g := newIngestGate()
	g.pause = time.Hour // only the pause can hold a wait up here

	returned := make(chan struct{})
	go func() { g.wait(t.Context()); close(returned) }()
	// The gate never saw a request: idle, so no pause.
	waitReturned(t, returned, "an idle gate paused a background step")

	g.enter()
	g.leave() // nothing in flight, but a request just left: active
	ctx, cancel := context.WithCancel(t.Context())
	returned = make(chan struct{})
	go func() { g.wait(ctx); close(returned) }()
	stillWaiting(t, returned, "a background step did not pause while ingest was active")
	cancel()
	waitReturned(t, returned, "a cancelled context did not end the pause")
}

func TestIngestGateIsQuietWhileAFewRequestsOnlyWaitForTheirCommit(t *testing.T) {
	g := newIngestGate()
	g.maxWait = time.Hour
	g.pause = 0

	// One request being read or answered shuts the gate.
	g.enter()
	if quietState(g.state.Load()) {
		t.Fatal("quiet with a request using the CPU")
	}
	// Once it waits for its commit, background work may run: a waiter
	// blocked before the request went to the disk is let go.
	returned := make(chan struct{})
	go func() { g.wait(t.Context()); close(returned) }()
	stillWaiting(t, returned, "wait returned while the request was being read")
	g.storing()
	waitReturned(t, returned, "wait did not return once the only request waited for its commit")
	if n := g.inFlight(); n != 1 {
		t.Fatalf("in flight: %d, want 1 (waiting for a commit still counts)", n)
	}

	// A second request being read shuts it again, storing or not.
	g.enter()
	if quietState(g.state.Load()) {
		t.Fatal("quiet with one request storing and one being read")
	}
	// The first returns from its commit and is answered: still shut.
	g.stored()
	if quietState(g.state.Load()) {
		t.Fatal("quiet with two requests using the CPU")
	}
	g.leave()
	g.leave()
	if !quietState(g.state.Load()) || g.inFlight() != 0 {
		t.Fatalf("state %#x after every request left, want quiet and none in flight", g.state.Load())
	}
}

func TestIngestGateStaysShutWhenManyRequestsWaitForACommit(t *testing.T) {
	g := newIngestGate()
	for range fewStoring {
		g.enter()
		g.storing()
	}
	if !quietState(g.state.Load()) {
		t.Fatalf("%d requests all waiting for their commit: want quiet", fewStoring)
	}
	// One more is a flood: its successors arrive as soon as the commit
	// returns, so acknowledgements keep the core.
	g.enter()
	g.storing()
	if quietState(g.state.Load()) {
		t.Fatalf("%d requests waiting for their commit: want shut", fewStoring+1)
	}
	if n := g.inFlight(); n != fewStoring+1 {
		t.Fatalf("in flight: %d, want %d", n, fewStoring+1)
	}
	g.stored()
	g.leave()
	if !quietState(g.state.Load()) {
		t.Fatal("back to a few waiting for their commit: want quiet")
	}
}

// stillWaiting fails with msg if returned is closed within 50 ms: long
// enough for a wait that was about to end to end.
func stillWaiting(t *testing.T, returned <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-returned:
		t.Fatal(msg)
	case <-time.After(50 * time.Millisecond):
	}
}

// waitReturned fails with msg unless returned is closed within 10 s.
func waitReturned(t *testing.T, returned <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}
