package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	logLevels       = []string{"trace", "debug", "info", "warn", "error"}
	logFormats      = []string{"json", "console"}
	environments    = []string{EnvironmentProduction, EnvironmentSandbox, EnvironmentXcode, EnvironmentLocalTesting}
	payloads        = []string{PayloadRaw, PayloadDecoded}
	deliveryStatus  = []string{"DELIVERED", "UNDELIVERED_QUALITY_ISSUE", "UNDELIVERED_WRONG_ITEM", "UNDELIVERED_SERVER_OUTAGE", "UNDELIVERED_OTHER"}
	refundPrefs     = []string{"DECLINE", "GRANT_FULL", "GRANT_PRORATED"}
	refundReasons   = []string{"UNINTENDED_PURCHASE", "FULFILLMENT_ISSUE", "UNSATISFIED_WITH_PURCHASE", "LEGAL", "OTHER"}
	reservedHeaders = []string{"Content-Length", "Content-Type", "Host", "Transfer-Encoding", "Connection", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
)

// Validate checks c and returns every problem it finds, joined with
// errors.Join; each is an *Error naming the key path and, unless it is a
// secret, the value. Parse calls Validate; call it again after changing a
// Config in code.
func (c *Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return joinErrors(p)
	}
	return nil
}

type problems []*Error

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// addAt is add for a problem best shown at the line of another key.
func (ps *problems) addAt(key, lineOf, format string, args ...any) {
	ps.add(key, format, args...)
	(*ps)[len(*ps)-1].lineOf = lineOf
}

func (c *Config) problems() []*Error {
	var ps problems
	ps.listen("listen", c.Listen)
	if c.DataDir == "" {
		ps.add("data_dir", "required")
	}
	if c.MaxBodyBytes < MinMaxBodyBytes || c.MaxBodyBytes > MaxMaxBodyBytes {
		ps.add("max_body_bytes", "%d must be between %d (1 KiB) and %d (64 MiB)", c.MaxBodyBytes, MinMaxBodyBytes, MaxMaxBodyBytes)
	}
	ps.oneOf("log.level", "level", c.Log.Level, logLevels)
	ps.oneOf("log.format", "format", c.Log.Format, logFormats)

	ps.listen("admin.listen", c.Admin.Listen)
	// Port 0 asks the kernel for a free port, so two of them never clash.
	if c.Admin.Listen != "" && c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		ps.add("admin.listen", "%q must differ from listen", c.Admin.Listen)
	}
	if c.Admin.Listen != "" && c.Admin.Token == "" && !IsLoopback(c.Admin.Listen) {
		ps.addAt("admin.token", "admin.listen", "required when admin.listen %q is not loopback", c.Admin.Listen)
	}
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			ps.add(fmt.Sprintf("trusted_proxies[%d]", i), "invalid CIDR prefix")
		}
	}
	for i, p := range c.AllowSources {
		if !p.IsValid() {
			ps.add(fmt.Sprintf("allow_sources[%d]", i), "invalid CIDR prefix")
		}
	}
	for i, p := range c.Apple.RootCerts {
		if p == "" {
			ps.add(fmt.Sprintf("apple.root_certs[%d]", i), "empty path")
		}
	}

	if len(c.Apps) == 0 {
		ps.add("apps", "at least one app is required")
	}
	apps := make(map[string]int)
	for i := range c.Apps {
		key := fmt.Sprintf("apps[%d]", i)
		a := &c.Apps[i]
		if ps.name(key+".name", a.Name) {
			if first, dup := apps[a.Name]; dup {
				ps.add(key+".name", "duplicate app name %q (also apps[%d])", a.Name, first)
			} else {
				apps[a.Name] = i
			}
		}
		ps.app(key, a)
	}

	targets := make(map[string]int)
	for i := range c.Targets {
		key := fmt.Sprintf("targets[%d]", i)
		t := &c.Targets[i]
		if ps.name(key+".name", t.Name) {
			if first, dup := targets[t.Name]; dup {
				ps.add(key+".name", "duplicate target name %q (also targets[%d])", t.Name, first)
			} else {
				targets[t.Name] = i
			}
		}
		ps.target(key, t, apps)
	}

	ps.positive("retention.delivered", c.Retention.Delivered)
	ps.positive("retention.dead", c.Retention.Dead)
	return ps
}

