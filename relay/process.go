package relay

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

const (
	// processBatch is how many stored notifications one processing commit
	// takes. A commit holds back the appends that arrive during it, so a
	// backlog is worked off in small commits (32 against 256: ack p99 at
	// 1 000 and 5 000 req/s lower in each of three paired runs).
	processBatch = 32
	// processRetry is the wait after a failure that may pass (store, transient verification).
	processRetry = time.Second
)

// processor turns stored notifications into verified (or not) records and
// the deliveries they qualify for. It resumes from the store's inbox, so a
// crash loses nothing: what was not committed is processed again.
type processor struct {
	db       *store.DB
	verifier *apple.Verifier
	apps     map[string]*config.App
	targets  []config.Target
	log      zerolog.Logger
	metrics  *metrics
	// delivered is called after deliveries were created.
	delivered func()
	wakeCh    chan struct{}
	// gate makes each verification wait for a gap in ingest.
	gate *ingestGate

	// consumptionAdded is called after CONSUMPTION_REQUEST answers were queued.
	consumptionAdded func()
}

func (p *processor) wake() {
	select {
	case p.wakeCh <- struct{}{}:
	default:
	}
}

func (p *processor) run(ctx context.Context) {
	for {
		n, err := p.step(ctx)
		if err != nil {
			p.log.Error().Err(err).Msg("process notifications; retrying")
		}
		if n > 0 && err == nil {
			continue // maybe more waiting; an empty inbox ends the burst
		}
		wait := time.Duration(0)
		if err != nil {
			wait = processRetry
		}
		if !p.idle(ctx, wait) {
			return
		}
	}
}

// idle waits for a wake-up (or for d, when d > 0); false means stop.
func (p *processor) idle(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.wakeCh:
	case <-timeout:
	}
	return true
}

// step processes one batch from the inbox and returns its size.
func (p *processor) step(ctx context.Context) (int, error) {
	inbox, err := p.db.Inbox(processBatch)
	if err != nil || len(inbox) == 0 {
		return 0, err
	}
	outcomes := make([]store.Outcome, 0, len(inbox))
	var retry error
	for _, r := range inbox {
		p.gate.wait(ctx)
		if ctx.Err() != nil {
			break // shutting down: the rest stays in the inbox
		}
		o, err := p.outcome(r)
		if err != nil {
			// Transient: leave it (and what follows, to keep order) for later.
			retry = err
			break
		}
		outcomes = append(outcomes, o)
	}
	if len(outcomes) == 0 {
		return 0, retry
	}
	done, err := p.db.Process(outcomes)
	if err != nil {
		return 0, err
	}
	deliveries, consumption := 0, false
	for i, d := range done {
		o := outcomes[i]
		deliveries += d.Deliveries
		if d.State == store.StateVerified && o.Refund != nil {
			p.metrics.refunds.WithLabelValues(inbox[i].App, o.Type).Inc()
			consumption = consumption || o.Consumption != nil
		}
		env, typ := o.Environment, o.Type
		if d.State != store.StateVerified && d.State != store.StateDuplicate {
			// Unverified payloads say what their sender likes: keep label
			// values bounded.
			env, typ = "unverified", "unverified"
		}
		p.metrics.notifications.WithLabelValues(inbox[i].App, env, typ, string(d.State)).Inc()
		ev := p.log.Info()
		if d.State != store.StateVerified {
			ev = p.log.Warn()
		}
		ev.Str("app", inbox[i].App).Uint64("id", d.Seq).Str("notification_uuid", o.UUID).Str("type", o.Type).
			Str("subtype", o.Subtype).Str("environment", o.Environment).Str("state", string(d.State)).
			Str("reason", o.Reason).Int("deliveries", d.Deliveries).Msg("notification processed")
	}
	if deliveries > 0 && p.delivered != nil {
		p.delivered()
	}
	if consumption && p.consumptionAdded != nil {
		p.consumptionAdded()
	}
	return len(outcomes), retry
}

// outcome verifies one stored body and decides its state and deliveries. An
// error means "try again later", never "drop".
func (p *processor) outcome(r store.Received) (store.Outcome, error) {
	o := store.Outcome{Seq: r.Seq, State: store.StateUnverified}
	app, ok := p.apps[r.App]
	if !ok {
		o.Reason = fmt.Sprintf("app %q is no longer configured", r.App)
		return o, nil
	}
	signedPayload, ok := signedPayloadOf(r.Body)
	if !ok || signedPayload == "" {
		o.Reason = "malformed body: not a JSON object with a string signedPayload"
		return o, nil
	}

	n, err := p.verifier.VerifyNotification(signedPayload)
	verified := err == nil
	if err != nil {
		if apple.IsRetryable(err) {
			return o, err
		}
		// Read what it claims to be, untrusted, for display and routing to
		// targets that take unverified data.
		n, _ = apple.DecodeNotification(signedPayload)
		o.Reason = err.Error()
		if n != nil {
			env := n.Identity().Environment
			if apple.IsUnsignedEnvironment(env) && app.Allows(env) {
				// Xcode and StoreKit Testing data is never signed by Apple;
				// like Apple's libraries, accept it when the app opts in.
				verified = true
				o.Reason = fmt.Sprintf("%s data is not signed by Apple; accepted because the app lists %s", env, env)
			}
		}
	}
	if n == nil {
		return o, nil
	}
	id := n.Identity()
	o.UUID, o.Type, o.Subtype = clean(n.NotificationUUID), clean(string(n.NotificationType)), clean(string(n.Subtype))
	o.Environment, o.BundleID = clean(id.Environment), clean(id.BundleID)
	if verified {
		err := apple.CheckIdentity(id, apple.AppExpectation{BundleID: app.BundleID, AppAppleID: app.AppAppleID, Environments: app.EnvironmentList()})
		if err != nil {
			verified, o.Reason = false, err.Error()
		}
	}
	if verified {
		o.State, o.Verified = store.StateVerified, true
		appleWork(&o, r, app, n)
	}

	wantsDecoded := false
	for _, t := range p.targets {
		if !targetMatches(t, r.App, o, verified) {
			continue
		}
		o.Deliveries = append(o.Deliveries, store.NewDelivery{
			Target: t.Name, Payload: t.Payload, App: r.App,
			Environment: o.Environment, Type: o.Type, UUID: o.UUID,
		})
		wantsDecoded = wantsDecoded || t.Payload == store.PayloadDecoded
	}
	if wantsDecoded {
		doc, err := n.DecodedJSON()
		if err != nil {
			return o, fmt.Errorf("decoded document of %d: %w", r.Seq, err)
		}
		o.Decoded = doc
	}
	return o, nil
}

// targetMatches applies a target's filters to a notification. Filters on
// unverified data use what the payload claims, and only targets with
// verified_only: false see unverified data at all.
func targetMatches(t config.Target, app string, o store.Outcome, verified bool) bool {
	if t.VerifiedOnly && !verified {
		return false
	}
	if len(t.Apps) > 0 && !slices.Contains(t.Apps, app) {
		return false
	}
	if len(t.Environments) > 0 && !slices.Contains(t.Environments, o.Environment) {
		return false
	}
	if len(t.Types) > 0 && !slices.Contains(t.Types, o.Type) && !slices.Contains(t.Types, o.Type+"."+o.Subtype) {
		return false
	}
	return true
}

// maxFieldLength bounds identifiers copied from a payload into metadata and
// request headers.
const maxFieldLength = 200

// clean returns s if it is a short run of printable ASCII, else "". Values
// read from unverified payloads end up in headers, logs and the admin API.
func clean(s string) string {
	if len(s) > maxFieldLength {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}
