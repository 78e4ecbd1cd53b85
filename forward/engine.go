package forward

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/store"
)

// Defaults for Target fields left zero.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 4
)

// writeBuffer is each target connection's write buffer: room for the
// headers and a notification of up to about 60 KiB.
const writeBuffer = 64 << 10

// Target is one HTTP endpoint that receives notifications.
type Target struct {
	Name string
	URL  string
	// Headers are added to every request (e.g. Authorization).
	Headers map[string]string
	// Secret, when set, signs each request the Standard Webhooks way.
	Secret      string
	Timeout     time.Duration
	Concurrency int
	Retry       Retry
}

// Result labels an attempt's outcome for observers.
const (
	ResultSuccess = "success"
	ResultRetry   = "retry"
	ResultDead    = "dead"
)

// Options tune an Engine. The zero value is ready to use.
type Options struct {
	// Now is the clock; nil means time.Now. Waits are computed from it, and
	// Wake makes workers look again after a test moves it.
	Now func() time.Time
	// Client sends the requests; nil means a client with pooled connections
	// that does not follow redirects. Each request also gets the target's Timeout.
	Client *http.Client
	// UserAgent is sent on every request.
	UserAgent string
	// OnAttempt, if set, is called after each attempt is recorded.
	OnAttempt func(d store.Delivery, a store.Attempt, result string)
	// Yield, if set, is called before each attempt and may delay it: the
	// relay uses it to let acknowledgements go first.
	Yield func(ctx context.Context)
	// Idle, if set, says whether the relay has had nothing else to do for a
	// while. A delivery that succeeded then gives its request slot back at
	// once, before its attempt is recorded; otherwise the slot is held until
	// the record commits, which paces deliveries by the store. Unset means
	// always idle.
	Idle func() bool
}

// Engine runs one worker per target.
type Engine struct {
	db      *store.DB
	log     zerolog.Logger
	opts    Options
	workers map[string]*worker
}

// New builds an engine for targets. It fails on a target it cannot use.
func New(db *store.DB, targets []Target, log zerolog.Logger, opts Options) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = newClient()
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "asnrelay"
	}
	e := &Engine{db: db, log: log, opts: opts, workers: make(map[string]*worker, len(targets))}
	for _, t := range targets {
		if t.Timeout <= 0 {
			t.Timeout = DefaultTimeout
		}
		if t.Concurrency <= 0 {
			t.Concurrency = DefaultConcurrency
		}
		t.Retry = t.Retry.withDefaults()
		key, err := ParseSecret(t.Secret)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		if _, dup := e.workers[t.Name]; dup {
			return nil, fmt.Errorf("target %s: defined twice", t.Name)
		}
		e.workers[t.Name] = &worker{
			e: e, target: t, key: key,
			log:      log.With().Str("target", t.Name).Logger(),
			wake:     make(chan struct{}, 1),
			results:  make(chan result, t.Concurrency+maxRecording), // never blocks an attempt
			inflight: make(map[uint64]bool),
			probe:    t.Retry.exponential(0.5),
		}
	}
	return e, nil
}

func newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = 0 // the per-request context carries the target timeout
	// A request whose headers and body fit the write buffer goes out in one
	// write. With the default 4 KiB, a notification's body overflows it, and
	// the rest is copied through a fresh 32 KiB buffer: a quarter of what
	// the relay allocated per notification forwarded.
	tr.WriteBufferSize = writeBuffer
	return &http.Client{
		Transport: tr,
		// A redirect is an answer, not a success: the target's URL is wrong.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run runs the workers until ctx ends, then waits for attempts in flight to
// finish and be recorded (each is bounded by its target's timeout).
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, w := range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Wake tells every worker to look for due work now: after new deliveries are
// created, or after a test moves the clock.
func (e *Engine) Wake() {
	for _, w := range e.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Health is what a worker knows of its target.
type Health struct {
	Failing   bool
	NextProbe time.Time
	InFlight  int
}

// Health reports every target's health, by name.
func (e *Engine) Health() map[string]Health {
	out := make(map[string]Health, len(e.workers))
	for name, w := range e.workers {
		w.mu.Lock()
		out[name] = Health{Failing: w.failing, NextProbe: w.nextProbe, InFlight: len(w.inflight)}
		w.mu.Unlock()
	}
	return out
}
