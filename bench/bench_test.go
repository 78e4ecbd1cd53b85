package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the harness in -smoke mode, as CI does: it builds asnrelay
// and the no-op server, sends a few hundred signed notifications to each
// over loopback, and checks that the report is produced and adds up. It
// measures nothing worth reading.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"-smoke", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "| asnrelay GOMAXPROCS=1 |") || !strings.Contains(stdout.String(), "| no-op net/http |") {
		t.Errorf("no table row per server in:\n%s", stdout.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.json"))
	if len(files) != 1 {
		t.Fatalf("JSON reports: %v, want one", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	if len(rep.Servers) != 2 {
		t.Fatalf("report has %d servers, want 2", len(rep.Servers))
	}
	for _, s := range rep.Servers {
		if s.Skipped != "" || s.Closed == nil || len(s.Open) != 1 {
			t.Errorf("%s: skipped %q, closed %v, %d open loops", s.Name, s.Skipped, s.Closed, len(s.Open))
			continue
		}
		if s.Closed.OK == 0 || s.Closed.Errors+s.Closed.Timeouts > 0 {
			t.Errorf("%s closed loop: %d ok, %d errors, %d timeouts (%s)", s.Name, s.Closed.OK, s.Closed.Errors, s.Closed.Timeouts, s.Closed.FirstError)
		}
		if o := s.Open[0]; o.OK != o.Sent || o.Latency.P99 <= 0 {
			t.Errorf("%s open loop: %d of %d ok, p99 %v ms (%s)", s.Name, o.OK, o.Sent, o.Latency.P99, o.FirstError)
		}
		if s.Memory == nil || s.Memory.PeakMiB <= 0 {
			t.Errorf("%s: no memory figures", s.Name)
		}
	}
	relay := rep.Servers[1]
	if e := relay.E2E; e == nil || e.Sent == 0 || e.Arrived != e.Sent {
		t.Errorf("relay ingest→target: %+v, want every acknowledged notification at the sink", relay.E2E)
	}
	if l := relay.Closed.Load; l == nil || l.CPUPercent <= 0 || l.WCharKiBPerOK <= 0 {
		t.Errorf("relay closed loop: load window %+v, want its CPU and write() bytes", l)
	}
	if sum := sumInts(relay.Closed.Timeline); sum <= 0 || sum > relay.Closed.OK {
		t.Errorf("relay closed loop: timeline %v sums to %d of %d 200s", relay.Closed.Timeline, sum, relay.Closed.OK)
	}
	if relay.Closed.CommitsPerOK <= 0 {
		t.Errorf("relay closed loop: %v commits per request, want the count read from its /metrics", relay.Closed.CommitsPerOK)
	}
	if d := relay.Closed.Drained; d == nil || !*d {
		t.Errorf("relay did not forward everything it acknowledged in the closed loop")
	}
	if len(rep.Ratios) == 0 {
		t.Errorf("no relay / no-op ratio")
	}
}

func TestPercentilesAreNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	d[0] = infinite // one request never answered: the slowest
	l := percentiles(d)
	if l.N != 1000 || l.P50 != 501 || l.P99 != 991 || l.P999 != 1000 || l.Max != -1 {
		t.Errorf("percentiles = %+v", l)
	}
	if got := percentiles(nil); got.N != 0 {
		t.Errorf("percentiles(nil) = %+v", got)
	}
}

func TestSinkKeyIgnoresTrailingSpace(t *testing.T) {
	b := []byte(`{"signedPayload":"aaaa.bbbb.` + strings.Repeat("c", 40) + `"}`)
	if sinkKey(b) != sinkKey(append(bytes.Clone(b), " \n"...)) || len(sinkKey(b)) != keyBytes {
		t.Errorf("sinkKey = %q", sinkKey(b))
	}
}

func sumInts(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

func TestFreshDirNeverReusesAServersDirectory(t *testing.T) {
	base := filepath.Join(t.TempDir(), "asnrelay-GOMAXPROCS1")
	seen := map[string]bool{}
	for range 3 {
		dir, err := freshDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if seen[dir] {
			t.Fatalf("freshDir gave %s twice", dir)
		}
		seen[dir] = true
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("freshDir(%s) = %s, not a directory: %v", base, dir, err)
		}
	}
	if !seen[base] || !seen[base+"-2"] || !seen[base+"-3"] {
		t.Fatalf("freshDir gave %v, want %s, then -2 and -3", seen, base)
	}
}
