package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Latency holds exact percentiles of every sample, in milliseconds; -1
// means the percentile fell on a request that was never answered.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// percentiles sorts d and takes nearest-rank percentiles.
func percentiles(d []time.Duration) Latency {
	l := Latency{N: len(d)}
	if len(d) == 0 {
		return l
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		i = min(max(i, 0), len(d)-1)
		if d[i] == infinite {
			return -1
		}
		return float64(d[i]) / float64(time.Millisecond)
	}
	l.P50, l.P90, l.P99, l.P999, l.Max = at(0.50), at(0.90), at(0.99), at(0.999), at(1)
	return l
}

// Report is everything one run measured; it is written as JSON and printed
// as Markdown.
type Report struct {
	Started  time.Time      `json:"started"`
	Command  string         `json:"command"`
	Revision string         `json:"revision"` // git describe --always --dirty of the tree asnrelay was built from
	Machine  Machine        `json:"machine"`
	Settings Settings       `json:"settings"`
	Servers  []ServerResult `json:"servers"`
	Ratios   []Ratio        `json:"ratios,omitempty"`
	Targets  []Check        `json:"targets,omitempty"`
	Scale    *ScaleResult   `json:"scale,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	GoVersion   string `json:"go_version"`
	NodeVersion string `json:"node_version,omitempty"`
	Pinned      bool   `json:"pinned"`
	LoadStart   string `json:"loadavg_start"`
	LoadEnd     string `json:"loadavg_end"`
}

// ServerResult is one server's measurements.
type ServerResult struct {
	Name        string       `json:"name"`
	Kind        string       `json:"kind"`
	GOMAXPROCS  int          `json:"gomaxprocs,omitempty"`
	Skipped     string       `json:"skipped,omitempty"`
	ReadyMs     float64      `json:"ready_ms"`
	Closed      *LoadResult  `json:"closed,omitempty"`
	Open        []LoadResult `json:"open,omitempty"`
	E2E         *E2EResult   `json:"ingest_to_target,omitempty"`
	Memory      *ProcMemory  `json:"memory,omitempty"`
	CPUPer1000  float64      `json:"cpu_seconds_per_1000"`
	BodiesReuse int          `json:"bodies_reused,omitempty"`
}

// ProcMemory is a server's resident memory at the end of its run, in MiB.
type ProcMemory struct {
	PeakMiB float64 `json:"peak_mib"` // VmHWM
	RSSMiB  float64 `json:"rss_mib"`  // VmRSS
	AnonMiB float64 `json:"anon_mib"` // RssAnon
	FileMiB float64 `json:"file_mib"` // RssFile: mapped file pages (bbolt's mmap)
}

func memoryOf(s ProcStat) *ProcMemory {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	return &ProcMemory{PeakMiB: mib(s.HWM), RSSMiB: mib(s.RSS), AnonMiB: mib(s.RSSAnon), FileMiB: mib(s.RSSFile)}
}

// E2EResult is the time from sending a notification to its arrival at the
// target.
type E2EResult struct {
	Rate    float64 `json:"rate"`
	Sent    int     `json:"sent"`
	Arrived int     `json:"arrived"`
	Latency Latency `json:"latency_ms"`
}

// Ratio compares a relay's throughput and CPU use with a baseline's.
type Ratio struct {
	Server     string  `json:"server"`
	Baseline   string  `json:"baseline"`
	Throughput float64 `json:"throughput"` // server / baseline
	CPUPer1000 float64 `json:"cpu_per_1000"`
}

// Check is one DESIGN.md target and whether the run met it.
type Check struct {
	Server string `json:"server"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
}

// open returns the open-loop result at rate, if any.
func (s *ServerResult) open(rate float64) *LoadResult {
	for i := range s.Open {
		if s.Open[i].Rate == rate {
			return &s.Open[i]
		}
	}
	return nil
}

