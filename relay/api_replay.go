package relay

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

const (
	// MaxReplay bounds the deliveries one replay request creates; a bulk
	// replay that reaches it says so (truncated) and can be repeated with a
	// narrower window.
	MaxReplay = 50000
	// replayBatch bounds the deliveries created per transaction.
	replayBatch = 500
	// maxSkips bounds the reasons a replay answer lists.
	maxSkips = 100
)

// replayPlan collects the deliveries a replay creates and commits them in
// batches.
type replayPlan struct {
	r       *Relay
	targets []config.Target // every configured target, or the one asked for
	named   bool            // a target was named
	res     ReplayResult
	batch   []store.Replay
	decoded map[uint64][]byte // decoded documents built for this replay
}

func (r *Relay) newReplayPlan(target string) (*replayPlan, error) {
	p := &replayPlan{r: r, targets: r.cfg.Targets, decoded: map[uint64][]byte{}, res: ReplayResult{Deliveries: []uint64{}}}
	if target != "" {
		t, ok := r.target(target)
		if !ok {
			return nil, errBadRequest("target: %q is not a configured target", target)
		}
		p.targets, p.named = []config.Target{t}, true
	}
	return p, nil
}

func (r *Relay) target(name string) (config.Target, bool) {
	i := slices.IndexFunc(r.cfg.Targets, func(t config.Target) bool { return t.Name == name })
	if i < 0 {
		return config.Target{}, false
	}
	return r.cfg.Targets[i], true
}

func (p *replayPlan) full() bool { return p.res.Created+len(p.batch) >= MaxReplay }

func (p *replayPlan) skip(s ReplaySkip) {
	if len(p.res.Skipped) < maxSkips {
		p.res.Skipped = append(p.res.Skipped, s)
	}
}

// add plans one delivery of n to t. It reports false when it was skipped.
func (p *replayPlan) add(n store.Notification, t config.Target, replayOf uint64) bool {
	if p.full() {
		p.res.Truncated = true
		return false
	}
	rp := store.Replay{NewDelivery: store.NewDelivery{
		Seq: n.Seq, Target: t.Name, Payload: t.Payload, App: n.App,
		Environment: n.Environment, Type: n.Type, UUID: n.UUID, ReplayOf: replayOf,
	}}
	if t.Payload == store.PayloadDecoded {
		doc, err := p.decodedFor(n.Seq)
		if err != nil {
			p.skip(ReplaySkip{Notification: n.Seq, Delivery: replayOf, Target: t.Name, Reason: "no decoded document for a decoded payload: " + err.Error()})
			return false
		}
		rp.Decoded = doc
	}
	p.batch = append(p.batch, rp)
	return true
}

// decodedFor returns nil when the store holds the document already.
func (p *replayPlan) decodedFor(seq uint64) ([]byte, error) {
	if doc, ok := p.decoded[seq]; ok {
		return doc, nil
	}
	_, err := p.r.db.Decoded(seq)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	body, err := p.r.db.Body(seq)
	if err != nil {
		return nil, err
	}
	doc, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	p.decoded[seq] = doc
	return doc, nil
}

// flush commits the planned deliveries.
func (p *replayPlan) flush() error {
	if len(p.batch) == 0 {
		return nil
	}
	ds, err := p.r.db.Replay(p.batch)
	if err != nil {
		return err
	}
	for _, d := range ds {
		p.res.Deliveries = append(p.res.Deliveries, d.ID)
	}
	p.res.Created += len(ds)
	p.batch = p.batch[:0]
	p.decoded = map[uint64][]byte{}
	return nil
}

// done commits what is left and wakes the delivery workers.
func (p *replayPlan) done() (ReplayResult, error) {
	if err := p.flush(); err != nil {
		return p.res, err
	}
	if p.res.Created > 0 {
		p.r.forward.Wake()
		p.r.log.Info().Int("deliveries", p.res.Created).Msg("replay: deliveries created")
	}
	return p.res, nil
}

// replay carries out a ReplayRequest.
func (r *Relay) replay(in ReplayRequest) (ReplayResult, error) {
	now := r.now()
	if in.State != "" && in.State != string(store.DeliveryDead) {
		return ReplayResult{}, errBadRequest("state: only \"dead\" (replay dead deliveries) or empty, got %q", in.State)
	}
	if in.Environment != "" && !slices.Contains(environments, in.Environment) {
		return ReplayResult{}, errBadRequest("environment: %q is not one of %s", in.Environment, strings.Join(environments, ", "))
	}
	if err := checkType(in.Type); err != nil {
		return ReplayResult{}, errBadRequest("type: %v", err)
	}
	f := store.NotificationFilter{App: in.App, Environment: in.Environment, Type: in.Type}
	for _, tm := range []struct {
		key, val string
		dst      *time.Time
	}{{"since", in.Since, &f.Since}, {"until", in.Until, &f.Until}} {
		if tm.val == "" {
			continue
		}
		t, err := parseSince(tm.val, now)
		if err != nil {
			return ReplayResult{}, errBadRequest("%s: %v", tm.key, err)
		}
		*tm.dst = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return ReplayResult{}, errBadRequest("since must be before until")
	}
	p, err := r.newReplayPlan(in.Target)
	if err != nil {
		return ReplayResult{}, err
	}
	switch {
	case len(in.IDs) > 0:
		if in.State != "" || f != (store.NotificationFilter{}) {
			return ReplayResult{}, errBadRequest("ids go with target only, not with state, app, type, environment, since or until")
		}
		if len(in.IDs) > MaxPageSize {
			return ReplayResult{}, errBadRequest("ids: at most %d per request", MaxPageSize)
		}
		err = p.replayNotifications(in.IDs)
	case in.State == string(store.DeliveryDead):
		err = p.replayDead(f)
	case in.Since == "":
		return ReplayResult{}, errBadRequest("give ids, state \"dead\", or since (a bulk replay of notifications needs a time window)")
	default:
		err = p.replayMatching(f)
	}
	if err != nil {
		return ReplayResult{}, err
	}
	return p.done()
}

