package relay

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// Page sizes of the list endpoints.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// maxFilterLen bounds a filter value: names and types are short.
const maxFilterLen = 200

// Cursor kinds, so that a cursor of one list is refused by another.
const (
	cursorNotifications = 'n'
	cursorDeliveries    = 'd'
)

var (
	notificationStates = []string{string(store.StateReceived), string(store.StateVerified), string(store.StateUnverified), string(store.StateDuplicate)}
	deliveryStates     = []string{string(store.DeliveryPending), string(store.DeliverySucceeded), string(store.DeliveryDead)}
	environments       = []string{"Production", "Sandbox", "Xcode", "LocalTesting"}
)

// notificationQuery is a parsed GET /api/v1/notifications.
type notificationQuery struct {
	filter store.NotificationFilter
	before uint64
	limit  int
}

// deliveryQuery is a parsed GET /api/v1/deliveries.
type deliveryQuery struct {
	filter store.DeliveryFilter
	before uint64
	limit  int
}

// queryReader reads query parameters strictly: each known at most once,
// nothing unknown, every error naming its parameter.
type queryReader struct {
	q   url.Values
	now time.Time
	err error
}

func newQueryReader(q url.Values, now time.Time, known ...string) *queryReader {
	r := &queryReader{q: q, now: now}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !slices.Contains(known, k):
			r.fail("unknown query parameter %q (known: %s)", k, strings.Join(known, ", "))
		case len(q[k]) > 1:
			r.fail("query parameter %s given %d times", k, len(q[k]))
		}
	}
	return r
}

func (r *queryReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = errBadRequest(format, args...)
	}
}

func (r *queryReader) str(key string) string {
	v := r.q.Get(key)
	if len(v) > maxFilterLen {
		r.fail("%s: longer than %d bytes", key, maxFilterLen)
		return ""
	}
	return v
}

func (r *queryReader) oneOf(key string, allowed []string) string {
	v := r.q.Get(key)
	if v != "" && !slices.Contains(allowed, v) {
		r.fail("%s: %q is not one of %s", key, v, strings.Join(allowed, ", "))
		return ""
	}
	return v
}

func (r *queryReader) notificationType(key string) string {
	v := r.str(key)
	if err := checkType(v); err != nil {
		r.fail("%s: %v", key, err)
		return ""
	}
	return v
}

func (r *queryReader) time(key string) time.Time {
	v := r.q.Get(key)
	if v == "" {
		return time.Time{}
	}
	t, err := parseSince(v, r.now)
	if err != nil {
		r.fail("%s: %v", key, err)
	}
	return t
}

func (r *queryReader) id(key string) uint64 {
	v := r.q.Get(key)
	if v == "" {
		return 0
	}
	id, err := parseID(v)
	if err != nil {
		r.fail("%s: %v", key, err)
	}
	return id
}

func (r *queryReader) limit() int {
	v := r.q.Get("limit")
	if v == "" {
		return DefaultPageSize
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageSize {
		r.fail("limit: want a number from 1 to %d, got %q", MaxPageSize, v)
		return DefaultPageSize
	}
	return n
}

func (r *queryReader) cursor(kind byte) uint64 {
	v := r.q.Get("cursor")
	if v == "" {
		return 0
	}
	id, err := decodeCursor(kind, v)
	if err != nil {
		r.fail("cursor: %v", err)
	}
	return id
}

func (r *queryReader) window(since, until time.Time) {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		r.fail("since (%s) must be before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
}

func parseNotificationQuery(q url.Values, now time.Time) (notificationQuery, error) {
	r := newQueryReader(q, now, "app", "environment", "type", "state", "since", "until", "limit", "cursor")
	nq := notificationQuery{filter: store.NotificationFilter{
		App:         r.str("app"),
		Environment: r.oneOf("environment", environments),
		Type:        r.notificationType("type"),
		State:       store.State(r.oneOf("state", notificationStates)),
		Since:       r.time("since"),
		Until:       r.time("until"),
	}}
	r.window(nq.filter.Since, nq.filter.Until)
	nq.limit = r.limit()
	nq.before = r.cursor(cursorNotifications)
	return nq, r.err
}

func parseDeliveryQuery(q url.Values, now time.Time) (deliveryQuery, error) {
	r := newQueryReader(q, now, "target", "state", "notification", "app", "environment", "type", "since", "until", "limit", "cursor")
	dq := deliveryQuery{filter: store.DeliveryFilter{
		Target:      r.str("target"),
		State:       store.DeliveryState(r.oneOf("state", deliveryStates)),
		Seq:         r.id("notification"),
		App:         r.str("app"),
		Environment: r.oneOf("environment", environments),
		Type:        r.notificationType("type"),
		Since:       r.time("since"),
		Until:       r.time("until"),
	}}
	if strings.Contains(dq.filter.Type, ".") {
		r.fail("type: deliveries are filtered by notificationType only, without a subtype")
	}
	r.window(dq.filter.Since, dq.filter.Until)
	dq.limit = r.limit()
	dq.before = r.cursor(cursorDeliveries)
	return dq, r.err
}

// parseSince reads a point in time: a duration before now ("72h", "7d",
// "1d12h") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := config.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("want a positive duration, got %q", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want a duration like 72h or 7d, or an RFC 3339 time like 2026-11-23T12:00:00Z; got %q", s)
}

// parseID reads a notification or delivery id.
func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("want a positive integer id, got %q", s)
	}
	return id, nil
}

// checkType accepts a notificationType ("DID_RENEW") or "TYPE.SUBTYPE".
func checkType(s string) error {
	if s == "" {
		return nil
	}
	typ, sub, _ := strings.Cut(s, ".")
	for _, part := range []string{typ, sub} {
		for _, c := range part {
			if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
				return fmt.Errorf("want a notificationType like DID_RENEW or SUBSCRIBED.INITIAL_BUY, got %q", s)
			}
		}
	}
	if typ == "" || strings.HasSuffix(s, ".") || strings.Count(s, ".") > 1 {
		return fmt.Errorf("want a notificationType like DID_RENEW or SUBSCRIBED.INITIAL_BUY, got %q", s)
	}
	return nil
}

// encodeCursor makes the opaque cursor that resumes a list below id.
func encodeCursor(kind byte, id uint64) string {
	if id == 0 {
		return ""
	}
	b := make([]byte, 9)
	b[0] = kind
	binary.BigEndian.PutUint64(b[1:], id)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(kind byte, s string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != kind || binary.BigEndian.Uint64(b[1:]) == 0 {
		return 0, fmt.Errorf("%q is not a next_cursor this list returned", s)
	}
	return binary.BigEndian.Uint64(b[1:]), nil
}
