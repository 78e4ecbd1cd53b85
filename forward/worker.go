package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/store"
)

const (
	// responseSample is how much of a response body is kept with an attempt.
	responseSample = 1024
	// drainLimit is how much of a response is read to reuse the connection.
	drainLimit = 64 << 10
	// expireBatch bounds the deliveries marked dead in one transaction.
	expireBatch = 256
	// idleWait is the longest a worker sleeps without being woken.
	idleWait = time.Minute
	// maxRecording bounds the deliveries of one target that were sent and
	// are waiting for their attempt to commit. They no longer hold a request
	// slot, so a target is not idle while the store writes; this keeps the
	// goroutines and bodies held meanwhile bounded when the disk is slow.
	maxRecording = 256
)

// worker sends one target's deliveries.
type worker struct {
	e      *Engine
	target Target
	key    []byte
	log    zerolog.Logger
	wake   chan struct{}
	// results carries finished attempts back to the worker loop.
	results chan result

	mu sync.Mutex // guards the fields below, read by Health
	// inflight holds every delivery taken from the due queue and not yet
	// finished, so that Due skips it; sending counts those of them whose
	// request has not ended, which Concurrency bounds. When the relay is
	// idle, a delivered one stops counting as soon as its answer arrives,
	// and its record commits while the next request goes out.
	inflight  map[uint64]bool
	sending   int
	failing   bool
	nextProbe time.Time
	probe     *backoff.ExponentialBackOff
}

type result struct {
	id  uint64
	ok  bool
	end time.Time // when the attempt ended, on the engine's clock
	// retryAfter is the wait the target asked for.
	retryAfter time.Duration
	// released says the attempt already gave its request slot back.
	released bool
}

func (w *worker) run(ctx context.Context) {
	var attempts sync.WaitGroup
	defer attempts.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := w.step(ctx, &attempts)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case r := <-w.results:
			w.finish(r)
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// step expires old deliveries, starts what is due, and returns how long to
// wait before looking again.
func (w *worker) step(ctx context.Context, attempts *sync.WaitGroup) time.Duration {
	now := w.e.opts.Now()
	next := w.expire(now)

	w.mu.Lock()
	slots := min(w.target.Concurrency-w.sending, w.target.Concurrency+maxRecording-len(w.inflight))
	if w.failing {
		// Probe, don't hammer: one delivery at a time, not before nextProbe.
		if len(w.inflight) > 0 {
			slots = 0
		} else if now.Before(w.nextProbe) {
			slots = 0
			next = earliest(next, w.nextProbe)
		} else {
			slots = 1
		}
	}
	w.mu.Unlock()
	if slots <= 0 {
		return until(now, next)
	}

	due, nextDue, err := w.e.db.Due(w.target.Name, now, slots, w.isInFlight)
	if err != nil {
		w.log.Error().Err(err).Msg("read due deliveries")
		return time.Second
	}
	for _, d := range due {
		w.mu.Lock()
		w.inflight[d.ID] = true
		w.sending++
		w.mu.Unlock()
		attempts.Add(1)
		go func() {
			defer attempts.Done()
			if y := w.e.opts.Yield; y != nil {
				y(ctx)
				if ctx.Err() != nil {
					// Shut down before it began: the delivery stays due.
					w.results <- result{id: d.ID, ok: true, end: w.e.opts.Now()}
					return
				}
			}
			// An attempt that started finishes even during shutdown, so its
			// outcome is recorded rather than repeated after restart.
			w.results <- w.attempt(context.WithoutCancel(ctx), d)
		}()
	}
	if len(due) == slots {
		// Possibly more due right now; the next result or wake brings us back.
		return idleWait
	}
	return until(now, earliest(next, nextDue))
}

// expire marks dead the deliveries older than MaxAge and returns when the
// oldest remaining one will expire.
func (w *worker) expire(now time.Time) time.Time {
	oldest, err := w.e.db.OldestPending(w.target.Name)
	if err != nil || oldest.IsZero() {
		return time.Time{}
	}
	cutoff := now.Add(-w.target.Retry.MaxAge)
	if oldest.After(cutoff) {
		return oldest.Add(w.target.Retry.MaxAge)
	}
	dead, err := w.e.db.ExpirePending(w.target.Name, cutoff, expireBatch, w.isInFlight)
	if err != nil {
		w.log.Error().Err(err).Msg("expire deliveries")
		return now.Add(time.Second)
	}
	for _, d := range dead {
		w.logDead(d)
		if w.e.opts.OnAttempt != nil {
			w.e.opts.OnAttempt(d, store.Attempt{}, ResultDead)
		}
	}
	if len(dead) == expireBatch {
		return now // more to expire
	}
	return time.Time{}
}

func (w *worker) finish(r result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.inflight, r.id)
	if !r.released {
		w.sending--
	}
	if r.ok {
		if w.failing {
			w.log.Info().Msg("target recovered")
		}
		w.failing = false
		w.probe.Reset()
		return
	}
	if !w.failing {
		w.log.Warn().Msg("target failing: holding its backlog while one delivery probes it")
	}
	w.failing = true
	w.nextProbe = r.end.Add(max(w.probe.NextBackOff(), r.retryAfter))
}

func (w *worker) isInFlight(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight[id]
}

