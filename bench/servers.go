package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cores: the server under test runs alone on serverCore, the load generator
// and the sink on generatorCore.
const (
	serverCore    = 0
	generatorCore = 1
)

// Server kinds.
const (
	kindNoop    = "noop"
	kindRelay   = "asnrelay"
	kindExpress = "express"
	kindNaive   = "naive"
)

// ServerSpec is one server to measure.
type ServerSpec struct {
	Name string // label in the report
	Kind string
	// GOMAXPROCS for Go servers; 0 leaves Go's default, which is 1 on a
	// server pinned to one core.
	GOMAXPROCS int
}

// Forwards reports whether the server delivers to the sink.
func (s ServerSpec) Forwards() bool { return s.Kind != kindNoop && s.Kind != kindNaive }

// Proc is a running server process.
type Proc struct {
	Name    string
	Addr    string // public host:port
	Admin   string // admin host:port, asnrelay only
	PID     int
	Started time.Time     // just before exec
	Ready   time.Duration // from exec to the first 200 on /healthz
	Dir     string        // its configuration, log and (fresh) data
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Tools are the binaries and directories the servers run from.
type Tools struct {
	Root       string // module root
	Relay      string // asnrelay binary
	Noop       string // bench/noop binary
	Naive      string // bench/naive binary
	ExpressDir string // bench/express with node_modules, "" when unavailable
	Node       string
	Taskset    string   // "" when not installed: run unpinned
	WorkDir    string   // temporary files: configs, data, logs
	RelayEnv   []string // KEY=VALUE settings added to asnrelay's environment
}

// moduleRoot is the directory of the go.mod the go command sees.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run go run ./bench from inside the asnrelay module")
	}
	return filepath.Dir(gomod), nil
}

// buildBinaries builds asnrelay, the no-op server and the naive store with
// go build, as a user would.
func (t *Tools) buildBinaries(ctx context.Context) error {
	t.Relay, t.Noop, t.Naive = filepath.Join(t.WorkDir, "asnrelay"), filepath.Join(t.WorkDir, "noop"), filepath.Join(t.WorkDir, "naive")
	for _, b := range []struct{ out, pkg string }{{t.Relay, "."}, {t.Noop, "./bench/noop"}, {t.Naive, "./bench/naive"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		cmd.Dir = t.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// prepareExpress installs express with npm into bench/express/node_modules
// unless it is there; it returns why the Express baseline must be skipped,
// or "".
func prepareExpress(ctx context.Context, dir string, log func(string, ...any)) (node, skip string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", "node is not installed"
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "express", "package.json")); err == nil {
		return node, ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "npm is not installed"
	}
	args := []string{"install", "--no-audit", "--no-fund"}
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		args[0] = "ci"
	}
	log("npm %s in %s", strings.Join(args, " "), dir)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("npm %s failed: %v: %s", args[0], err, lastLine(out))
	}
	return node, ""
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serverEnv is this process's environment without settings that would
// change the server under test, plus extra.
func serverEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "ASNRELAY_CONFIG", "NODE_OPTIONS":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// target is where a forwarder delivers.
type target struct{ name, url string }

// startServer starts spec's server pinned to serverCore and waits for its
// /healthz. Forwarders deliver to to; dataDir (asnrelay only) is its
// data_dir, "" for a fresh one.
func (t *Tools) startServer(ctx context.Context, spec ServerSpec, to target, dataDir string, healthTimeout time.Duration) (*Proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var env []string
	if spec.GOMAXPROCS > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(spec.GOMAXPROCS))
	}
	dir, err := freshDir(filepath.Join(t.WorkDir, strings.NewReplacer(" ", "-", "/", "-", "=", "", "(", "", ")", "").Replace(spec.Name)))
	if err != nil {
		return nil, err
	}
	p := &Proc{Name: spec.Name, Addr: addr, Dir: dir, LogPath: filepath.Join(dir, "server.log")}
	var argv []string
	workdir := dir
	switch spec.Kind {
	case kindNoop:
		argv = []string{t.Noop, "-addr", addr}
	case kindNaive:
		argv = []string{t.Naive, "-addr", addr, "-db", filepath.Join(dir, "naive.db")}
	case kindRelay:
		if p.Admin, err = freeAddr(); err != nil {
			return nil, err
		}
		if dataDir == "" {
			dataDir = filepath.Join(dir, "data")
		}
		cfg := filepath.Join(dir, "asnrelay.yaml")
		if err := os.WriteFile(cfg, []byte(relayConfig(addr, p.Admin, dataDir, filepath.Join(t.WorkDir, "root.pem"), to)), 0o600); err != nil {
			return nil, err
		}
		argv = []string{t.Relay, "serve", "--config", cfg}
		env = append(env, t.RelayEnv...)
	case kindExpress:
		_, port, _ := net.SplitHostPort(addr)
		argv = []string{t.Node, "server.js"}
		workdir = t.ExpressDir
		env = append(env, "PORT="+port, "TARGET_URL="+to.url)
	default:
		return nil, fmt.Errorf("unknown server kind %q", spec.Kind)
	}
	if t.Taskset != "" {
		argv = append([]string{t.Taskset, "-c", strconv.Itoa(serverCore)}, argv...)
	}
	logf, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = workdir
	p.cmd.Env = serverEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = dieWithParent()
	p.exited = make(chan struct{})
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p.PID = p.cmd.Process.Pid // taskset execs the server: same PID
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitHealthy(ctx, healthTimeout); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s did not come up: %w (log: %s)", spec.Name, err, p.LogPath)
	}
	p.Ready = time.Since(p.Started)
	return p, nil
}

// waitHealthy polls /healthz until it answers 200.
func (p *Proc) waitHealthy(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + p.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited: %v", p.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 on /healthz after %s", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Stop asks the server to finish (SIGTERM) and kills it if it takes more
// than 15 s.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// relayConfig is the asnrelay.yaml of the relay under test: defaults except
// loopback listeners, the bench CA's root and one raw target.
func relayConfig(listen, admin, dataDir, rootPEM string, to target) string {
	return fmt.Sprintf(`# Written by go run ./bench.
listen: %q
data_dir: %q
log:
  level: info
  format: json
admin:
  listen: %q
apple:
  root_certs: [%q]
apps:
  - name: %s
    bundle_id: %s
    environments: [%s]
targets:
  - name: %s
    url: %q
`, listen, dataDir, admin, rootPEM, benchApp, benchBundle, benchEnv, to.name, to.url)
}

// freshDir creates the directory base, or base-2, base-3 and so on when a
// server of the same name already ran in this work directory: with -keep
// its store is still there, and a relay started on it would take every body
// for a duplicate.
func freshDir(base string) (string, error) {
	dir := base
	for n := 2; ; n++ {
		err := os.Mkdir(dir, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			return dir, err
		}
		dir = fmt.Sprintf("%s-%d", base, n)
	}
}
