package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// ProcStat is a process's CPU time and memory, read from /proc.
type ProcStat struct {
	CPU time.Duration // user + system, all threads
	// Resident memory in bytes: peak (VmHWM), current (VmRSS), and the
	// current split into anonymous memory and mapped files (RssFile counts
	// the pages of bbolt's mmap that were touched; the kernel can drop them).
	HWM, RSS, RSSAnon, RSSFile int64
	// WriteBytes is what the process caused to be written to storage;
	// WChar is what it passed to write system calls (files and sockets).
	WriteBytes, WChar int64
}

// readProc reads /proc/pid/stat and /proc/pid/status.
func readProc(pid int) (ProcStat, error) {
	var st ProcStat
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name may contain spaces: fields start after the last ')'.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(fields[12], 10, 64) // field 15
	st.CPU = time.Duration(utime+stime) * time.Second / clockTicks

	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for line := range strings.Lines(string(io)) {
			if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
				st.WriteBytes, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "wchar: "); ok {
				st.WChar, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}

	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			st.HWM = kb << 10
		case "VmRSS":
			st.RSS = kb << 10
		case "RssAnon":
			st.RSSAnon = kb << 10
		case "RssFile":
			st.RSSFile = kb << 10
		}
	}
	return st, sc.Err()
}

// cpuModel is the first "model name" in /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// coreBusy is the busy time of one core (all cores if core < 0) from
// /proc/stat: with it, CPU time the server did not use on its core shows
// what else ran there.
func coreBusy(core int) time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	want := "cpu"
	if core >= 0 {
		want = "cpu" + strconv.Itoa(core)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != want {
			continue
		}
		var busy int64
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			switch i {
			case 0, 1, 2, 5, 6, 7: // user nice system irq softirq steal; not idle, iowait, guest (in user)
				busy += n
			}
		}
		return time.Duration(busy) * time.Second / clockTicks
	}
	return 0
}

// metrics is the relay's /metrics on its admin listener; nil for other
// servers.
func (p *Proc) metrics() []byte {
	if p.Admin == "" {
		return nil
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + p.Admin + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return b
}

// relayCounts are the relay's running totals that the bench turns into
// figures per request.
type relayCounts struct {
	commits   float64 // samples of asnrelay_store_commit_duration_seconds, one per commit
	processed float64 // asnrelay_notifications_total over its labels: verified or not, duplicates too
}

// readRelayCounts parses the relay's /metrics text once; false when it is
// not a relay's (other servers). A relay that has processed nothing yet
// does not list asnrelay_notifications_total: that counts as zero.
func readRelayCounts(metrics []byte) (relayCounts, bool) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(metrics))
	if err != nil {
		return relayCounts{}, false
	}
	commits := families["asnrelay_store_commit_duration_seconds"]
	if commits == nil || len(commits.GetMetric()) == 0 {
		return relayCounts{}, false
	}
	c := relayCounts{commits: float64(commits.GetMetric()[0].GetHistogram().GetSampleCount())}
	for _, m := range families["asnrelay_notifications_total"].GetMetric() {
		c.processed += m.GetCounter().GetValue()
	}
	return c, true
}
