package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay"
)

// startRefundRelay runs a relay whose app answers CONSUMPTION_REQUEST in
// dry run after a 5 h review delay, and returns its admin and public URLs.
func startRefundRelay(t *testing.T) (admin, public string, ca *appletest.CA) {
	t.Helper()
	ca, err := appletest.New(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	os.WriteFile(root, ca.RootPEM(), 0o600)
	path := filepath.Join(dir, "asnrelay.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %s
admin: {listen: "127.0.0.1:0"}
apple: {root_certs: [%s]}
apps:
  - name: myapp
    bundle_id: com.example.app
    environments: [Sandbox]
    consumption:
      enabled: true
      dry_run: true
      review_delay: 5h
      refund_preference: {default: DECLINE, by_reason: {UNINTENDED_PURCHASE: GRANT_FULL}}
`, filepath.Join(dir, "data"), root)
	os.WriteFile(path, []byte(yaml), 0o600)
	r, _ := startRelay(t, path)
	return "http://" + r.AdminAddr().String(), "http://" + r.Addr().String(), ca
}

func TestRefundsAndConsumptionCLI(t *testing.T) {
	admin, public, ca := startRefundRelay(t)
	post := func(typ, uuid, txid string, price int64) {
		t.Helper()
		n := appletest.Notification{Type: typ, UUID: uuid, BundleID: "com.example.app", SignedDate: time.Now(),
			Transaction: &apple.Transaction{TransactionID: txid, ProductID: "gems", Price: price, Currency: "EUR"}}
		if typ == "CONSUMPTION_REQUEST" {
			n.ConsumptionRequestReason = "UNINTENDED_PURCHASE"
		}
		b, err := ca.Body(n)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(public+"/asn/myapp", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cli := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := runCLI(t, append(args, "--admin", admin)...)
		if code != want {
			t.Fatalf("asnrelay %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out, errOut
	}
	post("CONSUMPTION_REQUEST", "r1", "111", 4990)
	post("CONSUMPTION_REQUEST", "r2", "222", 990)
	post("REFUND_DECLINED", "r3", "333", 1990)
	eventually(t, "two pending answers", func() bool {
		out, _ := cli(0, "consumption", "ls", "--state", "pending")
		return strings.Count(out, "pending") == 2
	})

	out, _ := cli(0, "consumption", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "DEADLINE") || !strings.Contains(lines[1], "GRANT_FULL") || !strings.Contains(lines[1], "111") {
		t.Errorf("consumption ls:\n%s", out)
	}
	out, _ = cli(0, "consumption", "send", "111", "--preference", "decline")
	if !strings.Contains(out, "111: send_now applied to 1 pending answer(s)") {
		t.Errorf("send:\n%s", out)
	}
	eventually(t, "the dry-run answer", func() bool {
		out, _ := cli(0, "consumption", "ls", "--state", "dry_run", "--json")
		var list relay.ConsumptionList
		return json.Unmarshal([]byte(out), &list) == nil && len(list.Consumption) == 1 &&
			list.Consumption[0].Answer.RefundPreference == "DECLINE" && list.Consumption[0].Source == "override"
	})
	if out, _ = cli(0, "consumption", "cancel", "222", "--note", "refunded by support"); !strings.Contains(out, "cancelled") {
		t.Errorf("cancel:\n%s", out)
	}
	_, errOut := cli(1, "consumption", "cancel", "222")
	if !strings.Contains(errOut, "no pending consumption answer") || !strings.Contains(errOut, "HTTP 409") {
		t.Errorf("second cancel: %s", errOut)
	}
	cli(2, "consumption", "send", "111", "--preference", "sometimes")
	cli(2, "consumption", "override", "111")
	cli(2, "consumption", "ls", "--state", "lost")

	out, _ = cli(0, "refunds", "ls")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.Contains(out, "4.99 EUR") ||
		!strings.Contains(out, "dry_run:DECLINE") || !strings.Contains(out, "declined") {
		t.Errorf("refunds ls:\n%s", out)
	}
	if _, errOut = cli(0, "refunds", "ls", "--limit", "1"); !strings.Contains(errOut, "more: repeat with --cursor ") {
		t.Errorf("refunds ls --limit 1 gave no cursor: %q", errOut)
	}
	out, _ = cli(0, "refunds", "stats", "--app", "myapp", "--since", "1h")
	for _, want := range []string{"WIN-BACK", "myapp", "100.0%", "CURRENCY", "EUR", "1.99"} {
		if !strings.Contains(out, want) {
			t.Errorf("refunds stats lacks %q:\n%s", want, out)
		}
	}
	out, _ = cli(0, "refunds", "stats", "--json")
	var doc relay.RefundStatsDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Total.Requests != 2 || doc.Total.Declined != 1 || doc.Total.DryRun != 1 || doc.Total.Cancelled != 1 {
		t.Errorf("refunds stats --json: %v\n%s", err, out)
	}
}

func TestMilliunits(t *testing.T) {
	for v, want := range map[int64]string{4990: "4.99", 4995: "4.995", 5000: "5.00", 0: "0.00", 99: "0.099", -1500: "-1.50", 123456789: "123456.789"} {
		if got := milliunits(v); got != want {
			t.Errorf("milliunits(%d) = %q, want %q", v, got, want)
		}
	}
}