func (ps *problems) app(key string, a *App) {
	if a.BundleID == "" {
		ps.add(key+".bundle_id", "required")
	}
	if a.AppAppleID < 0 {
		ps.add(key+".app_apple_id", "%d must not be negative", a.AppAppleID)
	}
	envs := a.EnvironmentList()
	ps.environments(key+".environments", envs)
	if a.AppAppleID == 0 && slices.Contains(envs, EnvironmentProduction) {
		ps.addAt(key+".app_apple_id", key+".environments", "required when environments include Production")
	}
	if api := a.API; api != nil {
		if api.IssuerID == "" {
			ps.add(key+".api.issuer_id", "required")
		}
		if api.KeyID == "" {
			ps.add(key+".api.key_id", "required")
		}
		if api.PrivateKeyFile == "" && len(api.PrivateKey) == 0 {
			ps.add(key+".api.private_key_file", "required")
		}
		if api.BaseURL != "" && !isHTTPURL(api.BaseURL) {
			ps.add(key+".api.base_url", "must be an absolute http or https URL")
		}
	}
	if a.BackfillOnStart && a.API == nil {
		ps.add(key+".backfill_on_start", "needs the app's api key (%s.api)", key)
	}

	c := &a.Consumption
	ck := key + ".consumption"
	if c.Enabled && !c.DryRun && a.API == nil {
		ps.add(ck+".enabled", "sending answers needs the app's api key (%s.api); set dry_run: true to only log them", key)
	}
	if c.ReviewDelay < 0 || c.ReviewDelay > MaxReviewDelay {
		ps.add(ck+".review_delay", "%s must be between 0s and %s", formatDuration(c.ReviewDelay), formatDuration(MaxReviewDelay))
	}
	ps.oneOf(ck+".delivery_status", "value", c.DeliveryStatus, deliveryStatus)
	if c.RefundPreference.Default != "" {
		ps.oneOf(ck+".refund_preference.default", "value", c.RefundPreference.Default, refundPrefs)
	}
	for _, reason := range sortedKeys(c.RefundPreference.ByReason) {
		pref := c.RefundPreference.ByReason[reason]
		if !slices.Contains(refundReasons, reason) {
			ps.add(ck+".refund_preference.by_reason", "unknown reason %q (want %s)", reason, list(refundReasons))
		} else if pref != "" {
			ps.oneOf(ck+".refund_preference.by_reason."+reason, "value", pref, refundPrefs)
		}
	}
	if c.ProviderURL != "" && !isHTTPURL(c.ProviderURL) {
		ps.add(ck+".provider_url", "must be an absolute http or https URL")
	}
}

func (ps *problems) target(key string, t *Target, apps map[string]int) {
	if t.URL == "" {
		ps.add(key+".url", "required")
	} else if !isHTTPURL(t.URL) {
		ps.add(key+".url", "must be an absolute http or https URL")
	}
	for _, name := range t.Apps {
		if _, ok := apps[name]; !ok {
			ps.add(key+".apps", "unknown app %q", name)
		}
	}
	ps.environments(key+".environments", t.Environments)
	for _, typ := range t.Types {
		if typ == "" {
			ps.add(key+".types", "empty notification type")
		}
	}
	ps.oneOf(key+".payload", "payload", t.Payload, payloads)
	canonical := make(map[string]bool)
	for _, name := range sortedKeys(t.Headers) {
		lower := strings.ToLower(name)
		switch {
		case canonical[lower]:
			ps.add(key+".headers", "header %q is set twice (names are case-insensitive)", name)
		case !isToken(name):
			ps.add(key+".headers", "invalid header name %q", name)
		case isReservedHeader(name):
			ps.add(key+".headers", "%q is set by asnrelay and cannot be configured", name)
		case !isHeaderValue(t.Headers[name]):
			// Never print the value: headers carry credentials.
			ps.add(key+".headers."+name, "value must not contain control characters")
		}
		canonical[lower] = true
	}
	if rest, ok := strings.CutPrefix(t.Secret, "whsec_"); ok {
		if _, err := base64.StdEncoding.DecodeString(rest); err != nil || rest == "" {
			// Never print the secret.
			ps.add(key+".secret", "the part after whsec_ must be standard base64")
		}
	}
	ps.positive(key+".timeout", t.Timeout)
	if t.Concurrency < 1 || t.Concurrency > MaxConcurrency {
		ps.add(key+".concurrency", "%d must be between 1 and %d", t.Concurrency, MaxConcurrency)
	}
	ps.positive(key+".retry.initial", t.Retry.Initial)
	if t.Retry.Initial > 0 && t.Retry.MaxInterval < t.Retry.Initial {
		ps.add(key+".retry.max_interval", "%s must not be less than retry.initial (%s)", formatDuration(t.Retry.MaxInterval), formatDuration(t.Retry.Initial))
	}
	ps.positive(key+".retry.max_age", t.Retry.MaxAge)
}

func (ps *problems) listen(key, addr string) {
	if addr == "" {
		ps.add(key, "required")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || (n == 0 && port != "0") {
		ps.add(key, "%q must be host:port, e.g. \":8080\" or \"127.0.0.1:8081\"", addr)
	}
}

// name checks an app or target name and reports whether it is usable.
func (ps *problems) name(key, name string) bool {
	switch {
	case name == "":
		ps.add(key, "required")
	case len(name) > MaxNameLength:
		ps.add(key, "must be at most %d characters", MaxNameLength)
	case !isName(name):
		ps.add(key, "%q must match [a-z0-9._-]+", name)
	case name == "." || name == "..":
		ps.add(key, "%q is not a usable name", name)
	default:
		return true
	}
	return false
}

func (ps *problems) environments(key string, envs []string) {
	seen := make(map[string]bool)
	for _, env := range envs {
		switch {
		case !slices.Contains(environments, env):
			ps.add(key, "unknown environment %q (want %s)", env, list(environments))
		case seen[env]:
			ps.add(key, "duplicate environment %q", env)
		}
		seen[env] = true
	}
}

func (ps *problems) oneOf(key, what, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		ps.add(key, "unknown %s %q (want %s)", what, value, list(allowed))
	}
}

func (ps *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		ps.add(key, "must be positive, got %s", formatDuration(d))
	}
}

// list formats allowed values as "a, b or c".
func list(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" && u.Opaque == ""
}

// isToken reports whether s is an HTTP header field name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func isReservedHeader(name string) bool {
	for _, r := range reservedHeaders {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return len(name) >= len("Asnrelay-") && strings.EqualFold(name[:len("Asnrelay-")], "Asnrelay-")
}

func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