// compare fills in ratios and target checks.
func (r *Report) compare() {
	find := func(kind string) *ServerResult {
		for i := range r.Servers {
			if r.Servers[i].Kind == kind && r.Servers[i].Skipped == "" && r.Servers[i].Closed != nil {
				return &r.Servers[i]
			}
		}
		return nil
	}
	noop, naive, express := find(kindNoop), find(kindNaive), find(kindExpress)
	for i := range r.Servers {
		s := &r.Servers[i]
		if s.Kind != kindRelay || s.Skipped != "" || s.Closed == nil {
			continue
		}
		for _, base := range []*ServerResult{noop, naive, express} {
			if base == nil || base.Closed.Throughput == 0 {
				continue
			}
			ratio := Ratio{Server: s.Name, Baseline: base.Name, Throughput: s.Closed.Throughput / base.Closed.Throughput}
			if base.CPUPer1000 > 0 {
				ratio.CPUPer1000 = s.CPUPer1000 / base.CPUPer1000
			}
			r.Ratios = append(r.Ratios, ratio)
			switch base {
			case noop:
				r.check(s.Name, "durable acks ≥ 40 % of the no-op's throughput", fmt.Sprintf("%.0f %%", 100*ratio.Throughput), ratio.Throughput >= 0.4)
			case express:
				r.check(s.Name, "≥ 10× the Express forwarder's throughput", fmt.Sprintf("%.1f×", ratio.Throughput), ratio.Throughput >= 10)
			}
		}
		if o := s.open(1000); o != nil {
			r.check(s.Name, "p99 ack ≤ 5 ms at 1 000 req/s", ms(o.Latency.P99), o.Latency.P99 >= 0 && o.Latency.P99 <= 5)
			r.check(s.Name, "p99.9 ack ≤ 20 ms at 1 000 req/s", ms(o.Latency.P999), o.Latency.P999 >= 0 && o.Latency.P999 <= 20)
		}
		if e := s.E2E; e != nil {
			r.check(s.Name, fmt.Sprintf("ingest→target p99 ≤ 20 ms at %g req/s", e.Rate), ms(e.Latency.P99),
				e.Arrived == e.Sent && e.Latency.P99 >= 0 && e.Latency.P99 <= 20)
		}
	}
	if sc := r.Scale; sc != nil {
		if sc.Stored != nil && sc.Stored.Memory != nil {
			m := sc.Stored.Memory
			r.check(sc.Stored.Server, fmt.Sprintf("RSS < 100 MiB with %d stored", sc.Stored.Notifications),
				fmt.Sprintf("%.0f MiB (anon %.0f + file %.0f)", m.RSSMiB, m.AnonMiB, m.FileMiB), m.RSSMiB < 100)
		}
		if rs := sc.Restart; rs != nil {
			for _, st := range rs.Starts {
				kind := "warm"
				if st.Cold {
					kind = "cold"
				}
				r.check(rs.Server, fmt.Sprintf("ready ≤ 2 s with %d pending deliveries (%s start, to the first durable 200)", rs.Pending, kind),
					fmt.Sprintf("%.0f ms", st.FirstAckMs), st.FirstAckMs <= 2000)
			}
		}
	}
}

// noteInterference flags phases during which other processes took a fair
// share of the server's core: their figures understate the server.
func (r *Report) noteInterference() {
	flag := func(server, phase string, l *LoadResult) {
		if l != nil && l.OtherCPUPercent >= 20 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s, %s: other processes used %.0f %% of the server's core (the server %.0f %%); treat this figure with care",
				server, phase, l.OtherCPUPercent, l.ServerCPUPercent))
		}
	}
	for _, s := range r.Servers {
		flag(s.Name, "closed loop", s.Closed)
		for i := range s.Open {
			flag(s.Name, thousands(s.Open[i].Rate)+" req/s", &s.Open[i])
		}
	}
	if sc := r.Scale; sc != nil {
		if sc.Stored != nil {
			flag(sc.Stored.Server, "1 000 req/s with the stored notifications", sc.Stored.Open)
		}
		if sc.Restart != nil {
			flag(sc.Restart.Server, "1 000 req/s after the restart", sc.Restart.Open)
		}
	}
}

func (r *Report) check(server, target, value string, met bool) {
	r.Targets = append(r.Targets, Check{Server: server, Target: target, Value: value, Met: met})
}

