package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// TestForgeriesAreNeverTrusted sends CONSUMPTION_REQUEST and REFUND
// notifications forged every way we know to a relay that answers
// consumption requests: each is stored and acknowledged (Apple must not
// resend what we hold), kept unverified with its reason, forwarded only to
// the target that asks for unverified data, and never acted on.
func TestForgeriesAreNeverTrusted(t *testing.T) {
	t.Parallel()
	e := newConsumptionEnv(t, nil)
	ca := e.ca
	other := newCA(t) // a CA nobody trusts
	noOID, err := appletest.NewWithOptions(appletest.Options{Validity: appletest.Validity{NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour)}, NoLeafOID: true})
	if err != nil {
		t.Fatal(err)
	}
	notCA, err := appletest.NewWithOptions(appletest.Options{Validity: appletest.Validity{NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour)}, IntermediateNotCA: true})
	if err != nil {
		t.Fatal(err)
	}
	// Their roots are trusted: what must fail is the missing OID or CA flag.
	for _, c := range []*appletest.CA{noOID, notCA} {
		path := filepath.Join(t.TempDir(), "root.pem")
		writeFile(t, path, c.RootPEM())
		e.cfg.Apple.RootCerts = append(e.cfg.Apple.RootCerts, path)
	}
	strict, loose := newSink(t), newSink(t)
	e.cfg.Targets = []config.Target{target("strict", strict.URL),
		target("loose", loose.URL, func(tg *config.Target) { tg.VerifiedOnly = false })}
	h := e.start(t, nil)

	tx := func() *apple.Transaction {
		return &apple.Transaction{TransactionID: testTxID, OriginalTransactionID: testTxID, ProductID: "coins",
			Type: apple.ProductTypeConsumable, Price: 4990, Currency: "EUR"}
	}
	request := func(uuid string) appletest.Notification {
		return appletest.Notification{Type: "CONSUMPTION_REQUEST", UUID: uuid, BundleID: testBundle,
			ConsumptionRequestReason: "UNINTENDED_PURCHASE", Transaction: tx()}
	}
	refund := func(uuid string) appletest.Notification {
		return appletest.Notification{Type: "REFUND", UUID: uuid, BundleID: testBundle, Transaction: tx()}
	}
	signed := func(c *appletest.CA, n appletest.Notification) string {
		s, err := c.SignNotification(n)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withHeader := func(c *appletest.CA, header map[string]any, n appletest.Notification) string {
		// The payload exactly as SignNotification makes it, under another header.
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(signed(c, n), ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.SignJWSWithHeader(header, payload)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	split := func(jws string) (string, string, string) {
		p := strings.Split(jws, ".")
		return p[0], p[1], p[2]
	}
	// tamper edits the payload of a genuine JWS and keeps its signature.
	tamper := func(jws string, edit func(p map[string]any)) string {
		h, p, s := split(jws)
		raw, _ := base64.RawURLEncoding.DecodeString(p)
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc)
		raw, _ = json.Marshal(doc)
		return h + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + s
	}
	x5c := func(certs ...*x509.Certificate) []string {
		var out []string
		for _, c := range certs {
			out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
		}
		return out
	}
	mixed := *ca
	mixed.LeafKey = other.LeafKey // trusted chain in the header, signed with another key

	hs256 := func(n appletest.Notification) string {
		// The classic confusion: HMAC keyed with the leaf's public key.
		hd, _ := json.Marshal(map[string]any{"alg": "HS256", "x5c": ca.X5C()})
		_, p, _ := split(signed(ca, n))
		input := base64.RawURLEncoding.EncodeToString(hd) + "." + p
		pub, _ := x509.MarshalPKIXPublicKey(ca.Leaf.PublicKey)
		mac := hmac.New(sha256.New, pub)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	unsigned := func(alg string, n appletest.Notification) string {
		hd, _ := json.Marshal(map[string]any{"alg": alg, "x5c": ca.X5C()})
		_, p, _ := split(signed(ca, n))
		return base64.RawURLEncoding.EncodeToString(hd) + "." + p + "."
	}
	swapped := func() string {
		hA, pA, _ := split(signed(ca, request("swap-a")))
		_, _, sB := split(signed(ca, request("swap-b")))
		return hA + "." + pA + "." + sB
	}
	innerForged := func() string {
		// A genuine outer JWS whose signedTransactionInfo is replaced by one
		// another CA signed (with a far bigger refund in it).
		inner, err := other.SignJWS(map[string]any{"transactionId": testTxID, "bundleId": testBundle, "price": 999990,
			"environment": "Sandbox", "signedDate": ca.Leaf.NotBefore.Add(time.Hour).UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		return tamper(signed(ca, refund("inner")), func(p map[string]any) {
			p["data"].(map[string]any)["signedTransactionInfo"] = inner
		})
	}

	forgeries := []struct {
		name, signedPayload string
		reason              apple.Reason
	}{
		{"tampered payload (other UUID)", tamper(signed(ca, request("t1")), func(p map[string]any) { p["notificationUUID"] = "tampered-1" }), apple.ReasonBadSignature},
		{"tampered payload (reason)", tamper(signed(ca, request("t2")), func(p map[string]any) {
			p["notificationUUID"] = "tampered-2"
			p["data"].(map[string]any)["consumptionRequestReason"] = "LEGAL"
		}), apple.ReasonBadSignature},
		{"tampered nested transaction", innerForged(), apple.ReasonBadSignature},
		{"signature of another notification", swapped(), apple.ReasonBadSignature},
		{"signed by another CA", signed(other, request("other-ca")), apple.ReasonUntrustedRoot},
		{"refund signed by another CA", signed(other, refund("other-ca-refund")), apple.ReasonUntrustedRoot},
		{"trusted x5c, another key", signed(&mixed, request("mixed-key")), apple.ReasonBadSignature},
		{"trusted x5c, another key, embedded jwk", withHeader(&mixed, map[string]any{"alg": "ES256", "x5c": ca.X5C(),
			"jwk": map[string]any{"kty": "EC", "crv": "P-256"}}, request("jwk")), apple.ReasonBadSignature},
		{"another leaf under the trusted chain", withHeader(other, map[string]any{"alg": "ES256",
			"x5c": x5c(other.Leaf, ca.Intermediate, ca.Root)}, request("other-leaf")), apple.ReasonUntrustedRoot},
		{"another chain ending in the trusted root", withHeader(other, map[string]any{"alg": "ES256",
			"x5c": x5c(other.Leaf, other.Intermediate, ca.Root)}, request("other-chain")), apple.ReasonUntrustedRoot},
		{"alg none", unsigned("none", request("alg-none")), apple.ReasonBadAlgorithm},
		{"alg empty", unsigned("", refund("alg-empty")), apple.ReasonBadAlgorithm},
		{"alg HS256 keyed with the leaf's public key", hs256(request("hs256")), apple.ReasonBadAlgorithm},
		{"alg es256 (case)", withHeader(ca, map[string]any{"alg": "es256", "x5c": ca.X5C()}, request("alg-case")), apple.ReasonBadAlgorithm},
		{"alg ES384", withHeader(ca, map[string]any{"alg": "ES384", "x5c": ca.X5C()}, request("alg-384")), apple.ReasonBadAlgorithm},
		{"x5c of two", withHeader(ca, map[string]any{"alg": "ES256", "x5c": ca.X5C()[:2]}, request("x5c-2")), apple.ReasonBadChainLength},
		{"x5c of four", withHeader(ca, map[string]any{"alg": "ES256", "x5c": append(ca.X5C(), ca.X5C()[2])}, request("x5c-4")), apple.ReasonBadChainLength},
		{"leaf without Apple's OID", signed(noOID, request("no-oid")), apple.ReasonMissingOID},
		{"intermediate not a CA", signed(notCA, request("not-ca")), apple.ReasonIntermediateNotCA},
		{"signed after the chain expired", signed(ca, appletest.Notification{Type: "REFUND", UUID: "expired", BundleID: testBundle,
			SignedDate: ca.Leaf.NotAfter.Add(time.Hour)}), apple.ReasonExpiredChain},
		{"valid signature, another bundle", signed(ca, appletest.Notification{Type: "CONSUMPTION_REQUEST", UUID: "bundle", BundleID: "com.evil.app",
			ConsumptionRequestReason: "LEGAL", Transaction: &apple.Transaction{TransactionID: testTxID, BundleID: "com.evil.app"}}), apple.ReasonWrongBundle},
		{"valid signature, Production of another app", signed(ca, appletest.Notification{Type: "REFUND", UUID: "app-id", BundleID: testBundle,
			Environment: "Production", AppAppleID: 999, Transaction: tx()}), apple.ReasonWrongAppAppleID},
		{"valid signature, Xcode for an app without it", signed(ca, appletest.Notification{Type: "REFUND", UUID: "xcode", BundleID: testBundle,
			Environment: "Xcode", Transaction: tx()}), apple.ReasonWrongEnvironment},
		{"Xcode claim from an untrusted signer", signed(other, appletest.Notification{Type: "REFUND", UUID: "xcode-other", BundleID: testBundle,
			Environment: "Xcode", Transaction: tx()}), apple.ReasonUntrustedRoot},
		// First claim on a UUID the genuine notification below carries.
		{"UUID squatting", signed(other, appletest.Notification{Type: "DID_RENEW", UUID: "squat", BundleID: testBundle}), apple.ReasonUntrustedRoot},
	}
	for i, f := range forgeries {
		if got := h.post(t, "myapp", jsonBody(f.signedPayload)); got != 200 {
			t.Fatalf("%s: status %d; a stored body is acknowledged whatever its signature", f.name, got)
		}
		n := h.waitProcessed(t, uint64(i+1))
		if n.State != store.StateUnverified || !strings.Contains(n.Reason, string(f.reason)) {
			t.Errorf("%s: %s %q, want unverified %s", f.name, n.State, n.Reason, f.reason)
		}
		t.Logf("%s: %s %q", f.name, n.State, truncate(n.Reason, 110))
	}
	// The genuine notification with the squatted UUID is not a duplicate of
	// the forgery; a forged copy after it is.
	if got := h.post(t, "myapp", jsonBody(signed(ca, appletest.Notification{Type: "DID_RENEW", UUID: "squat", BundleID: testBundle}))); got != 200 {
		t.Fatal(got)
	}
	genuine := h.waitProcessed(t, uint64(len(forgeries)+1))
	if genuine.State != store.StateVerified {
		t.Errorf("genuine notification after a forged claim on its UUID: %s %q", genuine.State, genuine.Reason)
	}
	h.post(t, "myapp", jsonBody(signed(other, appletest.Notification{Type: "DID_RENEW", UUID: "squat", BundleID: testBundle})))
	if late := h.waitProcessed(t, uint64(len(forgeries)+2)); late.State != store.StateDuplicate || !strings.Contains(late.Reason, string(apple.ReasonUntrustedRoot)) {
		t.Errorf("forged copy of a verified UUID: %s %q", late.State, late.Reason)
	}

	// Only the genuine one reaches the verified_only target; the loose one
	// gets the forgeries too, as it asked.
	waitFor(t, "the loose target", func() bool { return len(loose.received()) == len(forgeries)+1 })
	waitFor(t, "the strict target", func() bool { return len(strict.received()) == 1 })
	if id := strict.headers[0].Get("Webhook-Id"); id != "squat" {
		t.Errorf("strict target received %s", id)
	}
	// Nothing was acted on: no consumption answer, no ledger record.
	if _, err := h.r.db.ConsumptionJob(testTxID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("consumption job for a forged request: %v", err)
	}
	if _, err := h.r.db.Refund(testTxID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refund ledger record from a forgery: %v", err)
	}
	if refunds, _, err := h.r.db.Refunds(store.RefundFilter{}, nil, 100); err != nil || len(refunds) != 0 {
		t.Errorf("refund ledger: %d records (%v)", len(refunds), err)
	}
	if jobs, _, err := h.r.db.ConsumptionJobs(store.ConsumptionFilter{}, 100); err != nil || len(jobs) != 0 {
		t.Errorf("consumption jobs: %d (%v)", len(jobs), err)
	}
	if sent := e.sent(); len(sent) != 0 {
		t.Errorf("%d consumption answers sent to Apple for forgeries", len(sent))
	}
	if v := vecValue(t, h.r.metrics.refunds, "myapp", "REFUND"); v != 0 {
		t.Errorf("refunds_total = %v", v)
	}

	// The control: the same request, genuine, is answered and recorded, so
	// the checks above would have seen it.
	if got := h.post(t, "myapp", jsonBody(signed(ca, request("genuine-request")))); got != 200 {
		t.Fatal(got)
	}
	waitJob(t, h, testTxID, requestState(1, store.ConsumptionSent))
	if _, err := h.r.db.Refund(testTxID); err != nil {
		t.Errorf("genuine request left no ledger record: %v", err)
	}
	t.Logf("%d forgeries: all stored unverified with their reason, none forwarded to the verified_only target, no consumption or refund work", len(forgeries))
	stopAndCheckFile(t, h)
}
