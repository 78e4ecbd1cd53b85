package config

import (
	"maps"
	"net/url"
	"slices"
)

// redactedMark is what Config.Redacted puts in place of a secret.
const redactedMark = "REDACTED"

// Redacted returns a deep copy of c that is safe to print or log: the admin
// token, target secrets and header values, private keys, and passwords and
// query values in URLs are replaced by "REDACTED". File paths are kept.
func (c Config) Redacted() Config {
	r := c
	r.Admin.Token = redact(c.Admin.Token)
	r.TrustedProxies = slices.Clone(c.TrustedProxies)
	r.AllowSources = slices.Clone(c.AllowSources)
	r.Apple.RootCerts = slices.Clone(c.Apple.RootCerts)

	r.Apps = slices.Clone(c.Apps)
	for i := range r.Apps {
		a := &r.Apps[i]
		a.Environments = slices.Clone(a.Environments)
		if a.API != nil {
			api := *a.API
			if len(api.PrivateKey) > 0 {
				api.PrivateKey = []byte(redactedMark)
			}
			api.BaseURL = redactURL(api.BaseURL)
			a.API = &api
		}
		a.Consumption.RefundPreference.ByReason = maps.Clone(a.Consumption.RefundPreference.ByReason)
		a.Consumption.ProviderURL = redactURL(a.Consumption.ProviderURL)
	}

	r.Targets = slices.Clone(c.Targets)
	for i := range r.Targets {
		t := &r.Targets[i]
		t.URL = redactURL(t.URL)
		t.Apps = slices.Clone(t.Apps)
		t.Environments = slices.Clone(t.Environments)
		t.Types = slices.Clone(t.Types)
		t.Secret = redact(t.Secret)
		if t.Headers != nil {
			h := make(map[string]string, len(t.Headers))
			for k, v := range t.Headers {
				h[k] = redact(v)
			}
			t.Headers = h
		}
	}
	return r
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redactedMark
}

// RedactURL returns s with the password and query values of the URL
// replaced by "REDACTED", for logs and messages.
func RedactURL(s string) string { return redactURL(s) }

// redactURL hides the password and query values of a URL.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return redactedMark
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redactedMark)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{redactedMark}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
