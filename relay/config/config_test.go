package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid configuration.
const minimal = `apps:
  - name: myapp
    bundle_id: com.example.myapp
    app_apple_id: 1234567890
targets:
  - name: backend
    url: http://127.0.0.1:9000/apple
`

const testPEM = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"

// env and files are the fake environment and file system of parse.
type env map[string]string
type files map[string]string

// parse parses src as asnrelay.yaml in /etc/asnrelay with the given
// environment and files, which are keyed by their resolved path.
func parse(t *testing.T, src string, e env, f files) (*Config, error) {
	t.Helper()
	cfg, err := Parse(strings.NewReader(src), Options{
		Name: "asnrelay.yaml",
		Dir:  "/etc/asnrelay",
		LookupEnv: func(name string) (string, bool) {
			v, ok := e[name]
			return v, ok
		},
		ReadFile: func(name string) ([]byte, error) {
			if data, ok := f[name]; ok {
				return []byte(data), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
	})
	if err != nil {
		if cfg != nil {
			t.Errorf("Parse returned a config along with error %v", err)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("error %q does not match ErrInvalid", err)
		}
	}
	return cfg, err
}

func mustParse(t *testing.T, src string, e env, f files) *Config {
	t.Helper()
	cfg, err := parse(t, src, e, f)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// wantError fails unless err's message contains every one of want.
func wantError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Listen != ":8080" || c.DataDir != "./data" || c.MaxBodyBytes != 1048576 {
		t.Errorf("listen, data_dir, max_body_bytes = %q, %q, %d", c.Listen, c.DataDir, c.MaxBodyBytes)
	}
	if c.Log != (Log{Level: "info", Format: "json"}) {
		t.Errorf("log = %+v", c.Log)
	}
	if c.Admin != (Admin{Listen: "127.0.0.1:8081"}) {
		t.Errorf("admin = %+v", c.Admin)
	}
	if c.Retention != (Retention{Delivered: 30 * 24 * time.Hour, Dead: 90 * 24 * time.Hour}) {
		t.Errorf("retention = %+v", c.Retention)
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	cfg := mustParse(t, minimal, nil, nil)
	want := Default()
	want.DataDir = "/etc/asnrelay/data"
	want.Apps = []App{{
		Name:         "myapp",
		BundleID:     "com.example.myapp",
		AppAppleID:   1234567890,
		Environments: []string{"Production", "Sandbox"},
		Consumption: Consumption{
			DryRun:            true,
			CustomerConsented: true,
			DeliveryStatus:    "DELIVERED",
			RefundPreference:  RefundPreference{Default: "DECLINE"},
		},
	}}
	want.Targets = []Target{{
		Name:         "backend",
		URL:          "http://127.0.0.1:9000/apple",
		Payload:      "raw",
		VerifiedOnly: true,
		Timeout:      10 * time.Second,
		Concurrency:  4,
		Retry:        Retry{Initial: 5 * time.Second, MaxInterval: time.Hour, MaxAge: 7 * 24 * time.Hour},
	}}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *cfg, want)
	}
}

func TestParseExplicitFalseAndZero(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*Config) bool
	}{
		{"verified_only absent", minimal, func(c *Config) bool { return c.Targets[0].VerifiedOnly }},
		{"verified_only null", minimal + "    verified_only:\n", func(c *Config) bool { return c.Targets[0].VerifiedOnly }},
		{"verified_only true", minimal + "    verified_only: true\n", func(c *Config) bool { return c.Targets[0].VerifiedOnly }},
		{"verified_only false", minimal + "    verified_only: false\n", func(c *Config) bool { return !c.Targets[0].VerifiedOnly }},
		{"verified_only per element", minimal + "    verified_only: false\n  - name: second\n    url: https://example.com/\n",
			func(c *Config) bool { return !c.Targets[0].VerifiedOnly && c.Targets[1].VerifiedOnly }},
		{"dry_run false", strings.Replace(minimal, "app_apple_id: 1234567890\n", "app_apple_id: 1234567890\n    consumption: {dry_run: false, customer_consented: false}\n", 1),
			func(c *Config) bool { return !c.Apps[0].Consumption.DryRun && !c.Apps[0].Consumption.CustomerConsented }},
		{"refund default empty", strings.Replace(minimal, "app_apple_id: 1234567890\n", "app_apple_id: 1234567890\n    consumption: {refund_preference: {default: \"\"}}\n", 1),
			func(c *Config) bool { return c.Apps[0].Consumption.RefundPreference.Default == "" }},
		{"empty environments take the default", strings.Replace(minimal, "app_apple_id: 1234567890\n", "app_apple_id: 1234567890\n    environments: []\n", 1),
			func(c *Config) bool {
				return reflect.DeepEqual(c.Apps[0].Environments, []string{"Production", "Sandbox"})
			}},
		{"nested default kept", "log: {format: console}\n" + minimal,
			func(c *Config) bool { return c.Log == Log{Level: "info", Format: "console"} }},
		{"partial retry keeps the rest", minimal + "    retry: {initial: 1s}\n",
			func(c *Config) bool { return c.Targets[0].Retry == Retry{time.Second, time.Hour, 7 * 24 * time.Hour} }},
		{"empty document", "# nothing\n" + minimal, func(c *Config) bool { return c.Listen == ":8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if cfg := mustParse(t, tt.src, nil, nil); !tt.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

func TestParseDurationsAndPrefixes(t *testing.T) {
	src := "trusted_proxies: [127.0.0.1, \"10.1.2.3/8\", \"::1\"]\nallow_sources: [17.0.0.0/8]\n" +
		"retention: {delivered: 1d12h, dead: 0.5d}\n" + minimal + "    timeout: 1m30s\n    retry: {max_age: 14d}\n"
	cfg := mustParse(t, src, nil, nil)
	wantPrefixes := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if !reflect.DeepEqual(cfg.TrustedProxies, wantPrefixes) {
		t.Errorf("trusted_proxies = %v, want %v", cfg.TrustedProxies, wantPrefixes)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("17.0.0.0/8")}; !reflect.DeepEqual(cfg.AllowSources, want) {
		t.Errorf("allow_sources = %v, want %v", cfg.AllowSources, want)
	}
	if cfg.Retention.Delivered != 36*time.Hour || cfg.Retention.Dead != 12*time.Hour {
		t.Errorf("retention = %+v", cfg.Retention)
	}
	if tg := cfg.Targets[0]; tg.Timeout != 90*time.Second || tg.Retry.MaxAge != 14*24*time.Hour || tg.Retry.Initial != 5*time.Second {
		t.Errorf("target = %+v", tg)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown key in target", minimal + "    foo: bar\n",
			[]string{`asnrelay.yaml:8: unknown key "foo" in targets[0]`}},
		{"unknown key with suggestion", minimal + "    verfied_only: false\n",
			[]string{`asnrelay.yaml:8: unknown key "verfied_only" in targets[0] (did you mean "verified_only"?)`}},
		{"unknown top-level key", "lisen: :80\n" + minimal,
			[]string{`asnrelay.yaml:1: unknown key "lisen" (did you mean "listen"?)`}},
		{"unknown nested key", "log:\n  level: info\n  colour: true\n" + minimal,
			[]string{`asnrelay.yaml:3: unknown key "colour" in log`}},
		{"unknown key in api", strings.Replace(minimal, "app_apple_id: 1234567890\n", "app_apple_id: 1234567890\n    api:\n      key: x\n", 1),
			[]string{`asnrelay.yaml:6: unknown key "key" in apps[0].api`}},
		{"several unknown keys", "a: 1\nb: 2\n" + minimal,
			[]string{`asnrelay.yaml:1: unknown key "a"`, `asnrelay.yaml:2: unknown key "b"`}},
		{"duplicate key", minimal + "    url: http://other/\n",
			[]string{`asnrelay.yaml:8: duplicate key "url" in targets[0] (first at line 7)`}},
		{"bad duration", minimal + "    retry:\n      initial: 5x\n",
			[]string{`asnrelay.yaml:9: targets[0].retry.initial: invalid duration "5x"`}},
		{"duration without unit", "retention: {dead: 30}\n" + minimal,
			[]string{`asnrelay.yaml:1: retention.dead: invalid duration "30"`}},
		{"bad prefix", "trusted_proxies:\n  - 10.0.0.0/33\n" + minimal,
			[]string{`asnrelay.yaml:2: trusted_proxies[0]: invalid CIDR prefix "10.0.0.0/33"`}},
		{"prefix with zone", "allow_sources: [\"fe80::1%eth0\"]\n" + minimal,
			[]string{`asnrelay.yaml:1: allow_sources[0]: invalid CIDR prefix "fe80::1%eth0"`}},
		{"null prefix", "allow_sources: [~]\n" + minimal,
			[]string{`asnrelay.yaml:1: allow_sources[0]: expected an IP address or CIDR prefix, got null`}},
		{"bad integer", "max_body_bytes: 1MiB\n" + minimal,
			[]string{`asnrelay.yaml:1: max_body_bytes: expected an integer, got "1MiB"`}},
		{"integer out of range", minimal + "    concurrency: 99999999999999999999\n",
			[]string{`asnrelay.yaml:8: targets[0].concurrency: expected an integer, got "99999999999999999999"`}},
		{"bad boolean", minimal + "    verified_only: yes\n",
			[]string{`asnrelay.yaml:8: targets[0].verified_only: expected true or false, got "yes"`}},
		{"list for string", "listen: [a]\n" + minimal,
			[]string{`asnrelay.yaml:1: listen: expected a string, got a list`}},
		{"string for list", strings.Replace(minimal, "app_apple_id: 1234567890\n", "app_apple_id: 1234567890\n    environments: Production\n", 1),
			[]string{`asnrelay.yaml:5: apps[0].environments: expected a list, got a string`}},
		{"scalar for mapping", "log: info\n" + minimal,
			[]string{`asnrelay.yaml:1: log: expected a mapping, got a string`}},
		{"number for mapping", "retention: 5\n" + minimal,
			[]string{`asnrelay.yaml:1: retention: expected a mapping, got the number 5`}},
		{"top level not a mapping", "- a\n- b\n",
			[]string{`asnrelay.yaml:1: expected a mapping, got a list`}},
		{"non-string key", "? [a]\n: b\n" + minimal,
			[]string{`asnrelay.yaml:1: keys must be strings, got a list`}},
		{"syntax error", "listen: :8080\n  data_dir: x\n",
			[]string{`asnrelay.yaml:2: mapping values are not allowed in this context`}},
		{"tab indentation", "log:\n\tlevel: info\n",
			[]string{`asnrelay.yaml:2: found character that cannot start any token`}},
		{"two documents", minimal + "---\nlisten: :1\n",
			[]string{`asnrelay.yaml:8: only one YAML document is allowed`}},
		{"unknown anchor", "listen: *nope\n",
			[]string{`asnrelay.yaml`, `unknown anchor 'nope' referenced`}},
		{"merge of a scalar", "log:\n  <<: 5\n" + minimal,
			[]string{`asnrelay.yaml:2: log: merge (<<) needs a mapping or a list of mappings`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, nil, nil)
			wantError(t, err, tt.want...)
		})
	}
}

func TestParseErrorIsStructured(t *testing.T) {
	_, err := parse(t, minimal+"    retry:\n      initial: 5x\n", nil, nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	want := Error{File: "asnrelay.yaml", Line: 9, Key: "targets[0].retry.initial", Msg: e.Msg}
	if *e != want || !strings.HasPrefix(e.Msg, `invalid duration "5x"`) {
		t.Errorf("got %+v, want %+v", *e, want)
	}
}

func TestParseMergeKeys(t *testing.T) {
	src := `x-target: &defaults
  timeout: 3s
  verified_only: false
  retry: {initial: 1s}
`
	// x-target is not a key asnrelay knows: anchors must live inside known keys.
	_, err := parse(t, src+minimal, nil, nil)
	wantError(t, err, `asnrelay.yaml:1: unknown key "x-target"`)

	src = minimal + `    headers: &h {X-One: "1"}
    retry: &retry {initial: 2s, max_interval: 2m}
  - name: second
    url: https://example.com/
    headers: *h
    <<: [{timeout: 7s, concurrency: 9}, {timeout: 8s, payload: decoded}]
    concurrency: 2
    retry:
      <<: *retry
      max_interval: 3m
`
	cfg := mustParse(t, src, nil, nil)
	second := cfg.Targets[1]
	if second.Timeout != 7*time.Second || second.Concurrency != 2 || second.Payload != "decoded" {
		t.Errorf("merged target = %+v", second)
	}
	if second.Retry != (Retry{Initial: 2 * time.Second, MaxInterval: 3 * time.Minute, MaxAge: DefaultRetryMaxAge}) {
		t.Errorf("merged retry = %+v", second.Retry)
	}
	if second.Headers["X-One"] != "1" {
		t.Errorf("aliased headers = %v", second.Headers)
	}

	_, err = parse(t, "log: &l\n  <<: *l\n"+minimal, nil, nil)
	wantError(t, err, "merge (<<) refers to itself")
}

func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("apps:\n  - &a0\n    name: x\n")
	for i := 1; i < 10; i++ {
		b.WriteString("  - &a" + string(rune('0'+i)) + "\n    <<: [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := parse(t, b.String(), nil, nil)
	wantError(t, err, "document too complex")
}

func TestParseTooLarge(t *testing.T) {
	src := minimal + "# " + strings.Repeat("x", MaxFileSize) + "\n"
	_, err := parse(t, src, nil, nil)
	wantError(t, err, "asnrelay.yaml: larger than 4 MiB")
}

func TestParseEnv(t *testing.T) {
	src := `# ${NOT_EXPANDED_IN_COMMENTS}
admin:
  listen: "${ADMIN_HOST}:8081"
  token: ${TOKEN}
` + minimal + `    concurrency: ${CONCURRENCY}
    headers:
      Authorization: "Bearer ${BACKEND_TOKEN}"
      X-Literal: "$$HOME costs $5"
`
	e := env{"ADMIN_HOST": "0.0.0.0", "TOKEN": "a: b # not a comment", "CONCURRENCY": "16", "BACKEND_TOKEN": "s3cret"}
	cfg := mustParse(t, src, e, nil)
	if cfg.Admin.Listen != "0.0.0.0:8081" || cfg.Admin.Token != "a: b # not a comment" {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	if cfg.Targets[0].Concurrency != 16 {
		t.Errorf("concurrency = %d", cfg.Targets[0].Concurrency)
	}
	if got := cfg.Targets[0].Headers; got["Authorization"] != "Bearer s3cret" || got["X-Literal"] != "$HOME costs $5" {
		t.Errorf("headers = %q", got)
	}

	tests := []struct{ name, value, want string }{
		{"undefined", "${NOPE}", `asnrelay.yaml:2: admin.token: environment variable NOPE is not set`},
		{"unterminated", "x${TOKEN", `asnrelay.yaml:2: admin.token: unterminated ${`},
		{"bad name", "${1X}", `asnrelay.yaml:2: admin.token: invalid environment variable name "1X"`},
		{"empty name", "${}", `invalid environment variable name ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, "admin:\n  token: "+tt.value+"\n"+minimal, e, nil)
			wantError(t, err, tt.want)
		})
	}
}

func TestParseFiles(t *testing.T) {
	src := `admin:
  listen: "0.0.0.0:8081"
  token_file: secrets/admin
apple:
  root_certs: [./root.pem, /abs/root.der]
apps:
  - name: myapp
    bundle_id: com.example.myapp
    app_apple_id: 1
    api:
      issuer_id: issuer
      key_id: ABC123DEFG
      private_key_file: ./Key.p8
targets:
  - name: backend
    url: https://backend.example.com/
    secret_file: /run/secrets/whsec
`
	f := files{
		"/etc/asnrelay/secrets/admin": "admintoken\n",
		"/etc/asnrelay/Key.p8":        testPEM,
		"/run/secrets/whsec":          "  whsec_c2VjcmV0\n",
	}
	cfg := mustParse(t, src, nil, f)
	if cfg.Admin.Token != "admintoken" || cfg.Admin.TokenFile != "/etc/asnrelay/secrets/admin" {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	if cfg.Targets[0].Secret != "whsec_c2VjcmV0" {
		t.Errorf("secret = %q", cfg.Targets[0].Secret)
	}
	if api := cfg.Apps[0].API; string(api.PrivateKey) != testPEM || api.PrivateKeyFile != "/etc/asnrelay/Key.p8" {
		t.Errorf("api = %+v", api)
	}
	if want := []string{"/etc/asnrelay/root.pem", "/abs/root.der"}; !reflect.DeepEqual(cfg.Apple.RootCerts, want) {
		t.Errorf("root_certs = %q, want %q", cfg.Apple.RootCerts, want)
	}

	tests := []struct {
		name, old, new string
		want           string
	}{
		{"missing key file", "./Key.p8", "./Missing.p8",
			`asnrelay.yaml:13: apps[0].api.private_key_file: open /etc/asnrelay/Missing.p8: file does not exist`},
		{"key file not PEM", "./Key.p8", "secrets/admin",
			`asnrelay.yaml:13: apps[0].api.private_key_file: /etc/asnrelay/secrets/admin is not a PEM file`},
		{"missing token file", "secrets/admin", "nope",
			`asnrelay.yaml:3: admin.token_file: open /etc/asnrelay/nope: file does not exist`},
		{"token and token_file", "  token_file", "  token: x\n  token_file",
			`asnrelay.yaml:4: admin.token_file: cannot be combined with admin.token`},
		{"secret and secret_file", "    secret_file", "    secret: whsec_eA==\n    secret_file",
			`asnrelay.yaml:18: targets[0].secret_file: cannot be combined with targets[0].secret`},
		{"empty secret file", "/run/secrets/whsec", "/run/secrets/empty",
			`asnrelay.yaml:17: targets[0].secret_file: /run/secrets/empty is empty`},
	}
	f["/run/secrets/empty"] = " \n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, strings.Replace(src, tt.old, tt.new, 1), nil, f)
			wantError(t, err, tt.want)
			for _, secret := range []string{"admintoken", "c2VjcmV0", "AAAA"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Key.p8"), []byte(testPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(minimal, "app_apple_id: 1234567890\n",
		"app_apple_id: 1234567890\n    api: {issuer_id: i, key_id: k, private_key_file: ./Key.p8}\n", 1)
	path := filepath.Join(dir, "asnrelay.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if string(cfg.Apps[0].API.PrivateKey) != testPEM {
		t.Errorf("private key = %q", cfg.Apps[0].API.PrivateKey)
	}
	if want := filepath.Join(dir, "data"); cfg.DataDir != want {
		t.Errorf("data_dir = %q, want %q", cfg.DataDir, want)
	}

	if err := os.Remove(filepath.Join(dir, "Key.p8")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	wantError(t, err, path+":5: apps[0].api.private_key_file: open "+filepath.Join(dir, "Key.p8")+": no such file or directory")
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v should match ErrInvalid and fs.ErrNotExist", err)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	wantError(t, err, "open "+filepath.Join(dir, "missing.yaml")+": no such file or directory")
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v should match ErrInvalid and fs.ErrNotExist", err)
	}
}

func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(strings.NewReader(string(data)), Options{
		Name:      "config.example.yaml",
		LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile: func(name string) ([]byte, error) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
	})
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	app, ok := cfg.App("myapp")
	if !ok || app.BundleID != "com.example.myapp" || app.AppAppleID != 1234567890 || app.API != nil {
		t.Errorf("app = %+v", app)
	}
	if len(cfg.Targets) != 1 || cfg.Targets[0].Name != "backend" || !cfg.Targets[0].VerifiedOnly ||
		cfg.Targets[0].URL != "http://127.0.0.1:9000/apple/notifications" {
		t.Errorf("targets = %+v", cfg.Targets)
	}
	if cfg.Admin.Token != "" || !IsLoopback(cfg.Admin.Listen) {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	if c := app.Consumption; c.Enabled || !c.DryRun {
		t.Errorf("consumption = %+v", c)
	}
}

func TestParseValidationHasLines(t *testing.T) {
	src := `admin:
  listen: "0.0.0.0:8081"
apps:
  - name: myapp
    bundle_id: com.example.myapp
targets:
  - name: backend
    url: ftp://example.com/
`
	_, err := parse(t, src, nil, nil)
	wantError(t, err,
		`asnrelay.yaml:2: admin.token: required when admin.listen "0.0.0.0:8081" is not loopback`,
		`asnrelay.yaml:4: apps[0].app_apple_id: required when environments include Production`,
		`asnrelay.yaml:8: targets[0].url: must be an absolute http or https URL`,
	)
	if n := len(strings.Split(err.Error(), "\n")); n != 3 {
		t.Errorf("got %d errors, want 3:\n%v", n, err)
	}
	_, err = parse(t, "", nil, nil)
	wantError(t, err, "asnrelay.yaml: apps: at least one app is required")
}

func TestIsLoopback(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:8081": true, "127.1.2.3:1": true, "[::1]:8081": true, "localhost:8081": true,
		"LOCALHOST:1": true, "[::ffff:127.0.0.1]:1": true,
		":8081": false, "0.0.0.0:8081": false, "[::]:8081": false, "10.0.0.1:8081": false,
		"example.com:8081": false, "127.0.0.1": false, "": false,
	}
	for in, want := range tests {
		if got := IsLoopback(in); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestAppHelpers(t *testing.T) {
	cfg := mustParse(t, minimal, nil, nil)
	app, ok := cfg.App("myapp")
	if !ok || app != &cfg.Apps[0] {
		t.Fatalf("App(myapp) = %p, %v", app, ok)
	}
	if _, ok := cfg.App("other"); ok {
		t.Error("App(other) found")
	}
	if !app.Allows("Production") || !app.Allows("Sandbox") || app.Allows("Xcode") || app.Allows("production") {
		t.Errorf("Allows with %v", app.Environments)
	}
	empty := App{}
	if !empty.Allows("Sandbox") || empty.Allows("LocalTesting") {
		t.Error("an app without environments should allow the defaults")
	}
}