// attempt sends d once, records the attempt, and decides what comes next.
func (w *worker) attempt(ctx context.Context, d store.Delivery) result {
	body, err := w.e.db.Payload(d)
	if err != nil {
		// Without its payload the delivery can never succeed.
		w.log.Error().Err(err).Uint64("delivery", d.ID).Msg("delivery payload missing")
		rec, rerr := w.e.db.RecordAttempt(d.ID, store.Attempt{At: w.e.opts.Now(), Error: err.Error()}, store.Next{State: store.DeliveryDead})
		if rerr == nil {
			w.logDead(rec)
		}
		return result{id: d.ID, ok: true, end: w.e.opts.Now()}
	}
	start := w.e.opts.Now()
	a, retryAfter := w.send(ctx, d, body, start)
	a.At = start
	released := a.Error == "" && (w.e.opts.Idle == nil || w.e.opts.Idle())
	if released {
		// Delivered, and nothing else waits for the CPU (a backlog after a
		// burst): the next request may go out while this one is recorded. A
		// failure keeps its slot until the worker has seen it, so that a
		// failing target is not sent more before it is found failing.
		w.release()
	}

	next := store.Next{State: store.DeliverySucceeded}
	res := ResultSuccess
	ok := a.Error == ""
	end := start.Add(a.Latency)
	if !ok {
		at := end.Add(max(w.target.Retry.delay(d.Attempts+1), retryAfter))
		next = store.Next{State: store.DeliveryPending, At: at}
		res = ResultRetry
		// Past max_age already: dead now. Otherwise the expiry sweep ends it
		// when it gets there, whether or not another attempt fits before.
		if !start.Before(d.CreatedAt.Add(w.target.Retry.MaxAge)) {
			next, res = store.Next{State: store.DeliveryDead}, ResultDead
		}
	}
	rec, err := w.e.db.RecordAttempt(d.ID, a, next)
	if err != nil {
		// Not recorded: the delivery keeps its due time and is tried again.
		// Pace it as for a failing target (one probe at a time, backing off):
		// otherwise a success that cannot be recorded (disk full) is sent
		// again at once, as fast as the target answers.
		w.log.Error().Err(err).Uint64("delivery", d.ID).Msg("record attempt")
		return result{id: d.ID, ok: false, end: end, released: released}
	}
	switch res {
	case ResultRetry:
		w.log.Warn().Uint64("delivery", d.ID).Str("notification_uuid", d.UUID).Int("attempt", rec.Attempts).
			Int("status", a.Status).Str("error", a.Error).Time("next_attempt_at", next.At).Msg("delivery attempt failed")
	case ResultDead:
		w.logDead(rec)
	default:
		w.log.Debug().Uint64("delivery", d.ID).Str("notification_uuid", d.UUID).Int("attempt", rec.Attempts).
			Dur("latency", a.Latency).Msg("delivered")
	}
	if w.e.opts.OnAttempt != nil {
		w.e.opts.OnAttempt(rec, a, res)
	}
	return result{id: d.ID, ok: ok, end: end, retryAfter: retryAfter, released: released}
}

// release gives an attempt's request slot back and wakes the worker to use it.
func (w *worker) release() {
	w.mu.Lock()
	w.sending--
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) logDead(d store.Delivery) {
	w.log.Error().Uint64("delivery", d.ID).Str("notification_uuid", d.UUID).Int("attempts", d.Attempts).
		Str("last_error", d.LastError).Msg("delivery dead: max_age passed; replay it once the target is fixed")
}

// send makes one HTTP request and describes it as an Attempt; an Attempt with
// an empty Error is a success.
func (w *worker) send(ctx context.Context, d store.Delivery, body []byte, now time.Time) (store.Attempt, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, w.target.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.target.URL, bytes.NewReader(body))
	if err != nil {
		return store.Attempt{Error: err.Error()}, 0
	}
	w.setHeaders(req.Header, d, body, now)

	start := time.Now()
	resp, err := w.e.opts.Client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			// Its URL is the target's, query secrets and all; the error is
			// logged and shown on the dashboard, and the target is named anyway.
			err = ue.Err
		}
		return store.Attempt{Latency: time.Since(start), Error: err.Error()}, 0
	}
	defer resp.Body.Close()
	sample, _ := io.ReadAll(io.LimitReader(resp.Body, responseSample))
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	a := store.Attempt{Status: resp.StatusCode, Latency: time.Since(start), Response: string(sample)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.Error = "HTTP " + strconv.Itoa(resp.StatusCode)
		return a, retryAfter(resp.Header, now)
	}
	return a, 0
}

func (w *worker) setHeaders(h http.Header, d store.Delivery, body []byte, now time.Time) {
	for k, v := range w.target.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", w.e.opts.UserAgent)
	h.Set("Asnrelay-App", d.App)
	if d.Environment != "" {
		h.Set("Asnrelay-Environment", d.Environment)
	}
	if d.Type != "" {
		h.Set("Asnrelay-Notification-Type", d.Type)
	}
	h.Set("Asnrelay-Attempt", strconv.Itoa(d.Attempts+1))
	id := d.UUID
	if id == "" {
		id = fmt.Sprintf("asnrelay-%d", d.Seq)
	}
	ts := now.Unix()
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	if w.key != nil {
		h.Set("Webhook-Signature", Sign(w.key, id, ts, body))
	}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

// until returns the wait from now to t; idleWait when there is nothing to wait for.
func until(now, t time.Time) time.Duration {
	if t.IsZero() {
		return idleWait
	}
	return max(t.Sub(now), 0)
}
