package config

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseDuration: never panics; without a d it is time.ParseDuration;
// whatever formatDuration prints for an accepted value reads back the same.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "1d12h", "0.5d", "-1d", "+2d", "1d1.5h30m", "90m", "0", "99999999999d", "106751d", "1e3d", ".d", "d", "1d-1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if !strings.Contains(s, "d") {
			want, werr := time.ParseDuration(s)
			if (err == nil) != (werr == nil) || d != want {
				t.Fatalf("%q: %v, %v; time.ParseDuration says %v, %v", s, d, err, want, werr)
			}
		}
		if err != nil || d < 0 {
			return
		}
		back, err := parseDuration(formatDuration(d))
		if err != nil || back != d {
			t.Fatalf("%q = %v prints as %q, which reads %v, %v", s, d, formatDuration(d), back, err)
		}
	})
}

// FuzzExpand: never panics; $$ escapes every $, so any text survives a
// round trip; an error never repeats a variable's value.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "plain", "${TOKEN}", "$$", "$${TOKEN}", "${", "${}", "${1A}", "a$b", "${TOKEN}${TOKEN}", "$"} {
		f.Add(s)
	}
	const secret = "s3cr3t-value"
	lookup := func(name string) (string, bool) {
		if name == "TOKEN" {
			return secret, true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := expand(s, lookup)
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q holds a variable's value", err)
		}
		if err == nil && !strings.Contains(s, "$") && got != s {
			t.Fatalf("%q without $ became %q", s, got)
		}
		back, err := expand(strings.ReplaceAll(s, "$", "$$"), lookup)
		if err != nil || back != s {
			t.Fatalf("escaped %q reads back %q, %v", s, back, err)
		}
	})
}
