package apple

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Timestamp is a UNIX time in milliseconds, as Apple sends dates. It decodes from a JSON
// integer or a fractional number (Xcode signs fractional milliseconds, which are truncated),
// also when quoted, and encodes as a JSON integer. Zero means absent.
type Timestamp int64

// TimestampOf returns t as a Timestamp.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMilli()) }

// Time returns the Timestamp as a time.Time in UTC.
func (ts Timestamp) Time() time.Time { return time.UnixMilli(int64(ts)).UTC() }

// IsZero reports whether the Timestamp is absent (zero).
func (ts Timestamp) IsZero() bool { return ts == 0 }

// String formats the Timestamp as RFC 3339 with milliseconds.
func (ts Timestamp) String() string { return ts.Time().Format("2006-01-02T15:04:05.000Z07:00") }

// MarshalJSON encodes the Timestamp as a JSON integer.
func (ts Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(ts), 10), nil
}

// UnmarshalJSON decodes a JSON number (integer or fractional) or a string holding one; null
// leaves the Timestamp unchanged.
func (ts *Timestamp) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	s := string(data)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*ts = Timestamp(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	// 2^63 itself does not fit, hence >=; NaN and ±Inf fail the comparisons too.
	if err != nil || !(f > -(1<<63) && f < 1<<63) {
		return fmt.Errorf("timestamp %.40q is not a millisecond UNIX time", s)
	}
	*ts = Timestamp(math.Trunc(f))
	return nil
}
