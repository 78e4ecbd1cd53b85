package config

import "time"

// ParseDuration parses a duration the way the configuration does: a Go
// duration that may also use d for days of 24 hours ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) { return parseDuration(s) }
