package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asnrelay/asnrelay/relay"
	"github.com/asnrelay/asnrelay/store"
)

// ScaleResult is the relay on big databases.
type ScaleResult struct {
	Stored  *StoredResult  `json:"stored,omitempty"`
	Restart *RestartResult `json:"restart,omitempty"`
}

// StoredResult is the relay serving with many notifications already stored,
// processed and delivered (the steady state of a busy relay with 30 days of
// retention).
type StoredResult struct {
	Server          string      `json:"server"`
	Notifications   int         `json:"notifications"`
	FileMiB         float64     `json:"file_mib"`
	GenerateSeconds float64     `json:"generate_seconds,omitempty"` // 0 when an existing store was reused
	Starts          []Start     `json:"starts,omitempty"`           // cold, then warm
	SettleSeconds   float64     `json:"settle_seconds"`             // from the first ack until the relay's CPU went idle; load starts then
	Open            *LoadResult `json:"open,omitempty"`
	E2E             *E2EResult  `json:"ingest_to_target,omitempty"`
	Memory          *ProcMemory `json:"memory,omitempty"` // after the load
	Error           string      `json:"error,omitempty"`
}

// RestartResult is a restart with a backlog of pending deliveries to a
// target that is down.
type RestartResult struct {
	Server          string      `json:"server"`
	Pending         int         `json:"pending"`
	FileMiB         float64     `json:"file_mib"`
	GenerateSeconds float64     `json:"generate_seconds"`
	Starts          []Start     `json:"starts,omitempty"` // cold, then warm
	Open            *LoadResult `json:"open,omitempty"`   // right after the cold start, while the backlog is retried
	Memory          *ProcMemory `json:"memory,omitempty"`
	Error           string      `json:"error,omitempty"`
}

// Start is one start of the relay on an existing store.
type Start struct {
	// Cold: the file was evicted from the page cache first, as after a
	// reboot or on a new host; warm: it was just used.
	Cold       bool    `json:"cold"`
	HealthzMs  float64 `json:"healthz_ms"`   // exec to the first 200 on /healthz
	FirstAckMs float64 `json:"first_ack_ms"` // exec to the first durable 200 on /asn/
}

func (s Start) String() string {
	kind := "warm"
	if s.Cold {
		kind = "cold"
	}
	return fmt.Sprintf("%s: /healthz after %.0f ms, first durable 200 after %.0f ms", kind, s.HealthzMs, s.FirstAckMs)
}

// scaleGoroutines is how many writers fill a store at once: the store's
// writer commits what they queue together, up to store.DefaultMaxBatch per
// fsync.
const scaleGoroutines = 1024

// fillStore brings the store at path to n notifications, all processed as
// verified, each with one delivery to target that is pending, or succeeded
// when delivered is true. Bodies are one signed body repeated (they are never
// verified again); notificationUUIDs are distinct. It goes through the store
// package only, as the relay does.
func fillStore(ctx context.Context, path string, n int, body []byte, target string, delivered bool, logf func(string, ...any)) (int, error) {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	have, err := db.NotificationCount()
	if err != nil {
		return 0, err
	}
	if have >= n {
		return have, nil
	}
	todo := n - have
	logf("  appending %d notifications to %s", todo, path)
	seqs := make([]uint64, todo)
	if err := parallel(ctx, todo, scaleGoroutines, func(i int) error {
		seq, err := db.Append(store.Incoming{App: benchApp, Body: body, RemoteAddr: "17.58.0.1",
			ContentType: "application/json", ReceivedAt: time.Now()})
		seqs[i] = seq
		return err
	}); err != nil {
		return 0, err
	}

	logf("  processing them with one delivery each to %q", target)
	const chunk = 256
	if err := parallel(ctx, (todo+chunk-1)/chunk, 16, func(c int) error {
		var outcomes []store.Outcome
		for _, seq := range seqs[c*chunk : min((c+1)*chunk, todo)] {
			uuid := fmt.Sprintf("00000000-0000-4000-8000-%012x", seq)
			outcomes = append(outcomes, store.Outcome{
				Seq: seq, State: store.StateVerified, UUID: uuid, Type: "DID_RENEW",
				Environment: benchEnv, BundleID: benchBundle, Verified: true,
				Deliveries: []store.NewDelivery{{Target: target, Payload: store.PayloadRaw, App: benchApp,
					Environment: benchEnv, Type: "DID_RENEW", UUID: uuid}},
			})
		}
		_, err := db.Process(outcomes)
		return err
	}); err != nil {
		return 0, err
	}
	if !delivered {
		return n, nil
	}

	logf("  recording a successful attempt for each delivery")
	far := time.Now().Add(24 * time.Hour)
	for {
		due, _, err := db.Due(target, far, 50000, nil)
		if err != nil {
			return 0, err
		}
		if len(due) == 0 {
			return n, nil
		}
		if err := parallel(ctx, len(due), scaleGoroutines, func(i int) error {
			now := time.Now()
			_, err := db.RecordAttempt(due[i].ID, store.Attempt{At: now, Status: 200, Latency: time.Millisecond},
				store.Next{State: store.DeliverySucceeded})
			return err
		}); err != nil {
			return 0, err
		}
	}
}

