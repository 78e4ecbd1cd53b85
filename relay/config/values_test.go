package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"10s", 10 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"0", 0},
		{"7d", 7 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"0.5d", 12 * time.Hour},
		{"1d1.5h30m", 26 * time.Hour},
		{"-1d", -24 * time.Hour},
		{"+2d", 48 * time.Hour},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "5x", "10", "d", "1.5.5d", "5d3", "-", "1e3d", "99999999999d", "5dd", "1d-1h"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		0: "0s", 5 * time.Second: "5s", 90 * time.Minute: "1h30m", 11 * time.Hour: "11h",
		7 * 24 * time.Hour: "7d", 36 * time.Hour: "36h", -time.Second: "-1s",
	}
	for d, want := range tests {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestExpand(t *testing.T) {
	lookup := func(name string) (string, bool) {
		v, ok := map[string]string{"A": "1", "EMPTY": "", "D": "$B"}[name]
		return v, ok
	}
	tests := map[string]string{
		"":            "",
		"plain":       "plain",
		"${A}":        "1",
		"x${A}y${A}z": "x1y1z",
		"${EMPTY}":    "",
		"$$":          "$",
		"$${A}":       "${A}",
		"$A":          "$A",
		"a$":          "a$",
		"${D}":        "$B", // not expanded twice
		"100$ ${A}$":  "100$ 1$",
	}
	for in, want := range tests {
		if got, err := expand(in, lookup); err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
