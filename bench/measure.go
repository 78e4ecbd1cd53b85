package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Settings shape every load phase of a run.
type Settings struct {
	BodyBytes      int           `json:"body_bytes"`
	Bodies         int           `json:"bodies"` // distinct signed bodies, each with its own notificationUUID
	Warmup         time.Duration `json:"warmup_ns"`
	ClosedConns    int           `json:"closed_conns"`
	ClosedDuration time.Duration `json:"closed_duration_ns"`
	ClosedLimit    int           `json:"closed_limit,omitempty"` // stop the closed loop after this many requests (smoke)
	OpenConns      int           `json:"open_conns"`
	OpenRates      []float64     `json:"open_rates"`
	OpenDuration   time.Duration `json:"open_duration_ns"`
	E2ERate        float64       `json:"e2e_rate"`
	E2EDuration    time.Duration `json:"e2e_duration_ns"`
	Grace          time.Duration `json:"grace_ns"`         // how long open-loop requests may still finish after the schedule ends
	DrainTimeout   time.Duration `json:"drain_timeout_ns"` // how long to wait for the sink after a phase
	// Unverifiable bodies have the shape but not a valid signature: the
	// relay stores and acknowledges them, fails verification at once and
	// forwards nothing (the relay package's BenchmarkIngest sends these).
	Unverifiable bool `json:"unverifiable,omitempty"`
}

// bench is one run: the tools, the sink, the bodies and the settings.
type bench struct {
	tools  *Tools
	sink   *Sink
	bodies []Body
	set    Settings
	logf   func(string, ...any)
	keep   bool // keep each relay's database after its run
	// perf is the perf binary when -perf asks for profiles of the relay,
	// written to perfDir with names starting perfPrefix.
	perf, perfDir, perfPrefix string
}

// measure starts spec's server, runs every phase against it and stops it.
func (b *bench) measure(ctx context.Context, spec ServerSpec) ServerResult {
	res := ServerResult{Name: spec.Name, Kind: spec.Kind, GOMAXPROCS: spec.GOMAXPROCS}
	p, err := b.tools.startServer(ctx, spec, target{"sink", b.sink.URL()}, "", 30*time.Second)
	if err != nil {
		res.Skipped = err.Error()
		return res
	}
	defer func() {
		p.Stop()
		if !b.keep {
			os.RemoveAll(filepath.Join(p.Dir, "data"))
		}
	}()
	res.ReadyMs = float64(p.Ready) / float64(time.Millisecond)
	// A fresh counter per server: each relay starts with an empty store, so
	// bodies only have to be distinct within one server's run.
	// Unverifiable bodies are stored but never forwarded by the relay.
	forwards := spec.Forwards() && !(b.set.Unverifiable && spec.Kind == kindRelay)
	// The ingest→target phase has bodies of its own, kept back from the
	// others: a body the relay has seen before is a duplicate and is never
	// forwarded, so a flood that uses every body must not take them.
	load, e2e := b.bodies, []Body(nil)
	if reserve := int(b.set.E2ERate*b.set.E2EDuration.Seconds()) + 1; forwards && b.set.E2ERate > 0 && reserve < len(b.bodies)/2 {
		load, e2e = b.bodies[:len(b.bodies)-reserve], b.bodies[len(b.bodies)-reserve:]
	}
	s := b.session(p, forwards, &counter{bodies: load})
	if e2e != nil {
		s.e2eSrc = &counter{bodies: e2e}
	}
	if spec.Kind == kindRelay || spec.Kind == kindNaive {
		s.profile = map[string]bool{"closed": true, "1000/s": true}
		s.label = spec.Name
	}

	if b.set.Warmup > 0 {
		s.phase(ctx, "warmup", s.src, func() LoadResult {
			return closedLoop(ctx, p.Addr, s.path, b.set.ClosedConns, b.set.Warmup, 0, s.src)
		})
	}
	closed := s.phase(ctx, "closed", s.src, func() LoadResult {
		return closedLoop(ctx, p.Addr, s.path, b.set.ClosedConns, b.set.ClosedDuration, b.set.ClosedLimit, s.src)
	})
	res.Closed = &closed
	if closed.OK > 0 {
		res.CPUPer1000 = 1000 * closed.ServerCPUSeconds / float64(closed.OK)
	}
	for _, rate := range b.set.OpenRates {
		res.Open = append(res.Open, s.open(ctx, rate, b.set.OpenDuration))
	}
	if forwards && b.set.E2ERate > 0 {
		res.E2E = s.endToEnd(ctx)
	}
	if st, err := readProc(p.PID); err == nil {
		res.Memory = memoryOf(st)
	}
	res.BodiesReuse = s.src.Reused()
	return res
}

