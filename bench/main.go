// Command bench measures asnrelay against the ceiling (a no-op net/http
// handler) and the usual forwarder (Express acknowledging, then fetch() to
// the backend), in the same run, each server pinned alone to one core with
// the load generator and the target (the sink) on the other.
//
//	go run ./bench              # the full benchmark, a few minutes
//	go run ./bench -scale       # also 1 M stored notifications and a restart with 100 k pending
//	go run ./bench -smoke       # seconds, unpinned, no npm: checks the harness works (CI)
//
// Bodies are 4 KiB App Store Server Notifications V2 ({"signedPayload":"…"})
// signed by a throwaway chain that the relay trusts through apple.root_certs,
// each with its own notificationUUID, so verification, dedupe and forwarding
// all run for real. It prints a Markdown table and writes the whole report
// as JSON to bench/results/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// serverSpecs are the servers -servers can name, in the order they run.
var serverSpecs = []struct {
	flag string
	spec ServerSpec
}{
	{"noop", ServerSpec{Name: "no-op net/http", Kind: kindNoop}},
	{"naive", ServerSpec{Name: "naive group commit", Kind: kindNaive}},
	{"naive2", ServerSpec{Name: "naive group commit GOMAXPROCS=2", Kind: kindNaive, GOMAXPROCS: 2}},
	{"asnrelay", ServerSpec{Name: "asnrelay GOMAXPROCS=1", Kind: kindRelay, GOMAXPROCS: 1}},
	{"asnrelay2", ServerSpec{Name: "asnrelay GOMAXPROCS=2", Kind: kindRelay, GOMAXPROCS: 2}},
	{"express", ServerSpec{Name: "Express + fetch", Kind: kindExpress}},
}

