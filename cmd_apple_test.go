package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
)

// appleEnv is a fake App Store Server API and a config file whose app
// "myapp" holds its In-App Purchase key.
type appleEnv struct {
	ca     *appletest.CA
	fake   *appletest.FakeAPI
	dir    string
	api    string // URL of the fake App Store Server API
	keyPEM string // path of the .p8
	config string // path of asnrelay.yaml
}

func newAppleEnv(t *testing.T) *appleEnv {
	t.Helper()
	now := time.Now()
	ca, err := appletest.New(now.Add(-7*24*time.Hour), now.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fake, err := appletest.NewFakeAPI(ca)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	e := &appleEnv{ca: ca, fake: fake, dir: t.TempDir(), api: srv.URL}
	e.keyPEM = filepath.Join(e.dir, "SubscriptionKey_"+fake.KeyID+".p8")
	write(t, e.keyPEM, fake.KeyPEM())
	root := filepath.Join(e.dir, "root.pem")
	write(t, root, ca.RootPEM())
	e.config = e.writeConfig(t, "asnrelay.yaml", fake.KeyID, e.keyPEM, srv.URL, "")
	return e
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeConfig writes a config for myapp with the given key and base URL,
// and a target when targetURL is set.
func (e *appleEnv) writeConfig(t *testing.T, name, keyID, keyFile, baseURL, targetURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %q
admin: {listen: "127.0.0.1:0"}
apple: {root_certs: [%q]}
apps:
  - name: myapp
    bundle_id: %s
    app_apple_id: %d
    environments: [Production, Sandbox]
    api:
      issuer_id: %q
      key_id: %s
      private_key_file: %q
      base_url: %q
`, filepath.Join(e.dir, "data"), filepath.Join(e.dir, "root.pem"), e.fake.BundleID, e.fake.AppAppleID,
		e.fake.IssuerID, keyID, keyFile, baseURL)
	if targetURL != "" {
		cfg += fmt.Sprintf("targets:\n  - name: backend\n    url: %q\n", targetURL)
	}
	path := filepath.Join(e.dir, name)
	write(t, path, []byte(cfg))
	return path
}

func TestCheckCommand(t *testing.T) {
	e := newAppleEnv(t)

	code, out, errOut := runCLI(t, "check", "--config", e.config, "--online")
	if code != 0 || !strings.Contains(out, "myapp  Production  Active\n") || !strings.Contains(out, "myapp  Sandbox     Active\n") {
		t.Errorf("good key: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "check", "--config", e.config)
	if code != 0 || !strings.Contains(out, "Active") || !strings.Contains(out, "--online asks Apple") || len(e.fake.Requests()) != 2 {
		t.Errorf("offline: exit %d\n%s (Apple got %d requests, want only the 2 online ones)", code, out, len(e.fake.Requests()))
	}

	wrongKeyID := e.writeConfig(t, "wrong-kid.yaml", "WRONGKEY12", e.keyPEM, baseURLOf(t, e.config), "")
	code, out, errOut = runCLI(t, "check", "--config", wrongKeyID, "--online")
	if code != 1 || !strings.Contains(out, "HTTP 401") || !strings.Contains(out, "key_id is the key's Key ID") ||
		!strings.Contains(errOut, "not Active") {
		t.Errorf("wrong key id: exit %d\n%s%s", code, out, errOut)
	}

	missing := filepath.Join(e.dir, "SubscriptionKey_MISSING.p8")
	code, _, errOut = runCLI(t, "check", "--config", e.writeConfig(t, "missing.yaml", "ABC", missing, "", ""))
	if code != 2 || !strings.Contains(errOut, missing) || !strings.Contains(errOut, "private_key_file") {
		t.Errorf("unreadable key: exit %d, stderr %q; want 2 naming the file", code, errOut)
	}

	cert := filepath.Join(e.dir, "cert.pem")
	write(t, cert, e.ca.RootPEM())
	code, _, errOut = runCLI(t, "check", "--config", e.writeConfig(t, "cert.yaml", "ABC", cert, "", ""))
	if code != 2 || !strings.Contains(errOut, cert) || !strings.Contains(errOut, "certificate") || !strings.Contains(errOut, "In-App Purchase") {
		t.Errorf("certificate as key: exit %d, stderr %q; want 2 naming the file", code, errOut)
	}

	notPEM := filepath.Join(e.dir, "key.txt")
	write(t, notPEM, []byte("not a key"))
	code, _, errOut = runCLI(t, "check", "--config", e.writeConfig(t, "notpem.yaml", "ABC", notPEM, "", ""))
	if code != 2 || !strings.Contains(errOut, notPEM) || !strings.Contains(errOut, ".p8") {
		t.Errorf("not a PEM: exit %d, stderr %q; want 2 naming the file", code, errOut)
	}
}

// baseURLOf reads apps[0].api.base_url back from a config file.
func baseURLOf(t *testing.T, path string) string {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Apps[0].API.BaseURL
}

func TestBackfillCommand(t *testing.T) {
	e := newAppleEnv(t)
	target := newCapture(t)
	path := e.writeConfig(t, "asnrelay.yaml", e.fake.KeyID, e.keyPEM, baseURLOf(t, e.config), target.URL)
	var history []string
	for i := range 3 {
		s, err := e.ca.SignNotification(appletest.Notification{Type: "DID_RENEW", BundleID: e.fake.BundleID,
			AppAppleID: e.fake.AppAppleID, SignedDate: time.Now().Add(-time.Duration(i+1) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, s)
	}
	e.fake.Update(func(f *appletest.FakeAPI) { f.NotificationHistory = history })
	r, _ := startRelay(t, path)
	admin := "http://" + r.AdminAddr().String()

	code, out, errOut := runCLI(t, "backfill", "--app", "myapp", "--environment", "Sandbox", "--since", "3d", "--admin", admin)
	if code != 0 || !strings.Contains(out, "fetched 3, stored 3, skipped 0") {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(target.all()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("target got %d of 3", len(target.all()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, out, _ = runCLI(t, "backfill", "--app", "myapp", "--environment", "Sandbox", "--admin", admin)
	if code != 0 || !strings.Contains(out, "fetched 3, stored 0, skipped 3") {
		t.Errorf("second backfill: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"backfill", "--admin", admin},
		{"backfill", "--app", "myapp", "--since", "200d", "--admin", admin},
		{"backfill", "--app", "myapp", "--since", "soon", "--admin", admin},
	} {
		if code, _, errOut := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "backfill", "--app", "nope", "--admin", admin); code != 1 || !strings.Contains(errOut, `no app "nope"`) {
		t.Errorf("unknown app: exit %d, stderr %q", code, errOut)
	}
}

func TestAppleTestNotificationCommand(t *testing.T) {
	e := newAppleEnv(t)
	r, _ := startRelay(t, e.config)
	e.fake.Update(func(f *appletest.FakeAPI) { f.NotificationURL = "http://" + r.Addr().String() + "/asn/myapp" })
	admin := "http://" + r.AdminAddr().String()

	code, out, errOut := runCLI(t, "apple", "test-notification", "--app", "myapp", "--config", e.config, "--admin", admin, "--poll-interval", "5ms")
	if code != 0 || !strings.Contains(out, ": SUCCESS") || !strings.Contains(out, "notificationUUID ") ||
		!strings.Contains(out, "relay: received") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}

	// Nothing listens at the admin URL: Apple's side is still reported.
	code, out, errOut = runCLI(t, "apple", "test-notification", "--config", e.config, "--admin", "http://127.0.0.1:1", "--poll-interval", "5ms", "--wait", "300ms")
	if code != 0 || !strings.Contains(out, ": SUCCESS") || !strings.Contains(out, "relay: could not check the relay") {
		t.Errorf("no daemon: exit %d\n%s%s", code, out, errOut)
	}
}

func TestAppleLookupCommands(t *testing.T) {
	e := newAppleEnv(t)
	e.fake.Update(func(f *appletest.FakeAPI) {
		f.Transactions = []apple.Transaction{{TransactionID: "1000", OriginalTransactionID: "1000", ProductID: "coins"}}
		f.Orders = map[string][]string{"MQ1": {"1000"}}
	})
	for _, args := range [][]string{
		{"apple", "transaction", "1000"},
		{"apple", "history", "1000"},
		{"apple", "subscriptions", "1000"},
		{"apple", "order", "MQ1"},
		{"apple", "refunds", "1000"},
	} {
		code, out, errOut := runCLI(t, append(args, "--app", "myapp", "--environment", "Sandbox", "--config", e.config)...)
		if code != 0 || !json.Valid([]byte(out)) || !strings.HasPrefix(out, "{\n  \"") || !strings.Contains(errOut, "verified") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if args[1] != "subscriptions" && args[1] != "refunds" && !strings.Contains(out, `"transactionId": "1000"`) {
			t.Errorf("%v: %s", args, out)
		}
	}
	if code, _, errOut := runCLI(t, "apple", "transaction", "1000", "--app", "nope", "--config", e.config); code != 2 {
		t.Errorf("unknown app: exit %d (%s), want 2", code, errOut)
	}
	if code, _, errOut := runCLI(t, "apple", "transaction", "1000", "--environment", "Xcode", "--config", e.config); code != 2 {
		t.Errorf("bad environment: exit %d (%s), want 2", code, errOut)
	}

	code, out, errOut := runCLI(t, "apple", "sign-offer", "--product", "monthly", "--offer", "winback", "--config", e.config)
	if code != 0 || !strings.Contains(out, "keyIdentifier: "+e.fake.KeyID) || !strings.Contains(out, "nonce: ") ||
		!strings.Contains(out, "timestamp: ") || !strings.Contains(out, "signature: ") {
		t.Errorf("sign-offer: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "apple", "sign-offer", "--product", "monthly", "--offer", "winback", "--jws", "--config", e.config)
	if code != 0 || strings.Contains(out, "nonce: ") || strings.Count(out, ".") < 2 {
		t.Errorf("sign-offer --jws: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "apple", "sign-offer", "--product", "monthly", "--config", e.config); code != 2 {
		t.Errorf("sign-offer without --offer: exit %d, want 2", code)
	}
}
