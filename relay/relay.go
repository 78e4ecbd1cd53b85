package relay

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/forward"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// Server timeouts: a slow or silent client cannot hold a connection forever.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
	// ShutdownTimeout bounds the graceful stop: in-flight requests, commits
	// and delivery attempts.
	ShutdownTimeout = 30 * time.Second
	// DBFile is the database's file name inside data_dir.
	DBFile = "asnrelay.db"
)

// Options are the relay's settings that do not come from the config file.
type Options struct {
	// Version is reported in User-Agent and by the admin API.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient sends deliveries and App Store Server API requests; nil
	// means forward's and apple's default clients.
	HTTPClient *http.Client
}

// Relay is one asnrelay daemon: New, Open, Run, Close.
type Relay struct {
	cfg  *config.Config
	log  zerolog.Logger
	opts Options
	now  func() time.Time
	apps map[string]*config.App

	verifier  *apple.Verifier
	db        *store.DB
	forward   *forward.Engine
	processor *processor
	metrics   *metrics
	// gate lets acknowledgements go before verification and forwarding.
	gate *ingestGate
	// appleClients are the App Store Server API clients: app -> environment.
	appleClients appleClients
	appleState   appleState
	// consumption answers CONSUMPTION_REQUEST notifications.
	consumption *consumptionWorker

	// timeouts are the HTTP servers' timeouts: the constants above, which
	// tests shorten before Open.
	timeouts          serverTimeouts
	public, admin     *http.Server
	publicLn, adminLn net.Listener
	ready             atomic.Bool
	closeOnce         sync.Once
}

// New checks cfg and prepares a relay; it opens nothing yet.
func New(cfg *config.Config, log zerolog.Logger, opts Options) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	r := &Relay{cfg: cfg, log: log, opts: opts, now: opts.Now, apps: make(map[string]*config.App), gate: newIngestGate(),
		timeouts: serverTimeouts{readHeader: ReadHeaderTimeout, read: ReadTimeout, write: WriteTimeout, idle: IdleTimeout}}
	for i := range cfg.Apps {
		r.apps[cfg.Apps[i].Name] = &cfg.Apps[i]
	}
	roots, err := loadRoots(cfg.Apple.RootCerts)
	if err != nil {
		return nil, err
	}
	r.verifier = apple.NewVerifier(roots).WithClock(opts.Now)
	targets := make([]string, len(cfg.Targets))
	for i, t := range cfg.Targets {
		targets[i] = t.Name
	}
	r.metrics = newMetrics(func() *store.DB { return r.db }, targets, opts.Now, r.gate.inFlight)
	r.appleClients, err = newAppleClients(cfg, log, apple.ClientOptions{
		Verifier: r.verifier, Now: opts.Now, HTTPClient: opts.HTTPClient,
		UserAgent: "asnrelay/" + opts.Version, OnAttempt: r.metrics.observeAppleAttempt,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func loadRoots(paths []string) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	for i, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &config.Error{Key: fmt.Sprintf("apple.root_certs[%d]", i), Msg: err.Error(), Err: err}
		}
		certs, err := apple.ParseCertificates(data)
		if err != nil {
			return nil, &config.Error{Key: fmt.Sprintf("apple.root_certs[%d]", i), Msg: fmt.Sprintf("%s: %v", path, err), Err: err}
		}
		roots = append(roots, certs...)
	}
	return roots, nil
}

