package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay"
)

// adminRelay is a relay running in-process from a config file, with a
// target that records what it receives.
type adminRelay struct {
	config string // path of asnrelay.yaml
	admin  string // admin base URL
	public string // public base URL
	token  string
	ca     *appletest.CA
	target *capture
	stop   func()
}

// startAdminRelay writes asnrelay.yaml (admin on a fixed free port, so that
// --config finds it) and runs a relay from it until the test ends.
func startAdminRelay(t *testing.T, token string) *adminRelay {
	t.Helper()
	ca, err := appletest.New(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	os.WriteFile(root, ca.RootPEM(), 0o600)
	ar := &adminRelay{config: filepath.Join(dir, "asnrelay.yaml"), token: token, ca: ca, target: newCapture(t)}
	adminAddr := freePort(t)
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %s
admin: {listen: %q, token: %q}
apple: {root_certs: [%s]}
apps:
  - name: myapp
    bundle_id: com.example.app
    environments: [Sandbox]
targets:
  - name: backend
    url: %s
    retry: {initial: 5ms, max_interval: 20ms, max_age: 1h}
`, filepath.Join(dir, "data"), adminAddr, token, root, ar.target.URL)
	os.WriteFile(ar.config, []byte(yaml), 0o600)
	var r *relay.Relay
	r, ar.stop = startRelay(t, ar.config)
	ar.admin, ar.public = "http://"+r.AdminAddr().String(), "http://"+r.Addr().String()
	return ar
}

// post sends a notification signed by the relay's CA (or by an unknown one)
// and waits for its processing.
func (ar *adminRelay) post(t *testing.T, n appletest.Notification, trusted bool) {
	t.Helper()
	n.BundleID = "com.example.app"
	ca := ar.ca
	if !trusted {
		var err error
		if ca, err = appletest.New(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := ca.Body(n)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ar.public+"/asn/myapp", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
}

// get reads an admin API document directly.
func (ar *adminRelay) get(t *testing.T, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", ar.admin+path, nil)
	if ar.token != "" {
		req.Header.Set("Authorization", "Bearer "+ar.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cli runs asnrelay against the relay's admin API and wants exit code want.
func (ar *adminRelay) cli(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	args = append(args, "--admin", ar.admin)
	if ar.token != "" {
		args = append(args, "--token", ar.token)
	}
	code, out, errOut := runCLI(t, args...)
	if code != want {
		t.Fatalf("asnrelay %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out, errOut
}

func TestAdminCLI(t *testing.T) {
	ar := startAdminRelay(t, "")
	ar.post(t, appletest.Notification{Type: "DID_RENEW", UUID: "cli-1"}, true)
	ar.post(t, appletest.Notification{Type: "SUBSCRIBED", Subtype: "INITIAL_BUY", UUID: "cli-2"}, true)
	ar.post(t, appletest.Notification{Type: "REFUND", UUID: "cli-forged"}, false)
	eventually(t, "two deliveries", func() bool { return len(ar.target.all()) == 2 })
	eventually(t, "processing", func() bool { return !bytes.Contains(ar.get(t, "/api/v1/notifications"), []byte(`"received"`)) })

	// ls --json prints the API document as is.
	out, _ := ar.cli(t, 0, "notifications", "ls", "--json")
	if want := ar.get(t, "/api/v1/notifications"); out != string(want) {
		t.Errorf("ls --json:\n%s\nAPI:\n%s", out, want)
	}
	var doc struct {
		Notifications []map[string]any `json:"notifications"`
		NextCursor    *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Notifications) != 3 || doc.NextCursor == nil ||
		doc.Notifications[0]["notification_uuid"] != "cli-forged" || doc.Notifications[0]["state"] != "unverified" {
		t.Errorf("ls --json = %s, %v", out, err)
	}

	out, _ = ar.cli(t, 0, "notifications", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NOTIFICATION UUID") ||
		!strings.Contains(lines[2], "SUBSCRIBED.INITIAL_BUY") || !strings.Contains(lines[1], "unverified") || !strings.Contains(lines[3], "cli-1") {
		t.Errorf("ls table:\n%s", out)
	}
	out, _ = ar.cli(t, 0, "notifications", "ls", "--state", "verified", "--type", "DID_RENEW", "--since", "1h", "--app", "myapp")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "cli-1") {
		t.Errorf("filtered ls:\n%s", out)
	}
	out, errOut := ar.cli(t, 0, "notifications", "ls", "--limit", "2")
	if strings.Count(out, "\n") != 3 || !strings.Contains(errOut, "--cursor ") {
		t.Errorf("paged ls:\n%s\n%s", out, errOut)
	}
	cursor := strings.TrimSpace(strings.TrimPrefix(errOut, "more: repeat with --cursor "))
	if out, _ = ar.cli(t, 0, "notifications", "ls", "--limit", "2", "--cursor", cursor); !strings.Contains(out, "cli-1") {
		t.Errorf("second page:\n%s", out)
	}
	_, errOut = ar.cli(t, 2, "notifications", "ls", "--state", "bogus")
	if !strings.Contains(errOut, `state: "bogus" is not one of`) || !strings.Contains(errOut, "HTTP 400") {
		t.Errorf("daemon's error not shown as it is: %s", errOut)
	}

	out, _ = ar.cli(t, 0, "notifications", "show", "1")
	for _, want := range []string{"cli-1", "DID_RENEW", "verified", "deliveries (1):", "backend", "payload (verified):", `"notificationUUID": "cli-1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if out, _ = ar.cli(t, 0, "notifications", "show", "3"); !strings.Contains(out, "UNVERIFIED") || !strings.Contains(out, "untrusted_root") {
		t.Errorf("show of an unverified notification:\n%s", out)
	}
	out, _ = ar.cli(t, 0, "notifications", "show", "2", "--body")
	if want := ar.get(t, "/api/v1/notifications/2/body"); out != string(want) || !strings.HasPrefix(out, `{"signedPayload":`) {
		t.Errorf("show --body = %q", out)
	}
	_, errOut = ar.cli(t, 1, "notifications", "show", "99")
	if !strings.Contains(errOut, "notification 99 not found (HTTP 404)") {
		t.Errorf("show 99: %s", errOut)
	}
	ar.cli(t, 2, "notifications", "show", "x")
	ar.cli(t, 2, "notifications", "show")

	eventually(t, "deliveries succeeded", func() bool {
		return bytes.Count(ar.get(t, "/api/v1/deliveries?state=succeeded"), []byte(`"id"`)) == 2
	})
	out, _ = ar.cli(t, 0, "deliveries", "ls", "--target", "backend", "--state", "succeeded")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[0], "LAST ERROR") || !strings.Contains(out, "succeeded") {
		t.Errorf("deliveries ls:\n%s", out)
	}
	out, _ = ar.cli(t, 0, "deliveries", "ls", "--json", "--state", "dead")
	if strings.TrimSpace(out) != "{\n  \"deliveries\": [],\n  \"next_cursor\": \"\"\n}" {
		t.Errorf("deliveries ls --json:\n%s", out)
	}
	if out, _ = ar.cli(t, 0, "deliveries", "show", "1"); !strings.Contains(out, "attempts (1):") || !strings.Contains(out, "200") {
		t.Errorf("deliveries show:\n%s", out)
	}
	ar.cli(t, 2, "deliveries", "ls", "--state", "failed")

	out, _ = ar.cli(t, 0, "replay", "--id", "1", "--id", "2")
	if out != "created 2 deliveries\n" {
		t.Errorf("replay printed %q", out)
	}
	eventually(t, "replays delivered", func() bool { return len(ar.target.all()) == 4 })
	out, errOut = ar.cli(t, 0, "replay", "--id", "3", "--target", "backend")
	if out != "created 0 deliveries\n" || !strings.Contains(errOut, "verified_only") {
		t.Errorf("replay of an unverified notification: %q %q", out, errOut)
	}
	if out, _ = ar.cli(t, 0, "replay", "--state", "dead"); out != "created 0 deliveries\n" {
		t.Errorf("replay --state dead printed %q", out)
	}
	if out, _ = ar.cli(t, 0, "deliveries", "retry", "1"); out != "created 1 delivery\n" {
		t.Errorf("retry printed %q", out)
	}
	ar.cli(t, 2, "replay")
	ar.cli(t, 2, "replay", "--state", "pending")
	_, errOut = ar.cli(t, 2, "replay", "--id", "1", "--target", "nobody")
	if !strings.Contains(errOut, `"nobody" is not a configured target`) {
		t.Errorf("replay to an unknown target: %s", errOut)
	}
	ar.cli(t, 1, "replay", "--id", "42")

	out, _ = ar.cli(t, 0, "stats")
	for _, want := range []string{"notifications: 3 stored, 0 waiting", "verified 2, unverified 1", "TARGET", "backend", "ok", "ingest since start: 3 requests", "myapp: 200×3"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}
	out, _ = ar.cli(t, 0, "stats", "--json")
	var st relay.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Notifications.Stored != 3 || len(st.Targets) != 1 {
		t.Errorf("stats --json: %v\n%s", err, out)
	}

	if out, _ = ar.cli(t, 0, "reverify", "--since", "1h"); out != "queued 1 notification for verification\n" {
		t.Errorf("reverify printed %q", out)
	}
	ar.cli(t, 2, "reverify", "--since", "later")
}