// session is load on one running server.
type session struct {
	b        *bench
	p        *Proc
	path     string
	forwards bool
	src      *counter
	e2eSrc   *counter // bodies for endToEnd; nil means src
	sinkBase int64    // what the sink had received before
	// profile names the phases to record with perf (when b.perf is set).
	profile map[string]bool
	label   string
}

func (b *bench) session(p *Proc, forwards bool, src *counter) *session {
	return &session{b: b, p: p, path: "/asn/" + benchApp, forwards: forwards, src: src, sinkBase: b.sink.Received()}
}

// phase runs one load phase with bodies from src, waits for the server to forward everything
// it acknowledged, and charges the server's CPU time and disk writes to
// the phase.
func (s *session) phase(ctx context.Context, name string, src *counter, run func() LoadResult) LoadResult {
	b := s.b
	before, _ := readProc(s.p.PID)
	metricsBefore := s.p.metrics()
	gen, _ := readProc(os.Getpid())
	core := coreBusy(serverCore)
	var rec *perfRecorder
	if b.perf != "" && s.profile[name] {
		file := filepath.Join(b.perfDir, fmt.Sprintf("%s-%s-%s.perf.data", b.perfPrefix,
			strings.NewReplacer(" ", "-", "=", "", "/", "").Replace(s.label), strings.ReplaceAll(name, "/", "")))
		var err error
		if rec, err = startPerf(b.perf, s.p.PID, file); err != nil {
			b.logf("  perf: %v", err)
		}
	}
	sinkBefore := b.sink.Received()
	start := time.Now()
	r := run()
	src.acked += int64(r.OK)
	r.Load = s.loadWindow(r, start, before, metricsBefore, sinkBefore)
	if rec != nil && name == "closed" {
		// The closed loop's profile is of the flood, not of the drain.
		shares, err := rec.stop(ctx)
		if err != nil {
			b.logf("  perf: %v", err)
		}
		r.Profile, r.PerfData, rec = shares, rec.file, nil
	}
	if s.forwards {
		want := s.sinkBase + s.src.distinctAcked()
		if s.e2eSrc != nil {
			want += s.e2eSrc.distinctAcked()
		}
		took, ok := b.sink.WaitFor(ctx, want, b.set.DrainTimeout)
		r.DrainSeconds, r.Drained = took.Seconds(), &ok
		if !ok {
			b.logf("  %s: sink has %d of %d after %s", name, b.sink.Received()-s.sinkBase, want-s.sinkBase, b.set.DrainTimeout)
		}
		// Requests that timed out may still have been stored and are
		// forwarded too: the next phase starts once the server is idle.
		waitIdle(ctx, s.p.PID, max(0, b.set.DrainTimeout-took))
	}
	after, _ := readProc(s.p.PID)
	genAfter, _ := readProc(os.Getpid())
	wall := time.Since(start).Seconds()
	if rec != nil {
		shares, err := rec.stop(ctx)
		if err != nil {
			b.logf("  perf: %v", err)
		}
		r.Profile, r.PerfData = shares, rec.file
	}
	r.ServerCPUSeconds = (after.CPU - before.CPU).Seconds()
	r.ServerCPUPercent = 100 * r.ServerCPUSeconds / wall
	r.OtherCPUPercent = min(100, max(0, 100*((coreBusy(serverCore)-core).Seconds()-r.ServerCPUSeconds)/wall))
	r.GeneratorCPUPercent = 100 * (genAfter.CPU - gen.CPU).Seconds() / wall
	if r.OK > 0 {
		r.ServerWriteKiBPerOK = float64(after.WriteBytes-before.WriteBytes) / 1024 / float64(r.OK)
	}
	metricsAfter := s.p.metrics()
	c0, ok0 := readRelayCounts(metricsBefore)
	c1, ok1 := readRelayCounts(metricsAfter)
	if r.OK > 0 && ok0 && ok1 {
		r.CommitsPerOK = (c1.commits - c0.commits) / float64(r.OK)
	}
	if metricsAfter != nil && b.keep {
		os.WriteFile(filepath.Join(s.p.Dir, "metrics-after-"+strings.ReplaceAll(name, "/", "")+".txt"), metricsAfter, 0o644)
	}
	b.logf("  %-10s %6.0f ok/s  ms p50 %s p99 %s p99.9 %s  err %d  timeout %d  CPU server %.0f%% other %.0f%% generator %.0f%%  disk %.0f KiB/req  commits %.2f/req  drain %.1fs",
		name, r.Throughput, ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), r.Errors, r.Timeouts,
		r.ServerCPUPercent, r.OtherCPUPercent, r.GeneratorCPUPercent, r.ServerWriteKiBPerOK, r.CommitsPerOK, r.DrainSeconds)
	if len(r.Timeline) > 1 {
		b.logf("  %-10s 200s in each second: %v", "", r.Timeline)
	}
	if l := r.Load; l != nil {
		b.logf("  %-10s during the load: CPU server %.0f%%  disk %.0f KiB/req  write() %.0f KiB/req  commits %.2f/req  processed %.2f/req  forwarded %.2f/req",
			"", l.CPUPercent, l.WriteKiBPerOK, l.WCharKiBPerOK, l.CommitsPerOK, l.ProcessedPerOK, l.ForwardedPerOK)
	}
	return r
}