// Open opens the store and binds both listeners, so that a busy port or a
// locked database is an error now rather than later.
func (r *Relay) Open() error {
	db, err := store.Open(filepath.Join(r.cfg.DataDir, DBFile), store.Options{Now: r.now, OnCommit: r.metrics.observeCommit})
	if err != nil {
		return err
	}
	r.db = db
	if r.publicLn, err = net.Listen("tcp", r.cfg.Listen); err != nil {
		return errors.Join(fmt.Errorf("listen %s: %w", r.cfg.Listen, err), r.Close())
	}
	if r.adminLn, err = net.Listen("tcp", r.cfg.Admin.Listen); err != nil {
		return errors.Join(fmt.Errorf("admin listen %s: %w", r.cfg.Admin.Listen, err), r.Close())
	}

	targets := make([]forward.Target, len(r.cfg.Targets))
	for i, t := range r.cfg.Targets {
		targets[i] = forward.Target{Name: t.Name, URL: t.URL, Headers: t.Headers, Secret: t.Secret,
			Timeout: t.Timeout, Concurrency: t.Concurrency,
			Retry: forward.Retry{Initial: t.Retry.Initial, MaxInterval: t.Retry.MaxInterval, MaxAge: t.Retry.MaxAge}}
	}
	r.forward, err = forward.New(r.db, targets, r.log, forward.Options{
		Now: r.now, Client: r.opts.HTTPClient, UserAgent: "asnrelay/" + r.opts.Version,
		OnAttempt: r.observeAttempt, Yield: r.gate.wait, Idle: r.gate.idle,
	})
	if err != nil {
		return errors.Join(&config.Error{Key: "targets", Msg: err.Error(), Err: err}, r.Close())
	}
	r.processor = &processor{
		db: r.db, verifier: r.verifier, apps: r.apps, targets: r.cfg.Targets, log: r.log,
		metrics: r.metrics, delivered: r.forward.Wake, wakeCh: make(chan struct{}, 1), gate: r.gate,
	}
	r.consumption = newConsumptionWorker(r.db, r.apps, r.appleClient, r.log, r.metrics, r.now, r.opts.HTTPClient, "asnrelay/"+r.opts.Version)
	r.processor.consumptionAdded = r.consumption.wake
	r.public = r.timeouts.server(r.publicHandler(), newStdLogger(r.log, "public"))
	r.admin = r.timeouts.server(r.adminHandler(), newStdLogger(r.log, "admin"))
	return nil
}

type serverTimeouts struct{ readHeader, read, write, idle time.Duration }

func (st serverTimeouts) server(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: st.readHeader, ReadTimeout: st.read,
		WriteTimeout: st.write, IdleTimeout: st.idle, MaxHeaderBytes: MaxHeaderBytes, ErrorLog: errorLog}
}

func (r *Relay) observeAttempt(d store.Delivery, a store.Attempt, result string) {
	r.metrics.deliveries.WithLabelValues(d.Target, result).Inc()
	if a.Latency > 0 {
		r.metrics.attemptDuration.WithLabelValues(d.Target).Observe(a.Latency.Seconds())
	}
}

// Addr is the bound public address (useful with listen ":0").
func (r *Relay) Addr() net.Addr { return r.publicLn.Addr() }

// AdminAddr is the bound admin address.
func (r *Relay) AdminAddr() net.Addr { return r.adminLn.Addr() }

// Run serves until ctx ends, then stops in order: intake first (in-flight
// requests finish and their commits land), then processing and delivery
// (attempts in flight finish and are recorded), then the admin API.
func (r *Relay) Run(ctx context.Context) error {
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var workers sync.WaitGroup
	workers.Go(func() { r.processor.run(workCtx) })
	workers.Go(func() { r.forward.Run(workCtx) })
	workers.Go(func() { r.consumption.run(workCtx) })
	workers.Go(func() { r.appleStartup(workCtx) })
	workers.Go(func() { r.runRetention(workCtx) })

	serveErr := make(chan error, 2)
	go func() { serveErr <- serve(r.public, r.publicLn) }()
	go func() { serveErr <- serve(r.admin, r.adminLn) }()
	r.ready.Store(true)
	r.log.Info().Str("listen", r.publicLn.Addr().String()).Str("admin", r.adminLn.Addr().String()).
		Str("db", r.db.Path()).Str("version", r.opts.Version).Int("apps", len(r.cfg.Apps)).
		Int("targets", len(r.cfg.Targets)).Msg("asnrelay serving")

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	r.ready.Store(false)
	r.log.Info().Msg("shutting down: finishing in-flight requests and deliveries")
	// A fresh context: ctx is already done.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err = errors.Join(err, r.public.Shutdown(shutdownCtx))
	stopWork()
	workers.Wait()
	err = errors.Join(err, r.admin.Shutdown(shutdownCtx))
	if err == nil {
		r.log.Info().Msg("stopped")
	}
	return err
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close releases the listeners and the store. Call it after Run returns (or
// instead of Run after a failed Open).
func (r *Relay) Close() error {
	var errs []error
	r.closeOnce.Do(func() {
		for _, ln := range []net.Listener{r.publicLn, r.adminLn} {
			if ln != nil {
				if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					errs = append(errs, err)
				}
			}
		}
		if r.db != nil {
			errs = append(errs, r.db.Close())
		}
	})
	return errors.Join(errs...)
}