// replayNotifications sends the notifications ids again to every target they
// qualify for (or to the one named).
func (p *replayPlan) replayNotifications(ids []uint64) error {
	for _, id := range ids {
		if id == 0 {
			return errBadRequest("ids: 0 is not a notification id")
		}
		n, err := p.r.db.Notification(id)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound("notification %d not found", id)
		}
		if err != nil {
			return err
		}
		if err := p.notification(n, true); err != nil {
			return err
		}
	}
	return nil
}

// replayMatching sends every processed notification matching f again.
func (p *replayPlan) replayMatching(f store.NotificationFilter) error {
	var before uint64
	for !p.full() {
		ns, next, err := p.r.db.Notifications(f, before, replayBatch)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if err := p.notification(n, false); err != nil {
				return err
			}
		}
		if err := p.flush(); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		before = next
	}
	p.res.Truncated = true
	return nil
}

// notification plans n to each target it qualifies for. explicit asks for
// reasons when nothing is sent.
func (p *replayPlan) notification(n store.Notification, explicit bool) error {
	switch n.State {
	case store.StateReceived:
		if explicit {
			p.skip(ReplaySkip{Notification: n.Seq, Reason: "not processed yet: it is delivered when it is"})
		}
		return nil
	case store.StateDuplicate:
		if explicit {
			p.skip(ReplaySkip{Notification: n.Seq, Reason: "duplicate (" + n.Reason + "): replay the original"})
		}
		return nil
	}
	prev, err := p.r.db.NotificationDeliveries(n.Seq)
	if err != nil {
		return err
	}
	latest := map[string]uint64{}
	for _, d := range prev {
		latest[d.Target] = d.ID // oldest first: the last one wins
	}
	sent := 0
	for _, t := range p.targets {
		if why := mismatch(t, n); why != "" {
			if explicit && p.named {
				p.skip(ReplaySkip{Notification: n.Seq, Target: t.Name, Reason: why})
			}
			continue
		}
		if p.add(n, t, latest[t.Name]) {
			sent++
		}
	}
	if explicit && !p.named && sent == 0 && len(p.targets) > 0 {
		reason := "no target's apps, environments and types match it"
		if n.State != store.StateVerified {
			reason = "unverified, and no target with verified_only: false matches it"
		}
		p.skip(ReplaySkip{Notification: n.Seq, Reason: reason})
	}
	return nil
}

// replayDead sends every dead delivery not yet replayed that matches f
// (on its notification) again to its target.
func (p *replayPlan) replayDead(f store.NotificationFilter) error {
	df := store.DeliveryFilter{App: f.App, Environment: f.Environment, Since: f.Since, Until: f.Until}
	for _, t := range p.targets {
		var after uint64
		for {
			if p.full() {
				p.res.Truncated = true
				return nil
			}
			letters, err := p.r.db.DeadLetters(t.Name, df, after, replayBatch)
			if err != nil {
				return err
			}
			if len(letters) == 0 {
				break
			}
			after = letters[len(letters)-1].ID
			for _, d := range letters {
				n, err := p.r.db.Notification(d.Seq)
				if err != nil {
					p.skip(ReplaySkip{Notification: d.Seq, Delivery: d.ID, Target: t.Name, Reason: err.Error()})
					continue
				}
				if !(store.NotificationFilter{Type: f.Type}).Match(n) {
					continue
				}
				if why := mismatch(t, n); why != "" {
					p.skip(ReplaySkip{Notification: n.Seq, Delivery: d.ID, Target: t.Name, Reason: why})
					continue
				}
				p.add(n, t, d.ID)
			}
			if err := p.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// retryDelivery creates a new delivery repeating d.
func (r *Relay) retryDelivery(d store.Delivery) (ReplayResult, error) {
	t, ok := r.target(d.Target)
	if !ok {
		return ReplayResult{}, errConflict("target %s is no longer configured", d.Target)
	}
	n, err := r.db.Notification(d.Seq)
	if errors.Is(err, store.ErrNotFound) {
		return ReplayResult{}, errConflict("notification %d of delivery %d is no longer stored", d.Seq, d.ID)
	}
	if err != nil {
		return ReplayResult{}, err
	}
	if why := mismatch(t, n); why != "" {
		return ReplayResult{}, errConflict("notification %d no longer qualifies for target %s: %s", n.Seq, t.Name, why)
	}
	p, _ := r.newReplayPlan("")
	if !p.add(n, t, d.ID) {
		return ReplayResult{}, errConflict("%s", p.res.Skipped[0].Reason)
	}
	return p.done()
}

// mismatch says why target t does not take notification n now, "" when it
// does. It applies the processor's rules (targetMatches) to stored metadata.
func mismatch(t config.Target, n store.Notification) string {
	verified := n.State == store.StateVerified
	o := store.Outcome{Environment: n.Environment, Type: n.Type, Subtype: n.Subtype}
	if targetMatches(t, n.App, o, verified) {
		return ""
	}
	switch {
	case t.VerifiedOnly && !verified:
		return fmt.Sprintf("notification is %s and the target has verified_only: true", n.State)
	case len(t.Apps) > 0 && !slices.Contains(t.Apps, n.App):
		return fmt.Sprintf("app %s is not in the target's apps", n.App)
	case len(t.Environments) > 0 && !slices.Contains(t.Environments, n.Environment):
		return fmt.Sprintf("environment %q is not in the target's environments", n.Environment)
	}
	return fmt.Sprintf("type %s is not in the target's types", n.Type)
}
