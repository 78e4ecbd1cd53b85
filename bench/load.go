package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A Body is one request body with the key the sink finds it by.
type Body struct {
	Bytes []byte
	Key   string // sinkKey(Bytes)
}

// BodySource hands out bodies; the relay must see each notificationUUID once.
type BodySource interface {
	Next() Body
}

// client is one keep-alive HTTP/1.1 connection that posts prepared bodies.
// It writes the request with one writev and parses the answer with
// net/http, so a single generator core can outrun a single server core.
type client struct {
	addr, path string
	conn       net.Conn
	br         *bufio.Reader
	hdr        []byte
}

func newClient(addr, path string) *client { return &client{addr: addr, path: path} }

func (c *client) connect() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, 4096)
	return nil
}

// post sends body and waits for the whole answer. A failed connection is
// dropped; the next post dials again.
func (c *client) post(body []byte, deadline time.Time) (int, error) {
	if c.conn == nil {
		if err := c.connect(); err != nil {
			return 0, err
		}
	}
	c.conn.SetDeadline(deadline)
	c.hdr = append(c.hdr[:0], "POST "...)
	c.hdr = append(c.hdr, c.path...)
	c.hdr = append(c.hdr, " HTTP/1.1\r\nHost: "...)
	c.hdr = append(c.hdr, c.addr...)
	c.hdr = append(c.hdr, "\r\nUser-Agent: asnrelay-bench\r\nContent-Type: application/json\r\nContent-Length: "...)
	c.hdr = strconv.AppendInt(c.hdr, int64(len(body)), 10)
	c.hdr = append(c.hdr, "\r\n\r\n"...)
	bufs := net.Buffers{c.hdr, body}
	if _, err := bufs.WriteTo(c.conn); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, err
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// LoadResult is what one load phase measured. Latencies are in
// milliseconds; an open-loop latency runs from the request's scheduled send
// time, so time spent queued behind a slow server counts.
type LoadResult struct {
	Mode       string  `json:"mode"` // closed | open
	Rate       float64 `json:"target_rate,omitempty"`
	Conns      int     `json:"conns"`
	Seconds    float64 `json:"seconds"`
	Sent       int     `json:"sent"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`   // answered, but not 200, or the connection failed
	Timeouts   int     `json:"timeouts"` // not answered before the phase deadline
	Throughput float64 `json:"ok_per_second"`
	Latency    Latency `json:"latency_ms"`
	FirstError string  `json:"first_error,omitempty"`
	// Timeline is the closed loop's 200s in each second: a server that
	// slows down as its store grows shows it here.
	Timeline []int `json:"ok_timeline,omitempty"`

	// Filled in by the caller from the server's /proc entry.
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUPercent float64 `json:"server_cpu_percent,omitempty"` // of one core, over the phase
	// Load is the server's share of the phase while the load ran, before
	// the drain: what acknowledging cost, with only the background work
	// that got in between.
	Load *LoadWindow `json:"load_window,omitempty"`
	// ServerWriteKiBPerOK is what the server had the disk write (write_bytes
	// in /proc/PID/io, fsynced or written back) per acknowledged request.
	ServerWriteKiBPerOK float64 `json:"server_disk_write_kib_per_ok"`
	// CommitsPerOK is the relay's store commits (each with its fsyncs) per
	// acknowledged request, from its /metrics; 0 for other servers.
	CommitsPerOK float64 `json:"commits_per_ok,omitempty"`
	DrainSeconds float64 `json:"drain_seconds,omitempty"` // after the phase, until the sink had every acknowledged body
	// OtherCPUPercent is what else ran on the server's core (other
	// processes on the machine); GeneratorCPUPercent is the generator's
	// and the sink's use of theirs. Both over the phase and its drain.
	OtherCPUPercent     float64 `json:"other_cpu_percent_on_server_core"`
	GeneratorCPUPercent float64 `json:"generator_cpu_percent"`
	// Profile is where the server's CPU went (with -perf).
	Profile  []PerfShare `json:"profile,omitempty"`
	PerfData string      `json:"perf_data,omitempty"`
	Drained  *bool       `json:"drained,omitempty"`
}

// LoadWindow is what a server used while the load ran, without the drain
// after it.
type LoadWindow struct {
	CPUPercent     float64 `json:"cpu_percent"` // of one core
	WriteKiBPerOK  float64 `json:"disk_write_kib_per_ok"`
	WCharKiBPerOK  float64 `json:"write_syscalls_kib_per_ok"` // to files and sockets
	CommitsPerOK   float64 `json:"commits_per_ok,omitempty"`
	ForwardedPerOK float64 `json:"forwarded_per_ok,omitempty"` // what reached the sink during the load, per 200
	ProcessedPerOK float64 `json:"processed_per_ok,omitempty"` // what the relay verified and routed during the load, per 200
}

// loadCPU is the server's CPU while the load ran, or over the whole phase
// when that was not read.
func (r *LoadResult) loadCPU() float64 {
	if r.Load != nil {
		return r.Load.CPUPercent
	}
	return r.ServerCPUPercent
}

// sample is one request's outcome.
type sample struct {
	lat     time.Duration
	done    time.Duration // since the loop started; closed loop only
	status  int
	timeout bool
	err     error
}

// tally turns samples into a LoadResult; timeouts sort last.
func tally(r *LoadResult, samples []sample) {
	lats := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		r.Sent++
		switch {
		case s.timeout:
			r.Timeouts++
			lats = append(lats, infinite)
			continue
		case s.err != nil:
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = s.err.Error()
			}
		case s.status != http.StatusOK:
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = fmt.Sprintf("status %d", s.status)
			}
		default:
			r.OK++
		}
		lats = append(lats, s.lat)
	}
	r.Latency = percentiles(lats)
	if r.Seconds > 0 {
		r.Throughput = float64(r.OK) / r.Seconds
	}
}

