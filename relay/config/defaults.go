package config

import "time"

// Defaults of the top-level keys.
const (
	DefaultListen       = ":8080"
	DefaultDataDir      = "./data"
	DefaultMaxBodyBytes = 1 << 20 // 1 MiB
	DefaultLogLevel     = "info"
	DefaultLogFormat    = "json"
	DefaultAdminListen  = "127.0.0.1:8081"

	DefaultRetentionDelivered = 30 * 24 * time.Hour
	DefaultRetentionDead      = 90 * 24 * time.Hour
)

// Defaults of every element of targets.
const (
	DefaultPayload          = PayloadRaw
	DefaultVerifiedOnly     = true
	DefaultTimeout          = 10 * time.Second
	DefaultConcurrency      = 4
	DefaultRetryInitial     = 5 * time.Second
	DefaultRetryMaxInterval = time.Hour
	DefaultRetryMaxAge      = 7 * 24 * time.Hour
)

// Defaults of every element of apps. An app whose environments list is empty
// accepts DefaultEnvironments.
const (
	DefaultConsumptionDryRun            = true
	DefaultConsumptionCustomerConsented = true
	DefaultDeliveryStatus               = "DELIVERED"
	DefaultRefundPreference             = "DECLINE"
)

// Limits enforced by Validate.
const (
	MinMaxBodyBytes = 1 << 10  // 1 KiB
	MaxMaxBodyBytes = 64 << 20 // 64 MiB
	MaxConcurrency  = 256
	// MaxReviewDelay keeps a consumption answer well inside Apple's 12 h
	// deadline.
	MaxReviewDelay = 11 * time.Hour
	// MaxNameLength bounds app and target names, which appear in URLs,
	// metric labels and log fields.
	MaxNameLength = 64
)

// Environments an app can receive notifications from.
const (
	EnvironmentProduction   = "Production"
	EnvironmentSandbox      = "Sandbox"
	EnvironmentXcode        = "Xcode"
	EnvironmentLocalTesting = "LocalTesting"
)

// Values of a target's payload.
const (
	PayloadRaw     = "raw"     // the exact body Apple sent
	PayloadDecoded = "decoded" // the decoded notification, transaction and renewal info
)

// DefaultEnvironments returns the environments of an app that lists none.
func DefaultEnvironments() []string {
	return []string{EnvironmentProduction, EnvironmentSandbox}
}

// Default returns the configuration of an empty file: no apps, no targets.
func Default() Config {
	return Config{
		Listen:       DefaultListen,
		DataDir:      DefaultDataDir,
		MaxBodyBytes: DefaultMaxBodyBytes,
		Log:          Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Admin:        Admin{Listen: DefaultAdminListen},
		Retention: Retention{
			Delivered: DefaultRetentionDelivered,
			Dead:      DefaultRetentionDead,
		},
	}
}

// DefaultApp returns the values an element of apps starts from.
func DefaultApp() App {
	return App{
		Environments: DefaultEnvironments(),
		Consumption: Consumption{
			DryRun:            DefaultConsumptionDryRun,
			CustomerConsented: DefaultConsumptionCustomerConsented,
			DeliveryStatus:    DefaultDeliveryStatus,
			RefundPreference:  RefundPreference{Default: DefaultRefundPreference},
		},
	}
}

// DefaultTarget returns the values an element of targets starts from.
func DefaultTarget() Target {
	return Target{
		Payload:      DefaultPayload,
		VerifiedOnly: DefaultVerifiedOnly,
		Timeout:      DefaultTimeout,
		Concurrency:  DefaultConcurrency,
		Retry: Retry{
			Initial:     DefaultRetryInitial,
			MaxInterval: DefaultRetryMaxInterval,
			MaxAge:      DefaultRetryMaxAge,
		},
	}
}