func TestAdminCLIFindsTheDaemonFromTheConfigAndSendsTheToken(t *testing.T) {
	ar := startAdminRelay(t, "cli-token-42")
	code, out, errOut := runCLI(t, "stats", "--config", ar.config)
	if code != 0 || !strings.Contains(out, "backend") {
		t.Fatalf("stats --config: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "stats", "--admin", ar.admin)
	if code != 1 || !strings.Contains(errOut, "missing or wrong bearer token (admin.token) (HTTP 401)") {
		t.Errorf("without the token: exit %d %s", code, errOut)
	}
	t.Setenv("ASNRELAY_CONFIG", ar.config)
	if code, _, errOut = runCLI(t, "notifications", "ls"); code != 0 {
		t.Errorf("with $ASNRELAY_CONFIG: exit %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "stats", "--config", ar.config, "--token", "wrong")
	if code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("wrong token: exit %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "stats", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 2 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing config: exit %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "stats", "--admin", "127.0.0.1:8081")
	if code != 1 || !strings.Contains(errOut, "want a base URL with scheme") {
		t.Errorf("--admin without scheme: exit %d %s", code, errOut)
	}

	// compact refuses a database in use, and works once the daemon stopped.
	code, _, errOut = runCLI(t, "compact", "--config", ar.config)
	if code != 1 || !strings.Contains(errOut, "stop asnrelay serve first") {
		t.Errorf("compact while serving: exit %d %s", code, errOut)
	}
	ar.stop()
	code, out, errOut = runCLI(t, "compact", "--config", ar.config)
	if code != 0 || !strings.HasPrefix(out, "compacted ") || !strings.Contains(out, "asnrelay.db: ") || !strings.Contains(out, "KiB -> ") {
		t.Errorf("compact: exit %d %q %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "stats", "--config", ar.config)
	if code != 1 || !strings.Contains(errOut, "is asnrelay serve running?") {
		t.Errorf("daemon stopped: exit %d %s", code, errOut)
	}
}
