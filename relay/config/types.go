package config

import (
	"net/netip"
	"time"
)

// Config is the whole asnrelay.yaml, after defaults, ${VAR} expansion and
// *_file secrets have been applied.
type Config struct {
	Listen         string         `yaml:"listen"`
	DataDir        string         `yaml:"data_dir"`
	MaxBodyBytes   int64          `yaml:"max_body_bytes"`
	Log            Log            `yaml:"log"`
	Admin          Admin          `yaml:"admin"`
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	AllowSources   []netip.Prefix `yaml:"allow_sources"`
	Apple          Apple          `yaml:"apple"`
	Apps           []App          `yaml:"apps"`
	Targets        []Target       `yaml:"targets"`
	Retention      Retention      `yaml:"retention"`
}

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level"`  // trace | debug | info | warn | error
	Format string `yaml:"format"` // json | console
}

// Admin is the admin listener.
type Admin struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"token"` // also token_file
	// TokenFile names a file whose content (surrounding whitespace trimmed)
	// Parse stores in Token. Relative paths are resolved by Parse.
	TokenFile string `yaml:"token_file"`
}

// Apple holds settings shared by every app.
type Apple struct {
	RootCerts []string `yaml:"root_certs"` // extra trusted roots, PEM or DER file paths
}

// App is one app whose notifications arrive on /asn/{Name}.
type App struct {
	Name            string      `yaml:"name"`
	BundleID        string      `yaml:"bundle_id"`
	AppAppleID      int64       `yaml:"app_apple_id"`
	Environments    []string    `yaml:"environments"` // Production, Sandbox, Xcode, LocalTesting
	API             *API        `yaml:"api"`          // nil: no App Store Server API work
	BackfillOnStart bool        `yaml:"backfill_on_start"`
	Consumption     Consumption `yaml:"consumption"`
}

// API is an In-App Purchase key for the App Store Server API.
type API struct {
	IssuerID       string `yaml:"issuer_id"`
	KeyID          string `yaml:"key_id"`
	PrivateKeyFile string `yaml:"private_key_file"`
	PrivateKey     []byte `yaml:"-"` // PEM bytes, read from PrivateKeyFile by Parse
	BaseURL        string `yaml:"base_url"`
}

// Consumption is the policy that answers CONSUMPTION_REQUEST.
type Consumption struct {
	Enabled               bool             `yaml:"enabled"`
	DryRun                bool             `yaml:"dry_run"`
	ReviewDelay           time.Duration    `yaml:"review_delay"`
	CustomerConsented     bool             `yaml:"customer_consented"`
	DeliveryStatus        string           `yaml:"delivery_status"`
	SampleContentProvided bool             `yaml:"sample_content_provided"`
	RefundPreference      RefundPreference `yaml:"refund_preference"`
	ProviderURL           string           `yaml:"provider_url"`
}

// RefundPreference picks refundPreference by consumptionRequestReason.
type RefundPreference struct {
	Default  string            `yaml:"default"`
	ByReason map[string]string `yaml:"by_reason"`
}

// Target is one backend that receives notifications.
type Target struct {
	Name         string            `yaml:"name"`
	URL          string            `yaml:"url"`
	Apps         []string          `yaml:"apps"`
	Environments []string          `yaml:"environments"`
	Types        []string          `yaml:"types"`
	Payload      string            `yaml:"payload"` // raw | decoded
	VerifiedOnly bool              `yaml:"verified_only"`
	Headers      map[string]string `yaml:"headers"`
	Secret       string            `yaml:"secret"` // also secret_file
	// SecretFile names a file whose content (surrounding whitespace trimmed)
	// Parse stores in Secret. Relative paths are resolved by Parse.
	SecretFile  string        `yaml:"secret_file"`
	Timeout     time.Duration `yaml:"timeout"`
	Concurrency int           `yaml:"concurrency"`
	Retry       Retry         `yaml:"retry"`
}

// Retry is a target's retry schedule.
type Retry struct {
	Initial     time.Duration `yaml:"initial"`
	MaxInterval time.Duration `yaml:"max_interval"`
	MaxAge      time.Duration `yaml:"max_age"`
}

// Retention says how long finished records are kept.
type Retention struct {
	Delivered time.Duration `yaml:"delivered"`
	Dead      time.Duration `yaml:"dead"`
}