// parallel calls f(0) … f(n-1) from g goroutines and returns the first error.
func parallel(ctx context.Context, n, g int, f func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(g, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func fileMiB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// scale measures the relay on a store with stored notifications and on a
// restart with pending deliveries. dir keeps the big store between runs
// when set.
func (b *bench) scale(ctx context.Context, spec ServerSpec, stored, pending int, dir string) *ScaleResult {
	res := &ScaleResult{}
	if stored > 0 {
		res.Stored = b.scaleStored(ctx, spec, stored, dir)
	}
	if pending > 0 {
		res.Restart = b.scaleRestart(ctx, spec, pending)
	}
	return res
}

func (b *bench) scaleStored(ctx context.Context, spec ServerSpec, n int, dir string) *StoredResult {
	r := &StoredResult{Server: spec.Name, Notifications: n}
	if dir == "" {
		dir = filepath.Join(b.tools.WorkDir, "scale-stored")
	}
	path := filepath.Join(dir, relay.DBFile)
	b.logf("scale: %d stored notifications in %s", n, path)
	start := time.Now()
	have, err := fillStore(ctx, path, n, b.bodies[0].Bytes, "sink", true, b.logf)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if took := time.Since(start); took > time.Second {
		r.GenerateSeconds = took.Seconds()
	}
	r.Notifications, r.FileMiB = have, fileMiB(path)
	b.logf("  %d notifications, %.0f MiB file, made in %.0f s", have, r.FileMiB, r.GenerateSeconds)

	to := target{"sink", b.sink.URL()}
	src := &counter{bodies: b.bodies}
	base := b.sink.Received()
	p, st, err := b.startOn(ctx, spec, to, dir, path, true, src)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Starts = append(r.Starts, st)
	b.sink.WaitFor(ctx, base+1, b.set.DrainTimeout) // the first ack's delivery
	// Start-up work (retention sweep, index checks) is not the steady state.
	r.SettleSeconds = waitIdle(ctx, p.PID, 2*time.Minute).Seconds()
	b.logf("  busy for %.1f s after the first ack", r.SettleSeconds)
	sess := b.session(p, true, src)
	o := sess.open(ctx, 1000, b.set.OpenDuration)
	r.Open = &o
	r.E2E = sess.endToEnd(ctx)
	if st, err := readProc(p.PID); err == nil {
		r.Memory = memoryOf(st)
		b.logf("  RSS %.0f MiB (anon %.0f, file %.0f), peak %.0f MiB", r.Memory.RSSMiB, r.Memory.AnonMiB, r.Memory.FileMiB, r.Memory.PeakMiB)
	}
	if src.Reused() > 0 {
		r.Error = fmt.Sprintf("%d bodies were sent twice and deduped: raise -bodies", src.Reused())
	}
	p.Stop()

	if p, st, err := b.startOn(ctx, spec, to, dir, path, false, src); err == nil {
		r.Starts = append(r.Starts, st)
		p.Stop()
	}
	return r
}

func (b *bench) scaleRestart(ctx context.Context, spec ServerSpec, n int) *RestartResult {
	r := &RestartResult{Server: spec.Name, Pending: n}
	dir := filepath.Join(b.tools.WorkDir, "scale-restart")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, relay.DBFile)
	b.logf("scale: restart with %d pending deliveries to a target that is down", n)
	start := time.Now()
	if _, err := fillStore(ctx, path, n, b.bodies[0].Bytes, "down", false, b.logf); err != nil {
		r.Error = err.Error()
		return r
	}
	r.GenerateSeconds, r.FileMiB = time.Since(start).Seconds(), fileMiB(path)
	b.logf("  made in %.0f s, %.0f MiB file", r.GenerateSeconds, r.FileMiB)

	down, err := closedPort()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	to := target{"down", "http://" + down + "/notifications"}
	src := &counter{bodies: b.bodies}
	p, st, err := b.startOn(ctx, spec, to, dir, path, true, src)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Starts = append(r.Starts, st)
	// Nothing reaches the sink: the target is down.
	o := b.session(p, false, src).open(ctx, 1000, b.set.OpenDuration)
	r.Open = &o
	if st, err := readProc(p.PID); err == nil {
		r.Memory = memoryOf(st)
	}
	p.Stop()

	if p, st, err := b.startOn(ctx, spec, to, dir, path, false, src); err == nil {
		r.Starts = append(r.Starts, st)
		p.Stop()
	}
	return r
}

// startOn starts the relay on the store in dir, cold (its file evicted from
// the page cache) or warm, and posts one notification from src as soon as
// /healthz answers, to time the first durable 200.
func (b *bench) startOn(ctx context.Context, spec ServerSpec, to target, dir, path string, cold bool, src BodySource) (*Proc, Start, error) {
	var st Start
	if cold {
		if err := evictCache(path); err != nil {
			b.logf("  cannot start cold: %v", err)
		} else {
			st.Cold = true
		}
	}
	p, err := b.tools.startServer(ctx, spec, to, dir, 5*time.Minute)
	if err != nil {
		return nil, st, err
	}
	st.HealthzMs = float64(p.Ready) / float64(time.Millisecond)
	c := newClient(p.Addr, "/asn/"+benchApp)
	defer c.close()
	body := src.Next()
	for {
		status, err := c.post(body.Bytes, time.Now().Add(time.Minute))
		if err == nil && status == 200 {
			break
		}
		if time.Since(p.Started) > 5*time.Minute || ctx.Err() != nil {
			p.Stop()
			return nil, st, fmt.Errorf("no 200 on /asn/ within 5 minutes of the start: %v (status %d)", err, status)
		}
		time.Sleep(time.Millisecond)
	}
	st.FirstAckMs = float64(time.Since(p.Started)) / float64(time.Millisecond)
	b.logf("  %s", st)
	return p, st, nil
}

// waitIdle waits until process pid uses less than 5 % of a core over
// half a second, at most max, and returns how long it waited.
func waitIdle(ctx context.Context, pid int, max time.Duration) time.Duration {
	start := time.Now()
	prev, err := readProc(pid)
	for err == nil && time.Since(start) < max && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		cur, err2 := readProc(pid)
		if err2 != nil || cur.CPU-prev.CPU < 25*time.Millisecond {
			break
		}
		prev = cur
	}
	return time.Since(start)
}