// closedLoop keeps conns requests in flight for d: each connection sends its
// next request as soon as the previous one is answered. The result is the
// server's maximum throughput at that concurrency.
//
// A limit above zero stops the loop after that many requests.
func closedLoop(ctx context.Context, addr, path string, conns int, d time.Duration, limit int, bodies BodySource) LoadResult {
	res := LoadResult{Mode: "closed", Conns: conns}
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = newClient(addr, path)
		if err := clients[i].connect(); err != nil && res.FirstError == "" {
			res.FirstError = err.Error()
		}
	}
	start := time.Now()
	end := start.Add(d)
	deadline := end.Add(10 * time.Second)
	per := make([][]sample, conns)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			defer c.close()
			for time.Now().Before(end) && ctx.Err() == nil {
				if limit > 0 && sent.Add(1) > int64(limit) {
					return
				}
				b := bodies.Next()
				t := time.Now()
				status, err := c.post(b.Bytes, deadline)
				s := sample{lat: time.Since(t), done: time.Since(start), status: status, err: err}
				if isTimeout(err) {
					s.timeout = true
				}
				per[i] = append(per[i], s)
				if err != nil && c.conn == nil {
					// Do not spin on a refused connection.
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	var all []sample
	for _, p := range per {
		all = append(all, p...)
	}
	tally(&res, all)
	res.Timeline = make([]int, int(d.Seconds()+0.999))
	for _, s := range all {
		if i := int(s.done / time.Second); i < len(res.Timeline) && s.err == nil && s.status == http.StatusOK {
			res.Timeline[i]++
		}
	}
	return res
}

// Scheduled is a request sent by openLoop: its body, when it was due and
// when it was actually written.
type Scheduled struct {
	Key    string
	Due    time.Time
	SentAt time.Time
	OK     bool
}

// openLoop sends rate requests per second for d on a fixed schedule,
// whatever the server does: request i is due at start + i/rate. Up to conns
// requests are in flight; a due request with no free connection waits, and
// its latency (measured from when it was due) includes the wait, so a
// stalling server cannot hide its stall (no coordinated omission).
func openLoop(ctx context.Context, addr, path string, conns int, rate float64, d time.Duration, grace time.Duration, bodies BodySource) (LoadResult, []Scheduled) {
	res := LoadResult{Mode: "open", Rate: rate, Conns: conns}
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	// Bodies are taken before the clock starts: signing is not on the path.
	sched := make([]Scheduled, total)
	bodyOf := make([]Body, total)
	for i := range total {
		bodyOf[i] = bodies.Next()
		sched[i].Key = bodyOf[i].Key
	}
	samples := make([]sample, total)

	// Connections are opened before the clock starts too.
	pool := make(chan *client, conns)
	for range conns {
		c := newClient(addr, path)
		if err := c.connect(); err != nil {
			res.FirstError = err.Error()
		}
		pool <- c
	}

	// The pacer releases each request when it is due. It wakes on a
	// timerfd (see newTicker) because Go's own timers round sub-millisecond
	// sleeps up to a millisecond on Linux.
	every := max(interval, 50*time.Microsecond)
	tick, err := newTicker(every)
	if err != nil {
		tick = newStdTicker(every)
	}
	start := time.Now()
	for i := range sched {
		sched[i].Due = start.Add(time.Duration(i) * interval)
	}
	deadline := start.Add(d).Add(grace)
	due := make(chan int, total)

	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			c := <-pool
			defer c.close()
			for i := range due {
				if ctx.Err() != nil || time.Now().After(deadline) {
					samples[i] = sample{timeout: true}
					continue
				}
				sched[i].SentAt = time.Now()
				status, err := c.post(bodyOf[i].Bytes, deadline)
				samples[i] = sample{lat: time.Since(sched[i].Due), status: status, err: err, timeout: isTimeout(err)}
				sched[i].OK = err == nil && status == http.StatusOK
			}
		})
	}

	released := 0
	for released < total && ctx.Err() == nil {
		now := time.Now()
		for released < total && !sched[released].Due.After(now) {
			due <- released
			released++
		}
		if released < total {
			tick.Wait()
		}
	}
	tick.Stop()
	for ; released < total; released++ {
		samples[released] = sample{timeout: true}
	}
	close(due)
	wg.Wait()
	res.Seconds = d.Seconds()
	tally(&res, samples)
	return res, sched
}

// infinite stands for a request that never got an answer.
const infinite = time.Duration(1<<63 - 1)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// counter is a BodySource over a fixed slice of bodies, wrapping around
// when it runs out (Reused says how often).
type counter struct {
	bodies []Body
	next   atomic.Int64
	acked  int64 // 200s for its bodies so far, counted by the session
}

// distinctAcked is how many different bodies the server acknowledged, at
// most: a repeated one is a duplicate, which the relay does not forward.
func (c *counter) distinctAcked() int64 { return min(c.acked, int64(len(c.bodies))) }

func (c *counter) Next() Body {
	n := c.next.Add(1) - 1
	return c.bodies[n%int64(len(c.bodies))]
}

// Reused is how many bodies were handed out a second time.
func (c *counter) Reused() int {
	return max(0, int(c.next.Load())-len(c.bodies))
}
