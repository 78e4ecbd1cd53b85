package apple

import (
	"fmt"
	"slices"
	"strings"
)

// Identity is whom a notification is for: the app and the environment.
type Identity struct {
	BundleID    string
	AppAppleID  int64
	Environment string
}

// Identity returns whom the notification is for, read from the first of data, summary,
// externalPurchaseToken and appData that is present, as Apple's libraries do. An external
// purchase token carries no environment: it is Sandbox when its externalPurchaseId starts
// with "SANDBOX", else Production. A notification with none of them has an empty Identity.
func (n *Notification) Identity() Identity {
	switch {
	case n.Data != nil:
		return Identity{BundleID: n.Data.BundleID, AppAppleID: n.Data.AppAppleID, Environment: string(n.Data.Environment)}
	case n.Summary != nil:
		return Identity{BundleID: n.Summary.BundleID, AppAppleID: n.Summary.AppAppleID, Environment: string(n.Summary.Environment)}
	case n.ExternalPurchaseToken != nil:
		t := n.ExternalPurchaseToken
		env := EnvironmentProduction
		if strings.HasPrefix(t.ExternalPurchaseID, "SANDBOX") {
			env = EnvironmentSandbox
		}
		return Identity{BundleID: t.BundleID, AppAppleID: t.AppAppleID, Environment: string(env)}
	case n.AppData != nil:
		return Identity{BundleID: n.AppData.BundleID, AppAppleID: n.AppData.AppAppleID, Environment: string(n.AppData.Environment)}
	}
	return Identity{}
}

// AppExpectation is what an app's configuration says its notifications look like.
type AppExpectation struct {
	BundleID     string
	AppAppleID   int64    // required to accept Production; not checked in other environments
	Environments []string // accepted environments, e.g. Production, Sandbox
}

// CheckIdentity checks that a notification is for the expected app, in this order:
//
//   - the bundle id must match (Reason wrong_bundle);
//   - the environment must be one of want.Environments (wrong_environment);
//   - in Production only, the appAppleId must match want.AppAppleID, and an expectation
//     without an AppAppleID accepts no Production notification (wrong_app_apple_id). Apple
//     leaves appAppleId out of Sandbox data, so it is not checked there.
//
// It returns nil or a *VerificationError with a message that says exactly what differs.
func CheckIdentity(id Identity, want AppExpectation) error {
	if id.BundleID != want.BundleID {
		return verificationErr(ReasonWrongBundle, fmt.Errorf("bundleId %q does not match %q", id.BundleID, want.BundleID))
	}
	if !slices.Contains(want.Environments, id.Environment) {
		return verificationErr(ReasonWrongEnvironment, fmt.Errorf("environment %q is not one of %q", id.Environment, want.Environments))
	}
	if id.Environment == string(EnvironmentProduction) {
		if want.AppAppleID == 0 {
			return verificationErr(ReasonWrongAppAppleID, fmt.Errorf("appAppleId %d cannot be checked: no app_apple_id is configured, which Production requires", id.AppAppleID))
		}
		if id.AppAppleID != want.AppAppleID {
			return verificationErr(ReasonWrongAppAppleID, fmt.Errorf("appAppleId %d does not match %d", id.AppAppleID, want.AppAppleID))
		}
	}
	return nil
}

// IsUnsignedEnvironment reports whether data from env is signed by Xcode or StoreKit Testing
// rather than by Apple (Xcode, LocalTesting). Such data never verifies against Apple's root; a
// relay accepts it, unverified and decoded with DecodeNotification, only for apps that list
// the environment explicitly. This package does not make that decision.
func IsUnsignedEnvironment(env string) bool {
	return env == string(EnvironmentXcode) || env == string(EnvironmentLocalTesting)
}
