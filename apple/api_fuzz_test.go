package apple_test

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/asnrelay/asnrelay/apple"
)

// Seed corpora live in testdata/fuzz/<FuzzName>.

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"1777982402500", "120", "0", "", "-1", "Tue, 05 May 2026 12:01:00 GMT", "1777982460", "9223372036854775807", "1e3", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := apple.ParseRetryAfter(v, now)
		if d < 0 || d > 30*24*time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %v", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v without ok", v, d)
		}
		if strings.TrimSpace(v) == "" && ok {
			t.Fatalf("ParseRetryAfter(%q) ok", v)
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"errorCode":4040010,"errorMessage":"Transaction id not found."}`,
		`{"errorCode":"4290000","errorMessage":null}`,
		`{"errorCode":4.2e6}`,
		`{"errorMessage":"\u00e9\ud800"}`,
		`[]`, `null`, ``, `<html><body>502 Bad Gateway</body></html>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg := apple.ParseErrorBody(body)
		if !utf8.ValidString(msg) || len(msg) > 512+len("…") {
			t.Fatalf("message %q", msg)
		}
		// What decodes as Apple's shape comes back unchanged.
		var v struct {
			ErrorCode    int64  `json:"errorCode"`
			ErrorMessage string `json:"errorMessage"`
		}
		if len(body) < 1024 && json.Unmarshal(body, &v) == nil && strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{") &&
			utf8.ValidString(v.ErrorMessage) && len(v.ErrorMessage) <= 512 && (code != v.ErrorCode || msg != v.ErrorMessage) {
			t.Fatalf("ParseErrorBody(%q) = %d, %q; want %d, %q", body, code, msg, v.ErrorCode, v.ErrorMessage)
		}
		// The error built from it formats without trouble.
		e := &apple.APIError{Status: 429, Code: code, Message: msg, Endpoint: apple.EndpointGetNotificationHistory}
		if !strings.HasPrefix(e.Error(), "apple api get_notification_history: HTTP 429") || !errors.Is(e, apple.ErrRateLimited) {
			t.Fatalf("Error() = %q", e.Error())
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	key := newAPIKey(f)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pemOf("PRIVATE KEY", der))
	f.Add(pemOf("EC PRIVATE KEY", []byte{0x30, 0x00}))
	f.Add(pemOf("CERTIFICATE", []byte{0x30, 0x00}))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := apple.ParsePrivateKey(in)
		switch {
		case err != nil && (k != nil || !errors.Is(err, apple.ErrInvalidPrivateKey)):
			t.Fatalf("ParsePrivateKey = %v, %v", k, err)
		case err == nil && (k == nil || k.Curve.Params().Name != "P-256"):
			t.Fatalf("ParsePrivateKey accepted %v", k)
		}
	})
}
