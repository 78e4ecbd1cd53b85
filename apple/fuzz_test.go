package apple_test

import (
	"encoding/json"
	"testing"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

// Seed corpora live in testdata/fuzz/<FuzzName>; the seeds added here are signed by a CA
// minted for this run, so that the fuzzer starts from data that verifies.

func FuzzVerifyJWS(f *testing.F) {
	ca := newCA(f)
	v := verifierFor(ca)
	yes := true
	f.Add(signNotification(f, ca, appletest.Notification{
		Type: "DID_RENEW", SignedDate: signedDate, Environment: "Production", AppAppleID: 1,
		Transaction: &apple.Transaction{TransactionID: "1", Price: 990, IsUpgraded: &yes},
		RenewalInfo: &apple.RenewalInfo{AutoRenewProductID: "p"},
	}))
	f.Add(sign(f, ca, map[string]any{"signedDate": 1738368000123.5}))
	f.Add(signWithHeader(f, ca, map[string]any{"alg": "ES256", "x5c": ca.X5C()[:2]}, map[string]any{}))
	f.Add(xcodeNotification())
	f.Add("")
	f.Add("..")

	f.Fuzz(func(t *testing.T, jws string) {
		payload, err := v.VerifyJWS(jws)
		if err != nil {
			if apple.ReasonOf(err) == "" || payload != nil || apple.IsRetryable(err) {
				t.Fatalf("VerifyJWS = %q, %v", payload, err)
			}
		} else if !json.Valid(payload) {
			t.Fatalf("verified payload %q is not JSON", payload)
		}
		n, nerr := v.VerifyNotification(jws)
		switch {
		case nerr == nil && err != nil:
			t.Fatalf("VerifyNotification accepted what VerifyJWS rejected: %v", err)
		case nerr == nil:
			if _, err := n.DecodedJSON(); err != nil {
				t.Fatalf("DecodedJSON: %v", err)
			}
		case n != nil || apple.ReasonOf(nerr) == "":
			t.Fatalf("VerifyNotification = %v, %v", n, nerr)
		}
	})
}

func FuzzDecodeNotification(f *testing.F) {
	ca := newCA(f)
	f.Add(xcodeNotification())
	f.Add(signNotification(f, ca, appletest.Notification{
		Type: "CONSUMPTION_REQUEST", ConsumptionRequestReason: "LEGAL",
		Transaction: &apple.Transaction{TransactionID: "1"}, RenewalInfo: &apple.RenewalInfo{},
	}))
	f.Add(signNotification(f, ca, appletest.Notification{AppTransaction: &apple.AppTransaction{AppTransactionID: "7"}}))
	f.Add(signNotification(f, ca, appletest.Notification{ExternalPurchaseToken: &apple.ExternalPurchaseToken{ExternalPurchaseID: "SANDBOX_1"}}))
	f.Add("e30." + b64url(`{"data":{"signedTransactionInfo":"x"}}`) + ".")

	f.Fuzz(func(t *testing.T, signedPayload string) {
		n, err := apple.DecodeNotification(signedPayload)
		if err != nil && apple.ReasonOf(err) != apple.ReasonMalformed {
			t.Fatalf("error %v is not malformed", err)
		}
		if n == nil {
			if err == nil {
				t.Fatal("nil notification without an error")
			}
			return
		}
		_ = n.Identity()
		doc, err := n.DecodedJSON()
		if err != nil {
			t.Fatalf("DecodedJSON: %v", err)
		}
		if !json.Valid(doc) {
			t.Fatalf("DecodedJSON %q is not JSON", doc)
		}
	})
}