// loadWindow reads what the server used from start until now, the end of
// the load.
func (s *session) loadWindow(r LoadResult, start time.Time, before ProcStat, metricsBefore []byte, sinkBefore int64) *LoadWindow {
	now, err := readProc(s.p.PID)
	if err != nil || r.OK == 0 {
		return nil
	}
	l := &LoadWindow{
		CPUPercent:    100 * (now.CPU - before.CPU).Seconds() / time.Since(start).Seconds(),
		WriteKiBPerOK: float64(now.WriteBytes-before.WriteBytes) / 1024 / float64(r.OK),
		WCharKiBPerOK: float64(now.WChar-before.WChar) / 1024 / float64(r.OK),
	}
	c0, ok0 := readRelayCounts(metricsBefore)
	c1, ok1 := readRelayCounts(s.p.metrics())
	if ok0 && ok1 {
		l.CommitsPerOK = (c1.commits - c0.commits) / float64(r.OK)
		l.ProcessedPerOK = (c1.processed - c0.processed) / float64(r.OK)
	}
	if s.forwards {
		l.ForwardedPerOK = float64(s.b.sink.Received()-sinkBefore) / float64(r.OK)
	}
	return l
}

// open runs an open loop at rate for d.
func (s *session) open(ctx context.Context, rate float64, d time.Duration) LoadResult {
	return s.phase(ctx, fmt.Sprintf("%g/s", rate), s.src, func() LoadResult {
		r, _ := openLoop(ctx, s.p.Addr, s.path, s.b.set.OpenConns, rate, d, s.b.set.Grace, s.src)
		return r
	})
}

// endToEnd sends at the e2e rate with the sink tracking arrivals and
// returns each notification's time from send to arrival at the target.
func (s *session) endToEnd(ctx context.Context) *E2EResult {
	b := s.b
	b.sink.Track(true)
	defer b.sink.Track(false)
	var sched []Scheduled
	src := s.src
	if s.e2eSrc != nil {
		src = s.e2eSrc
	}
	s.phase(ctx, fmt.Sprintf("e2e %g/s", b.set.E2ERate), src, func() LoadResult {
		var r LoadResult
		r, sched = openLoop(ctx, s.p.Addr, s.path, b.set.OpenConns, b.set.E2ERate, b.set.E2EDuration, b.set.Grace, src)
		return r
	})
	// The phase waited for a count; wait for these very notifications.
	deadline := time.Now().Add(b.set.DrainTimeout)
	for _, sc := range sched {
		for sc.OK && time.Now().Before(deadline) && ctx.Err() == nil {
			if _, ok := b.sink.Arrival(sc.Key); ok {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	e := &E2EResult{Rate: b.set.E2ERate}
	var lats []time.Duration
	for _, s := range sched {
		if !s.OK {
			continue
		}
		e.Sent++
		if at, ok := b.sink.Arrival(s.Key); ok {
			e.Arrived++
			lats = append(lats, at.Sub(s.SentAt))
		} else {
			lats = append(lats, infinite)
		}
	}
	e.Latency = percentiles(lats)
	return e
}