// closedPort is a loopback address nothing listens on: connections to it
// are refused at once, like a target that is down.
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func (sc *ScaleResult) writeMarkdown(w io.Writer) {
	starts := func(ss []Start) string {
		var parts []string
		for _, s := range ss {
			parts = append(parts, s.String())
		}
		return strings.Join(parts, "; ")
	}
	if s := sc.Stored; s != nil {
		fmt.Fprintf(w, "- %s with %s stored notifications (%.1f GiB file)", s.Server, thousands(float64(s.Notifications)), s.FileMiB/1024)
		if len(s.Starts) > 0 {
			fmt.Fprintf(w, ". Start %s", starts(s.Starts))
		}
		if o := s.Open; o != nil {
			fmt.Fprintf(w, ". Ack p50 / p99 / p99.9 at 1 000/s: %s / %s / %s ms", ms(o.Latency.P50), ms(o.Latency.P99), ms(o.Latency.P999))
		}
		if e := s.E2E; e != nil {
			fmt.Fprintf(w, "; ingest→target p50 / p99 at %g/s: %s / %s ms", e.Rate, ms(e.Latency.P50), ms(e.Latency.P99))
		}
		if m := s.Memory; m != nil {
			fmt.Fprintf(w, "; RSS after the load %.0f MiB (%.0f anonymous + %.0f mapped file), peak %.0f MiB", m.RSSMiB, m.AnonMiB, m.FileMiB, m.PeakMiB)
		}
		if s.Error != "" {
			fmt.Fprintf(w, ". **Error**: %s", s.Error)
		}
		fmt.Fprintln(w, ".")
	}
	if s := sc.Restart; s != nil {
		fmt.Fprintf(w, "- %s restarted with %s pending deliveries to a target that is down (%.0f MiB file)", s.Server, thousands(float64(s.Pending)), s.FileMiB)
		if len(s.Starts) > 0 {
			fmt.Fprintf(w, ". Start %s", starts(s.Starts))
		}
		if o := s.Open; o != nil {
			fmt.Fprintf(w, ". Right after the cold start, while the backlog is retried, ack p50 / p99 / p99.9 at 1 000/s: %s / %s / %s ms", ms(o.Latency.P50), ms(o.Latency.P99), ms(o.Latency.P999))
		}
		if s.Error != "" {
			fmt.Fprintf(w, ". **Error**: %s", s.Error)
		}
		fmt.Fprintln(w, ".")
	}
}
