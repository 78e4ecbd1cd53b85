package relay

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

func TestParseSince(t *testing.T) {
	now := t0
	for in, want := range map[string]time.Time{
		"72h":                       now.Add(-72 * time.Hour),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"1d12h":                     now.Add(-36 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"2026-11-01T00:00:00Z":      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00+02:00": time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0s", "-1h", "yesterday", "2026-11-01", "7", "1w"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q) succeeded", in)
		}
	}
}

func TestParseNotificationQuery(t *testing.T) {
	q, err := parseNotificationQuery(url.Values{
		"app": {"myapp"}, "environment": {"Production"}, "type": {"SUBSCRIBED.RESUBSCRIBE"}, "state": {"verified"},
		"since": {"24h"}, "limit": {"1000"}, "cursor": {encodeCursor(cursorNotifications, 42)},
	}, t0)
	want := notificationQuery{
		filter: store.NotificationFilter{App: "myapp", Environment: "Production", Type: "SUBSCRIBED.RESUBSCRIBE",
			State: store.StateVerified, Since: t0.Add(-24 * time.Hour)},
		before: 42, limit: 1000,
	}
	if err != nil || q != want {
		t.Errorf("parse = %+v, %v; want %+v", q, err, want)
	}
	if q, err := parseNotificationQuery(url.Values{}, t0); err != nil || q.limit != DefaultPageSize || q.before != 0 {
		t.Errorf("defaults = %+v, %v", q, err)
	}
	for _, raw := range []string{"type=.X", "type=X.", "type=A.B.C", "type=A%20B", "limit=-1", "limit=1e3", "cursor=bg", "state=Verified"} {
		v, _ := url.ParseQuery(raw)
		_, err := parseNotificationQuery(v, t0)
		if status, _ := errorStatus(err); err == nil || status != http.StatusBadRequest {
			t.Errorf("%s: %v, want a 400", raw, err)
		}
	}
}

func TestCursorsRoundTripAndStayInTheirList(t *testing.T) {
	for _, id := range []uint64{1, 255, 1 << 40, ^uint64(0)} {
		c := encodeCursor(cursorDeliveries, id)
		if got, err := decodeCursor(cursorDeliveries, c); err != nil || got != id {
			t.Errorf("round trip %d: %d, %v", id, got, err)
		}
		if _, err := decodeCursor(cursorNotifications, c); err == nil {
			t.Errorf("a deliveries cursor was taken for notifications")
		}
	}
	if encodeCursor(cursorNotifications, 0) != "" {
		t.Error("the end of a list must be an empty cursor")
	}
}

// checkQueryAnswer holds for every query: an error is a precise 400, a
// success is within bounds.
func checkQueryAnswer(t *testing.T, raw string, limit int, since, until time.Time, err error) {
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.msg == "" {
			t.Fatalf("%q: error %v is not a 400 with a message", raw, err)
		}
		return
	}
	if limit < 1 || limit > MaxPageSize {
		t.Fatalf("%q: limit %d", raw, limit)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		t.Fatalf("%q: since %v not before until %v", raw, since, until)
	}
}

func FuzzParseNotificationQuery(f *testing.F) {
	for _, s := range []string{"", "app=myapp&state=verified", "type=SUBSCRIBED.INITIAL_BUY&since=7d&limit=10",
		"since=2026-11-01T00:00:00Z&until=1h", "cursor=bgAAAAAAAAAq", "limit=0", "x=1&x=2", "since=1d12h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseNotificationQuery(v, t0)
		checkQueryAnswer(t, raw, q.limit, q.filter.Since, q.filter.Until, err)
		if err == nil && q.before != 0 {
			if back, err := decodeCursor(cursorNotifications, encodeCursor(cursorNotifications, q.before)); err != nil || back != q.before {
				t.Fatalf("%q: cursor %d does not round trip", raw, q.before)
			}
		}
	})
}

func FuzzParseDeliveryQuery(f *testing.F) {
	for _, s := range []string{"", "target=backend&state=dead", "notification=12&limit=1000", "state=pending&since=72h",
		"cursor=ZAAAAAAAAAAB", "notification=0", "type=DID_RENEW&environment=Sandbox"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseDeliveryQuery(v, t0)
		checkQueryAnswer(t, raw, q.limit, q.filter.Since, q.filter.Until, err)
	})
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"72h", "7d", "0.5d", "2026-11-23T12:00:00Z", "2026-11-23T12:00:00.123+05:30", "-1h", "9999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, t0)
		if err == nil && got.IsZero() {
			t.Fatalf("%q: zero time without an error", s)
		}
	})
}