type options struct {
	set        Settings
	servers    string
	rates      string
	out        string
	pin        bool
	keep       bool
	smoke      bool
	scale      bool
	scaleN     int
	scalePend  int
	scaleDir   string
	scaleProcs int
	relayEnv   []string
	perf       bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.set.BodyBytes, "body-bytes", 4096, "size of every request body")
	fs.IntVar(&o.set.Bodies, "bodies", 400_000, "distinct signed bodies to prepare (each server starts from the first; more are reused, which the relay dedupes; the ingest→target phase has its own)")
	fs.DurationVar(&o.set.Warmup, "warmup", 2*time.Second, "closed-loop warm-up before measuring")
	fs.IntVar(&o.set.ClosedConns, "conns", 128, "connections of the closed loop (maximum throughput: a group commit needs enough requests in flight to fill its commits)")
	fs.DurationVar(&o.set.ClosedDuration, "duration", 10*time.Second, "length of the closed loop")
	fs.IntVar(&o.set.OpenConns, "open-conns", 64, "connections of the open loops; a due request with none free waits, and its latency counts the wait")
	fs.StringVar(&o.rates, "rates", "1000,5000", "open-loop rates in requests per second, comma-separated")
	fs.DurationVar(&o.set.OpenDuration, "open-duration", 10*time.Second, "length of each open loop")
	fs.Float64Var(&o.set.E2ERate, "e2e-rate", 100, "rate of the ingest→target phase")
	fs.DurationVar(&o.set.E2EDuration, "e2e-duration", 10*time.Second, "length of the ingest→target phase")
	fs.DurationVar(&o.set.Grace, "grace", 10*time.Second, "how long open-loop requests may finish after the schedule ends")
	fs.DurationVar(&o.set.DrainTimeout, "drain-timeout", 4*time.Minute, "how long to wait after a phase for the sink to get everything acknowledged")
	names := make([]string, len(serverSpecs))
	for i, s := range serverSpecs {
		names[i] = s.flag
	}
	fs.StringVar(&o.servers, "servers", strings.Join(names, ","), "servers to measure, in order")
	fs.StringVar(&o.out, "out", "", "directory of the JSON report (default bench/results in the module)")
	fs.BoolVar(&o.pin, "pin", true, "pin the server to core 0 and the generator to core 1 with taskset")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, databases)")
	fs.BoolVar(&o.smoke, "smoke", false, "a run of seconds that checks the harness: no-op and asnrelay, unpinned, few requests")
	fs.BoolVar(&o.scale, "scale", false, "also measure asnrelay on a big store and a restart with pending deliveries")
	fs.IntVar(&o.scaleN, "scale-notifications", 1_000_000, "stored notifications for -scale")
	fs.IntVar(&o.scalePend, "scale-pending", 100_000, "pending deliveries for the -scale restart")
	fs.StringVar(&o.scaleDir, "scale-dir", "", "keep the -scale store here and reuse it in later runs (it is big: about 8 KiB per notification)")
	fs.IntVar(&o.scaleProcs, "scale-gomaxprocs", 1, "GOMAXPROCS of the relay in -scale")
	fs.BoolVar(&o.set.Unverifiable, "unverifiable", false, "send bodies without a valid signature: the relay acknowledges and stores them but verifies nothing and forwards nothing (what relay's BenchmarkIngest measures)")
	var relayEnv string
	fs.StringVar(&relayEnv, "relay-env", "", "comma-separated KEY=VALUE settings for every asnrelay server's environment, e.g. GODEBUG=gctrace=1 or GOGC=800 (the report's command line records them)")
	fs.BoolVar(&o.perf, "perf", false, "record asnrelay with perf during the closed loop (not its drain) and at 1 000/s (with its drain), and report where its CPU went")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.smoke {
		o.set = Settings{BodyBytes: o.set.BodyBytes, Unverifiable: o.set.Unverifiable, Bodies: 300, ClosedConns: 4, ClosedDuration: 3 * time.Second, ClosedLimit: 300,
			OpenConns: 8, OpenDuration: 500 * time.Millisecond, E2ERate: 100, E2EDuration: 500 * time.Millisecond,
			Grace: 2 * time.Second, DrainTimeout: 5 * time.Second}
		o.rates, o.servers, o.pin, o.scale = "200", "noop,asnrelay", false, false
	}
	for _, f := range strings.Split(o.rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rates: bad rate %q", f)
		}
		o.set.OpenRates = append(o.set.OpenRates, r)
	}
	for _, kv := range strings.Split(relayEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if !strings.Contains(kv, "=") {
				return nil, fmt.Errorf("-relay-env: %q is not KEY=VALUE", kv)
			}
			o.relayEnv = append(o.relayEnv, kv)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	var specs []ServerSpec
	for _, name := range strings.Split(o.servers, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range serverSpecs {
			if s.flag == name {
				specs, found = append(specs, s.spec), true
			}
		}
		if !found && name != "" {
			return fmt.Errorf("-servers: unknown server %q", name)
		}
	}

	rep := &Report{Started: time.Now(), Command: "go run ./bench " + strings.Join(args, " "), Settings: o.set}
	rep.Machine = Machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), LoadStart: loadAvg()}

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "asnrelay-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		rep.Revision = strings.TrimSpace(string(out))
	}
	tools := &Tools{Root: root, WorkDir: work, RelayEnv: o.relayEnv}
	logf("building asnrelay, the no-op server and the naive store")
	if err = tools.buildBinaries(ctx); err != nil {
		return err
	}
	for _, s := range specs {
		if s.Kind == kindExpress {
			node, skip := prepareExpress(ctx, filepath.Join(root, "bench", "express"), logf)
			if skip != "" {
				logf("Express baseline skipped: %s", skip)
				rep.Notes = append(rep.Notes, "Express baseline skipped: "+skip)
				break
			}
			tools.Node, tools.ExpressDir = node, filepath.Join(root, "bench", "express")
			if v, err := exec.Command(node, "--version").Output(); err == nil {
				rep.Machine.NodeVersion = strings.TrimSpace(string(v))
			}
		}
	}

	logf("signing %d bodies of %d bytes", o.set.Bodies, o.set.BodyBytes)
	ca, err := newBenchCA()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "root.pem"), ca.RootPEM(), 0o600); err != nil {
		return err
	}
	start := time.Now()
	var bodies []Body
	if o.set.Unverifiable {
		bodies, err = unverifiableBodies(o.set.Bodies, o.set.BodyBytes)
	} else {
		bodies, err = signBodies(ca, o.set.Bodies, o.set.BodyBytes)
	}
	if err != nil {
		return err
	}
	if err := uniqueKeys(bodies); err != nil {
		return err
	}
	logf("  signed in %.1f s", time.Since(start).Seconds())

	if o.pin {
		if tools.Taskset, err = exec.LookPath("taskset"); err != nil {
			logf("taskset is not installed: running UNPINNED, server and generator share the cores")
			rep.Notes = append(rep.Notes, "taskset is not installed: server and load generator were not pinned and shared the cores")
		} else if err := pinSelf(tools.Taskset, generatorCore); err != nil {
			return err
		}
	}
	rep.Machine.Pinned = tools.Taskset != ""

	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.Close()
	out := o.out
	if out == "" {
		out = filepath.Join(root, "bench", "results")
	}
	b := &bench{tools: tools, sink: sink, bodies: bodies, set: o.set, logf: logf, keep: o.keep}
	if o.perf {
		if b.perf, err = exec.LookPath("perf"); err != nil {
			logf("perf is not installed: no profiles")
		} else if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		b.perfDir, b.perfPrefix = out, rep.Started.UTC().Format("20060102T150405Z")
	}
	for _, spec := range specs {
		if spec.Kind == kindExpress && tools.ExpressDir == "" {
			rep.Servers = append(rep.Servers, ServerResult{Name: spec.Name, Kind: spec.Kind, Skipped: "node/npm unavailable"})
			continue
		}
		logf("%s", spec.Name)
		res := b.measure(ctx, spec)
		if res.Skipped != "" {
			logf("  skipped: %s", res.Skipped)
		}
		if c := res.Closed; c != nil && c.GeneratorCPUPercent >= 90 && c.ServerCPUPercent < 90 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the load generator used %.0f %% of its core in the closed loop and the server %.0f %% of its own: %s req/s is what one generator core can send, the server's ceiling is higher",
				spec.Name, c.GeneratorCPUPercent, c.ServerCPUPercent, thousands(c.Throughput)))
		}
		if res.BodiesReuse > 0 && spec.Kind == kindRelay {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s got %d bodies a second time (raise -bodies); the relay answers 200 and dedupes them", spec.Name, res.BodiesReuse))
		}
		rep.Servers = append(rep.Servers, res)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if o.scale {
		spec := ServerSpec{Name: fmt.Sprintf("asnrelay GOMAXPROCS=%d", o.scaleProcs), Kind: kindRelay, GOMAXPROCS: o.scaleProcs}
		rep.Scale = b.scale(ctx, spec, o.scaleN, o.scalePend, o.scaleDir)
	}
	rep.Machine.LoadEnd = loadAvg()
	rep.compare()
	rep.noteInterference()

	name, err := rep.WriteJSON(out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	rep.WriteMarkdown(stdout)
	fmt.Fprintf(stdout, "\nJSON: %s\n", name)
	for _, s := range rep.Servers {
		if s.Skipped != "" && s.Kind != kindExpress {
			return errors.New(s.Name + " failed: " + s.Skipped)
		}
	}
	return nil
}

// pinSelf moves every thread of this process to core, and runs Go on one P
// there: the generator and the sink then never take the server's core.
func pinSelf(taskset string, core int) error {
	out, err := exec.Command(taskset, "-a", "-p", "-c", strconv.Itoa(core), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p: %w: %s", err, out)
	}
	runtime.GOMAXPROCS(1)
	return nil
}
