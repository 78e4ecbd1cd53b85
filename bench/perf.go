package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// perfParts are the places a relay's CPU time goes, found by symbol in
// perf's call graphs (a sample counts for every part on its stack, so parts
// overlap: fdatasync is inside the store writer).
var perfParts = []struct {
	name    string
	symbols []string // summed: they are on different goroutines
}{
	{"HTTP ingest (net/http server, handler)", []string{"net/http.(*conn).serve"}},
	{"store writer (bbolt commits, one goroutine)", []string{"store.(*DB).writer"}},
	{"  bbolt page writes (pwrite)", []string{"go.etcd.io/bbolt.(*Tx).write"}},
	{"  fdatasync", []string{"go.etcd.io/bbolt.fdatasync"}},
	{"processor (verify, route, Process)", []string{"relay.(*processor).step"}},
	{"  signature and chain verification", []string{"apple.(*Verifier).VerifyNotification"}},
	{"forwarding (workers, HTTP client)", []string{"forward.(*worker).run", "net/http.(*Transport).dialConn.gowrap"}},
	{"logging (zerolog)", []string{"github.com/rs/zerolog.(*Event).msg"}},
	{"garbage collector", []string{"runtime.gcBgMarkWorker"}},
	{"Go scheduler", []string{"runtime.mcall"}},
	{"kernel, all syscalls (overlaps the above)", []string{"entry_SYSCALL_64_after_hwframe"}},
}

// PerfShare is the share of a server's CPU samples spent in one part.
type PerfShare struct {
	Part    string  `json:"part"`
	Percent float64 `json:"percent"`
}

// perfRecorder samples a process's call stacks with perf record.
type perfRecorder struct {
	cmd  *exec.Cmd
	file string
	out  bytes.Buffer
}

// startPerf starts perf record on pid, writing file.
func startPerf(perf string, pid int, file string) (*perfRecorder, error) {
	r := &perfRecorder{file: file}
	r.cmd = exec.Command(perf, "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", file)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	return r, nil
}

// stop ends the recording and summarises it by perfParts.
func (r *perfRecorder) stop(ctx context.Context) ([]PerfShare, error) {
	r.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	report, err := exec.CommandContext(ctx, r.cmd.Path, "report", "-i", r.file, "--children", "--sort", "symbol",
		"-g", "none", "--stdio", "--percent-limit", "0.5").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w (%s)", err, strings.TrimSpace(r.out.String()))
	}
	// Lines read "  49.89%   0.08%  [.] github.com/asnrelay/asnrelay/store.(*DB).writer".
	children := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(report))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		sym := strings.Join(f[3:], " ")
		children[sym] = max(children[sym], pct)
	}
	var shares []PerfShare
	for _, p := range perfParts {
		sum := 0.0
		for _, want := range p.symbols {
			best := 0.0
			for sym, pct := range children {
				if strings.Contains(sym, want) {
					best = max(best, pct)
				}
			}
			sum += best
		}
		shares = append(shares, PerfShare{Part: p.name, Percent: sum})
	}
	return shares, nil
}
