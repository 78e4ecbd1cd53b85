package apple_test

import (
	"testing"

	"github.com/asnrelay/asnrelay/apple"
)

func TestNotificationIdentity(t *testing.T) {
	data := &apple.Data{BundleID: "com.data", AppAppleID: 1, Environment: "Production"}
	summary := &apple.Summary{BundleID: "com.summary", AppAppleID: 2, Environment: "Sandbox"}
	token := &apple.ExternalPurchaseToken{BundleID: "com.token", AppAppleID: 3, ExternalPurchaseID: "b2f5a1c4"}
	sandboxToken := &apple.ExternalPurchaseToken{BundleID: "com.token", AppAppleID: 3, ExternalPurchaseID: "SANDBOX_b2f5a1c4"}
	appData := &apple.AppData{BundleID: "com.appdata", AppAppleID: 4, Environment: "Sandbox"}

	tests := []struct {
		name string
		n    apple.Notification
		want apple.Identity
	}{
		{"data first", apple.Notification{Data: data, Summary: summary, ExternalPurchaseToken: token, AppData: appData},
			apple.Identity{BundleID: "com.data", AppAppleID: 1, Environment: "Production"}},
		{"summary without data", apple.Notification{Summary: summary, ExternalPurchaseToken: token, AppData: appData},
			apple.Identity{BundleID: "com.summary", AppAppleID: 2, Environment: "Sandbox"}},
		{"external purchase token", apple.Notification{ExternalPurchaseToken: token, AppData: appData},
			apple.Identity{BundleID: "com.token", AppAppleID: 3, Environment: "Production"}},
		{"sandbox external purchase token", apple.Notification{ExternalPurchaseToken: sandboxToken},
			apple.Identity{BundleID: "com.token", AppAppleID: 3, Environment: "Sandbox"}},
		{"app data last", apple.Notification{AppData: appData},
			apple.Identity{BundleID: "com.appdata", AppAppleID: 4, Environment: "Sandbox"}},
		{"empty data still wins", apple.Notification{Data: &apple.Data{}, Summary: summary}, apple.Identity{}},
		{"nothing", apple.Notification{}, apple.Identity{}},
	}
	for _, tt := range tests {
		if got := tt.n.Identity(); got != tt.want {
			t.Errorf("%s: Identity() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCheckIdentity(t *testing.T) {
	both := apple.AppExpectation{BundleID: "com.y", AppAppleID: 42, Environments: []string{"Production", "Sandbox"}}
	sandboxOnly := apple.AppExpectation{BundleID: "com.y", Environments: []string{"Sandbox"}}
	noID := apple.AppExpectation{BundleID: "com.y", Environments: []string{"Production"}}

	tests := []struct {
		name    string
		id      apple.Identity
		want    apple.AppExpectation
		wantErr string // "" means accepted
	}{
		{"production match", apple.Identity{BundleID: "com.y", AppAppleID: 42, Environment: "Production"}, both, ""},
		{"sandbox without appAppleId", apple.Identity{BundleID: "com.y", Environment: "Sandbox"}, both, ""},
		{"sandbox appAppleId not checked", apple.Identity{BundleID: "com.y", AppAppleID: 7, Environment: "Sandbox"}, both, ""},
		{"sandbox app without app id", apple.Identity{BundleID: "com.y", Environment: "Sandbox"}, sandboxOnly, ""},
		{"wrong bundle", apple.Identity{BundleID: "com.x", AppAppleID: 42, Environment: "Production"}, both,
			`check identity: wrong_bundle: bundleId "com.x" does not match "com.y"`},
		{"bundle is case sensitive", apple.Identity{BundleID: "com.Y", AppAppleID: 42, Environment: "Production"}, both,
			`check identity: wrong_bundle: bundleId "com.Y" does not match "com.y"`},
		{"wrong app apple id", apple.Identity{BundleID: "com.y", AppAppleID: 41, Environment: "Production"}, both,
			`check identity: wrong_app_apple_id: appAppleId 41 does not match 42`},
		{"production without configured app id", apple.Identity{BundleID: "com.y", AppAppleID: 41, Environment: "Production"}, noID,
			`check identity: wrong_app_apple_id: appAppleId 41 cannot be checked: no app_apple_id is configured, which Production requires`},
		{"environment not listed", apple.Identity{BundleID: "com.y", AppAppleID: 42, Environment: "Production"}, sandboxOnly,
			`check identity: wrong_environment: environment "Production" is not one of ["Sandbox"]`},
		{"xcode not listed", apple.Identity{BundleID: "com.y", Environment: "Xcode"}, both,
			`check identity: wrong_environment: environment "Xcode" is not one of ["Production" "Sandbox"]`},
		{"empty environment", apple.Identity{BundleID: "com.y"}, both,
			`check identity: wrong_environment: environment "" is not one of ["Production" "Sandbox"]`},
		{"xcode listed", apple.Identity{BundleID: "com.y", Environment: "Xcode"},
			apple.AppExpectation{BundleID: "com.y", Environments: []string{"Xcode"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := apple.CheckIdentity(tt.id, tt.want)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckIdentity: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("CheckIdentity = %v, want %s", err, tt.wantErr)
			case err != nil && apple.IsRetryable(err):
				t.Fatalf("IsRetryable(%v) = true", err)
			}
		})
	}
}

func TestIsUnsignedEnvironment(t *testing.T) {
	for env, want := range map[string]bool{"Xcode": true, "LocalTesting": true, "Production": false, "Sandbox": false, "": false, "xcode": false} {
		if got := apple.IsUnsignedEnvironment(env); got != want {
			t.Errorf("IsUnsignedEnvironment(%q) = %v, want %v", env, got, want)
		}
	}
}