// ms formats milliseconds for the table.
func ms(v float64) string {
	switch {
	case v < 0:
		return "no answer"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f") // narrow no-break space
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteMarkdown prints the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "asnrelay %s on %d × %s, Go %s", r.Revision, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion)
	if r.Machine.NodeVersion != "" {
		fmt.Fprintf(w, ", Node %s", r.Machine.NodeVersion)
	}
	if r.Machine.Pinned {
		fmt.Fprintf(w, "; server on core %d, load generator and sink on core %d", serverCore, generatorCore)
	} else {
		fmt.Fprint(w, "; NOT pinned (taskset missing or -pin=false)")
	}
	fmt.Fprintf(w, "; load average %s at start, %s at end.\n", r.Machine.LoadStart, r.Machine.LoadEnd)
	st := r.Settings
	kind := "signed"
	if st.Unverifiable {
		kind = "UNVERIFIABLE (bad signature: the relay verifies and forwards nothing)"
	}
	fmt.Fprintf(w, "%d-byte %s bodies; max = closed loop, %d connections, %s; ack latency = open loop, %d connections, %s per rate, from each request's scheduled time",
		st.BodyBytes, kind, st.ClosedConns, st.ClosedDuration, st.OpenConns, st.OpenDuration)
	if st.E2ERate > 0 {
		fmt.Fprintf(w, "; ingest→target at %g req/s for %s", st.E2ERate, st.E2EDuration)
	}
	fmt.Fprint(w, ".\n\n")

	var heads []string
	heads = append(heads, "server", "max req/s", "server CPU at max")
	for _, rate := range st.OpenRates {
		heads = append(heads, fmt.Sprintf("ack p50 / p99 / p99.9 at %s/s (ms)", thousands(rate)))
	}
	if st.E2ERate > 0 {
		heads = append(heads, fmt.Sprintf("ingest→target p50 / p99 at %g/s (ms)", st.E2ERate))
	}
	heads = append(heads, "RSS at end: anon + mapped file (peak), MiB", "CPU s / 1000")
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(heads, " | "), strings.Repeat("---|", len(heads)))
	for _, s := range r.Servers {
		if s.Skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s |%s\n", s.Name, s.Skipped, strings.Repeat(" |", len(heads)-2))
			continue
		}
		row := []string{s.Name, "—", "—"}
		if s.Closed != nil {
			row[1] = thousands(s.Closed.Throughput)
			row[2] = fmt.Sprintf("%.0f %%", s.Closed.loadCPU())
		}
		for _, rate := range st.OpenRates {
			o := s.open(rate)
			if o == nil {
				row = append(row, "—")
				continue
			}
			cell := fmt.Sprintf("%s / %s / %s", ms(o.Latency.P50), ms(o.Latency.P99), ms(o.Latency.P999))
			if o.Errors+o.Timeouts > 0 {
				cell += fmt.Sprintf(" (%d failed)", o.Errors+o.Timeouts)
			}
			row = append(row, cell)
		}
		if e := s.E2E; e != nil {
			cell := fmt.Sprintf("%s / %s", ms(e.Latency.P50), ms(e.Latency.P99))
			if e.Arrived < e.Sent {
				cell += fmt.Sprintf(" (%d of %d arrived)", e.Arrived, e.Sent)
			}
			row = append(row, cell)
		} else if st.E2ERate > 0 {
			row = append(row, "—")
		}
		mem := "—"
		if s.Memory != nil {
			mem = fmt.Sprintf("%.0f + %.0f (%.0f)", s.Memory.AnonMiB, s.Memory.FileMiB, s.Memory.PeakMiB)
		}
		row = append(row, mem, fmt.Sprintf("%.3f", s.CPUPer1000))
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w)
		for _, ra := range r.Ratios {
			fmt.Fprintf(w, "- %s / %s: %.2f× the throughput", ra.Server, ra.Baseline, ra.Throughput)
			if ra.CPUPer1000 > 0 {
				fmt.Fprintf(w, ", %.2f× the CPU per notification", ra.CPUPer1000)
			}
			fmt.Fprintln(w)
		}
	}
	for _, s := range r.Servers {
		for _, l := range append([]*LoadResult{s.Closed}, ptrs(s.Open)...) {
			if l == nil || len(l.Profile) == 0 {
				continue
			}
			what, cpu := "the closed loop, without its drain", l.loadCPU()
			if l.Mode == "open" {
				what, cpu = thousands(l.Rate)+" req/s and its drain", l.ServerCPUPercent
			}
			fmt.Fprintf(w, "\nWhere %s's CPU went at %s (%.0f %% of its core; perf samples, a part counts every sample it is on the stack of):\n\n", s.Name, what, cpu)
			for _, p := range l.Profile {
				fmt.Fprintf(w, "    %-52s %5.1f %%\n", p.Part, p.Percent)
			}
		}
	}
	if sc := r.Scale; sc != nil {
		fmt.Fprintln(w)
		sc.writeMarkdown(w)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "\n| server | target (DESIGN.md) | measured | met |\n|---|---|---|---|\n")
		for _, c := range r.Targets {
			met := "yes"
			if !c.Met {
				met = "**no**"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Server, c.Target, c.Value, met)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func ptrs(ls []LoadResult) []*LoadResult {
	out := make([]*LoadResult, len(ls))
	for i := range ls {
		out[i] = &ls[i]
	}
	return out
}

// WriteJSON writes the report to dir/<time>.json and returns the file name.
func (r *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := filepath.Join(dir, r.Started.UTC().Format("20060102T150405Z")+".json")
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return name, os.WriteFile(name, append(data, '\n'), 0o644)
}
