package appletest_test

import (
	"crypto/x509"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

var (
	from = time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	to   = from.Add(24 * time.Hour)
)

func TestBodyVerifiesWithDefaults(t *testing.T) {
	ca, err := appletest.New(from, to)
	if err != nil {
		t.Fatal(err)
	}
	body, err := ca.Body(appletest.Notification{Transaction: &apple.Transaction{TransactionID: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]string
	if err := json.Unmarshal(body, &req); err != nil || len(req) != 1 || req["signedPayload"] == "" {
		t.Fatalf("body %s: %v", body, err)
	}
	certs, err := apple.ParseCertificates(ca.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	// No clock is injected: the default signedDate lies inside the CA's validity.
	n, err := apple.NewVerifier(certs).VerifyNotification(req["signedPayload"])
	if err != nil {
		t.Fatal(err)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if n.NotificationType != apple.NotificationTypeTest || n.Version != "2.0" || !uuid.MatchString(n.NotificationUUID) ||
		n.SignedDate.Time() != from.Add(12*time.Hour) {
		t.Errorf("notification %+v", n)
	}
	if id := n.Identity(); id != (apple.Identity{BundleID: "com.example.app", Environment: "Sandbox"}) {
		t.Errorf("identity %+v", id)
	}
	if tx := n.Transaction; tx == nil || tx.BundleID != "com.example.app" || tx.Environment != "Sandbox" || tx.SignedDate != n.SignedDate {
		t.Errorf("transaction %+v", tx)
	}
}

func TestCertificates(t *testing.T) {
	ca, err := appletest.NewWithOptions(appletest.Options{
		Validity: appletest.Validity{NotBefore: from, NotAfter: to},
		Leaf:     &appletest.Validity{NotBefore: from, NotAfter: from.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Root.IsCA || !ca.Intermediate.IsCA || ca.Leaf.IsCA {
		t.Error("CA flags wrong")
	}
	if !ca.Leaf.NotAfter.Equal(from.Add(time.Hour)) || !ca.Intermediate.NotAfter.Equal(to) {
		t.Errorf("validity: leaf until %s, intermediate until %s", ca.Leaf.NotAfter, ca.Intermediate.NotAfter)
	}
	if err := ca.Leaf.CheckSignatureFrom(ca.Intermediate); err != nil {
		t.Error(err)
	}
	if err := ca.Intermediate.CheckSignatureFrom(ca.Root); err != nil {
		t.Error(err)
	}
	hasOID := func(c *x509.Certificate, oid string) bool {
		for _, e := range c.Extensions {
			if e.Id.String() == oid {
				return !e.Critical
			}
		}
		return false
	}
	if !hasOID(ca.Leaf, apple.LeafOID) || !hasOID(ca.Intermediate, apple.IntermediateOID) {
		t.Error("Apple OIDs missing")
	}

	bad, err := appletest.NewWithOptions(appletest.Options{
		Validity:          appletest.Validity{NotBefore: from, NotAfter: to},
		NoLeafOID:         true,
		NoIntermediateOID: true,
		IntermediateNotCA: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Intermediate.IsCA || hasOID(bad.Leaf, apple.LeafOID) || hasOID(bad.Intermediate, apple.IntermediateOID) {
		t.Error("broken options not applied")
	}
}
