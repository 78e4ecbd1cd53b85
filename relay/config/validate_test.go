package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// valid returns a valid configuration built in code.
func valid() Config {
	c := Default()
	app := DefaultApp()
	app.Name, app.BundleID, app.AppAppleID = "myapp", "com.example.myapp", 1234567890
	target := DefaultTarget()
	target.Name, target.URL = "backend", "https://backend.example.com/apple"
	c.Apps = []App{app}
	c.Targets = []Target{target}
	return c
}

func TestValidate(t *testing.T) {
	api := func(c *Config) *API {
		c.Apps[0].API = &API{IssuerID: "issuer", KeyID: "ABC123DEFG", PrivateKeyFile: "Key.p8"}
		return c.Apps[0].API
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"no targets", func(c *Config) { c.Targets = nil }, ""},
		{"listen required", func(c *Config) { c.Listen = "" }, "listen: required"},
		{"listen without port", func(c *Config) { c.Listen = "8080" }, `listen: "8080" must be host:port`},
		{"listen bad port", func(c *Config) { c.Listen = ":http" }, `listen: ":http" must be host:port`},
		{"listen port 0", func(c *Config) { c.Listen = "127.0.0.1:0" }, ""},
		{"data_dir", func(c *Config) { c.DataDir = "" }, "data_dir: required"},
		{"max_body_bytes small", func(c *Config) { c.MaxBodyBytes = 1023 }, "max_body_bytes: 1023 must be between 1024 (1 KiB) and 67108864 (64 MiB)"},
		{"max_body_bytes large", func(c *Config) { c.MaxBodyBytes = 64<<20 + 1 }, "max_body_bytes: 67108865 must be between"},
		{"max_body_bytes bounds", func(c *Config) { c.MaxBodyBytes = 1024 }, ""},
		{"log.level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: unknown level "verbose" (want trace, debug, info, warn or error)`},
		{"log.format", func(c *Config) { c.Log.Format = "text" }, `log.format: unknown format "text" (want json or console)`},
		{"log console", func(c *Config) { c.Log = Log{Level: "trace", Format: "console"} }, ""},
		{"admin.listen required", func(c *Config) { c.Admin.Listen = "" }, "admin.listen: required"},
		{"admin.listen same as listen", func(c *Config) { c.Admin.Listen = c.Listen; c.Admin.Token = "t" }, `admin.listen: ":8080" must differ from listen`},
		{"admin token required", func(c *Config) { c.Admin.Listen = "0.0.0.0:8081" },
			`admin.token: required when admin.listen "0.0.0.0:8081" is not loopback`},
		{"admin token required on all interfaces", func(c *Config) { c.Admin.Listen = ":8081" },
			`admin.token: required when admin.listen ":8081" is not loopback`},
		{"admin token given", func(c *Config) { c.Admin = Admin{Listen: "0.0.0.0:8081", Token: "t"} }, ""},
		{"admin on ::1", func(c *Config) { c.Admin.Listen = "[::1]:8081" }, ""},
		{"admin on localhost", func(c *Config) { c.Admin.Listen = "localhost:8081" }, ""},
		{"trusted_proxies", func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}} }, "trusted_proxies[1]: invalid CIDR prefix"},
		{"allow_sources", func(c *Config) { c.AllowSources = []netip.Prefix{{}} }, "allow_sources[0]: invalid CIDR prefix"},
		{"root_certs", func(c *Config) { c.Apple.RootCerts = []string{""} }, "apple.root_certs[0]: empty path"},

		{"no apps", func(c *Config) { c.Apps = nil; c.Targets = nil }, "apps: at least one app is required"},
		{"app name required", func(c *Config) { c.Apps[0].Name = "" }, "apps[0].name: required"},
		{"app name with space", func(c *Config) { c.Apps[0].Name = "my app" }, `apps[0].name: "my app" must match [a-z0-9._-]+`},
		{"app name uppercase", func(c *Config) { c.Apps[0].Name = "MyApp" }, `apps[0].name: "MyApp" must match [a-z0-9._-]+`},
		{"app name slash", func(c *Config) { c.Apps[0].Name = "a/b" }, `apps[0].name: "a/b" must match [a-z0-9._-]+`},
		{"app name dots", func(c *Config) { c.Apps[0].Name = ".." }, `apps[0].name: ".." is not a usable name`},
		{"app name long", func(c *Config) { c.Apps[0].Name = strings.Repeat("a", 65) }, "apps[0].name: must be at most 64 characters"},
		{"app name chars", func(c *Config) { c.Apps[0].Name = "my-app_2.0" }, ""},
		{"duplicate app", func(c *Config) { c.Apps = append(c.Apps, c.Apps[0]) }, `apps[1].name: duplicate app name "myapp" (also apps[0])`},
		{"bundle_id", func(c *Config) { c.Apps[0].BundleID = "" }, "apps[0].bundle_id: required"},
		{"unknown environment", func(c *Config) { c.Apps[0].Environments = []string{"Production", "Prod"} },
			`apps[0].environments: unknown environment "Prod" (want Production, Sandbox, Xcode or LocalTesting)`},
		{"duplicate environment", func(c *Config) { c.Apps[0].Environments = []string{"Sandbox", "Sandbox"} }, `apps[0].environments: duplicate environment "Sandbox"`},
		{"all environments", func(c *Config) { c.Apps[0].Environments = []string{"Production", "Sandbox", "Xcode", "LocalTesting"} }, ""},
		{"app_apple_id for Production", func(c *Config) { c.Apps[0].AppAppleID = 0 }, "apps[0].app_apple_id: required when environments include Production"},
		{"app_apple_id for default environments", func(c *Config) { c.Apps[0].AppAppleID = 0; c.Apps[0].Environments = nil },
			"apps[0].app_apple_id: required when environments include Production"},
		{"app_apple_id not needed for Sandbox", func(c *Config) { c.Apps[0].AppAppleID = 0; c.Apps[0].Environments = []string{"Sandbox", "Xcode"} }, ""},
		{"app_apple_id negative", func(c *Config) { c.Apps[0].AppAppleID = -1 }, "apps[0].app_apple_id: -1 must not be negative"},
		{"api", func(c *Config) { api(c) }, ""},
		{"api key in memory", func(c *Config) { a := api(c); a.PrivateKeyFile = ""; a.PrivateKey = []byte(testPEM) }, ""},
		{"api issuer_id", func(c *Config) { api(c).IssuerID = "" }, "apps[0].api.issuer_id: required"},
		{"api key_id", func(c *Config) { api(c).KeyID = "" }, "apps[0].api.key_id: required"},
		{"api private_key_file", func(c *Config) { api(c).PrivateKeyFile = "" }, "apps[0].api.private_key_file: required"},
		{"api base_url", func(c *Config) { api(c).BaseURL = "api.example.com" }, "apps[0].api.base_url: must be an absolute http or https URL"},
		{"api base_url http", func(c *Config) { api(c).BaseURL = "http://127.0.0.1:1234" }, ""},
		{"backfill needs api", func(c *Config) { c.Apps[0].BackfillOnStart = true }, "apps[0].backfill_on_start: needs the app's api key (apps[0].api)"},
		{"backfill with api", func(c *Config) { api(c); c.Apps[0].BackfillOnStart = true }, ""},
		{"consumption needs api", func(c *Config) { c.Apps[0].Consumption.Enabled = true; c.Apps[0].Consumption.DryRun = false },
			"apps[0].consumption.enabled: sending answers needs the app's api key (apps[0].api); set dry_run: true"},
		{"consumption dry run without api", func(c *Config) { c.Apps[0].Consumption.Enabled = true }, ""},
		{"review_delay too long", func(c *Config) { c.Apps[0].Consumption.ReviewDelay = 12 * time.Hour },
			"apps[0].consumption.review_delay: 12h must be between 0s and 11h"},
		{"review_delay negative", func(c *Config) { c.Apps[0].Consumption.ReviewDelay = -time.Second },
			"apps[0].consumption.review_delay: -1s must be between 0s and 11h"},
		{"review_delay max", func(c *Config) { c.Apps[0].Consumption.ReviewDelay = 11 * time.Hour }, ""},
		{"delivery_status", func(c *Config) { c.Apps[0].Consumption.DeliveryStatus = "LOST" },
			`apps[0].consumption.delivery_status: unknown value "LOST" (want DELIVERED, UNDELIVERED_QUALITY_ISSUE, UNDELIVERED_WRONG_ITEM, UNDELIVERED_SERVER_OUTAGE or UNDELIVERED_OTHER)`},
		{"refund default", func(c *Config) { c.Apps[0].Consumption.RefundPreference.Default = "MAYBE" },
			`apps[0].consumption.refund_preference.default: unknown value "MAYBE" (want DECLINE, GRANT_FULL or GRANT_PRORATED)`},
		{"refund default empty", func(c *Config) { c.Apps[0].Consumption.RefundPreference.Default = "" }, ""},
		{"refund by_reason reason", func(c *Config) {
			c.Apps[0].Consumption.RefundPreference.ByReason = map[string]string{"BORED": "DECLINE"}
		},
			`apps[0].consumption.refund_preference.by_reason: unknown reason "BORED" (want UNINTENDED_PURCHASE, FULFILLMENT_ISSUE, UNSATISFIED_WITH_PURCHASE, LEGAL or OTHER)`},
		{"refund by_reason value", func(c *Config) { c.Apps[0].Consumption.RefundPreference.ByReason = map[string]string{"LEGAL": "YES"} },
			`apps[0].consumption.refund_preference.by_reason.LEGAL: unknown value "YES"`},
		{"refund by_reason ok", func(c *Config) {
			c.Apps[0].Consumption.RefundPreference.ByReason = map[string]string{"UNINTENDED_PURCHASE": "GRANT_FULL", "OTHER": "GRANT_PRORATED", "LEGAL": ""}
		}, ""},
		{"provider_url", func(c *Config) { c.Apps[0].Consumption.ProviderURL = "localhost:9000" }, "apps[0].consumption.provider_url: must be an absolute http or https URL"},

		{"target name", func(c *Config) { c.Targets[0].Name = "Back End" }, `targets[0].name: "Back End" must match [a-z0-9._-]+`},
		{"target name required", func(c *Config) { c.Targets[0].Name = "" }, "targets[0].name: required"},
		{"duplicate target", func(c *Config) { c.Targets = append(c.Targets, c.Targets[0]) }, `targets[1].name: duplicate target name "backend" (also targets[0])`},
		{"target url required", func(c *Config) { c.Targets[0].URL = "" }, "targets[0].url: required"},
		{"target url relative", func(c *Config) { c.Targets[0].URL = "/apple" }, "targets[0].url: must be an absolute http or https URL"},
		{"target url scheme", func(c *Config) { c.Targets[0].URL = "ftp://example.com/" }, "targets[0].url: must be an absolute http or https URL"},
		{"target url no host", func(c *Config) { c.Targets[0].URL = "http:///x" }, "targets[0].url: must be an absolute http or https URL"},
		{"target url bad", func(c *Config) { c.Targets[0].URL = "http://[::1" }, "targets[0].url: must be an absolute http or https URL"},
		{"target apps", func(c *Config) { c.Targets[0].Apps = []string{"myapp", "other"} }, `targets[0].apps: unknown app "other"`},
		{"target environments", func(c *Config) { c.Targets[0].Environments = []string{"Prod"} }, `targets[0].environments: unknown environment "Prod"`},
		{"target types", func(c *Config) { c.Targets[0].Types = []string{"REFUND", ""} }, "targets[0].types: empty notification type"},
		{"target payload", func(c *Config) { c.Targets[0].Payload = "json" }, `targets[0].payload: unknown payload "json" (want raw or decoded)`},
		{"target payload decoded", func(c *Config) { c.Targets[0].Payload = "decoded" }, ""},
		{"header name", func(c *Config) { c.Targets[0].Headers = map[string]string{"Bad Header": "x"} }, `targets[0].headers: invalid header name "Bad Header"`},
		{"header reserved", func(c *Config) { c.Targets[0].Headers = map[string]string{"webhook-signature": "x"} },
			`targets[0].headers: "webhook-signature" is set by asnrelay and cannot be configured`},
		{"header reserved prefix", func(c *Config) { c.Targets[0].Headers = map[string]string{"Asnrelay-App": "x"} }, `targets[0].headers: "Asnrelay-App" is set by asnrelay`},
		{"header twice", func(c *Config) { c.Targets[0].Headers = map[string]string{"X-Key": "a", "x-key": "b"} },
			`targets[0].headers: header "x-key" is set twice (names are case-insensitive)`},
		{"header value", func(c *Config) { c.Targets[0].Headers = map[string]string{"X-Token": "topsecret\r\nX-Evil: 1"} },
			"targets[0].headers.X-Token: value must not contain control characters"},
		{"headers ok", func(c *Config) {
			c.Targets[0].Headers = map[string]string{"Authorization": "Bearer x", "User-Agent": "me", "X-A": "tab\tok é"}
		}, ""},
		{"secret", func(c *Config) { c.Targets[0].Secret = "whsec_not base64!" }, "targets[0].secret: the part after whsec_ must be standard base64"},
		{"secret empty key", func(c *Config) { c.Targets[0].Secret = "whsec_" }, "targets[0].secret: the part after whsec_ must be standard base64"},
		{"secret ok", func(c *Config) { c.Targets[0].Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, ""},
		{"secret raw", func(c *Config) { c.Targets[0].Secret = "any string" }, ""},
		{"timeout", func(c *Config) { c.Targets[0].Timeout = 0 }, "targets[0].timeout: must be positive, got 0s"},
		{"concurrency 0", func(c *Config) { c.Targets[0].Concurrency = 0 }, "targets[0].concurrency: 0 must be between 1 and 256"},
		{"concurrency 257", func(c *Config) { c.Targets[0].Concurrency = 257 }, "targets[0].concurrency: 257 must be between 1 and 256"},
		{"concurrency 256", func(c *Config) { c.Targets[0].Concurrency = 256 }, ""},
		{"retry.initial", func(c *Config) { c.Targets[0].Retry.Initial = 0 }, "targets[0].retry.initial: must be positive, got 0s"},
		{"retry.max_interval", func(c *Config) { c.Targets[0].Retry.MaxInterval = time.Second },
			"targets[0].retry.max_interval: 1s must not be less than retry.initial (5s)"},
		{"retry.max_interval equal", func(c *Config) { c.Targets[0].Retry.MaxInterval = c.Targets[0].Retry.Initial }, ""},
		{"retry.max_age", func(c *Config) { c.Targets[0].Retry.MaxAge = -time.Hour }, "targets[0].retry.max_age: must be positive, got -1h"},
		{"retention.delivered", func(c *Config) { c.Retention.Delivered = 0 }, "retention.delivered: must be positive, got 0s"},
		{"retention.dead", func(c *Config) { c.Retention.Dead = 0 }, "retention.dead: must be positive, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantError(t, err, tt.want)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, secret := range []string{"topsecret", "not base64"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestValidateJoinsAll(t *testing.T) {
	c := valid()
	c.Log.Level = "loud"
	c.Targets[0].Concurrency = 0
	c.Targets[0].URL = "nope"
	err := c.Validate()
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`log.level: unknown level "loud" (want trace, debug, info, warn or error)`,
		"targets[0].url: must be an absolute http or https URL",
		"targets[0].concurrency: 0 must be between 1 and 256",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
	var e *Error
	if !errors.As(err, &e) || e.Key != "log.level" || e.File != "" || e.Line != 0 {
		t.Errorf("first error = %+v", e)
	}
}
