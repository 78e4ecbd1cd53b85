package apple_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestVerifyNotification(t *testing.T) {
	ca := newCA(t)
	yes := true
	reason := apple.RevocationReasonIssue
	signed := signNotification(t, ca, appletest.Notification{
		Type:                     "REFUND",
		UUID:                     "002e14d5-51f5-4503-b5a8-c3a1af68eb20",
		SignedDate:               signedDate,
		BundleID:                 "com.example.app",
		AppAppleID:               1234567890,
		Environment:              "Production",
		BundleVersion:            "42",
		Status:                   apple.SubscriptionStatusRevoked,
		ConsumptionRequestReason: "UNINTENDED_PURCHASE",
		Transaction: &apple.Transaction{
			TransactionID:         "2000000000000001",
			OriginalTransactionID: "2000000000000000",
			ProductID:             "com.example.coins",
			Type:                  apple.ProductTypeConsumable,
			Quantity:              1,
			Price:                 990,
			Currency:              "EUR",
			PurchaseDate:          apple.TimestampOf(t0),
			RevocationDate:        apple.TimestampOf(signedDate),
			RevocationReason:      &reason,
			RevocationType:        apple.RevocationTypeRefundProrated,
			RevocationPercentage:  50000,
			OfferDiscountType:     apple.OfferDiscountTypeFreeTrial,
			AppAccountToken:       "7e3fb20b-4cdb-47cc-936d-99d65f608138",
			TransactionReason:     apple.TransactionReasonPurchase,
			OfferPeriod:           "P1M",
			AppTransactionID:      "704281826475823140",
			IsUpgraded:            &yes,
		},
		RenewalInfo: &apple.RenewalInfo{
			OriginalTransactionID:   "2000000000000000",
			AutoRenewProductID:      "com.example.monthly",
			RenewalPrice:            4990,
			Currency:                "EUR",
			EligibleWinBackOfferIDs: []string{"wb1", "wb2"},
			IsInBillingRetryPeriod:  new(bool),
		},
	})
	n, err := verifierFor(ca).VerifyNotification(signed)
	if err != nil {
		t.Fatal(err)
	}
	if n.NotificationType != apple.NotificationTypeRefund || n.NotificationUUID != "002e14d5-51f5-4503-b5a8-c3a1af68eb20" ||
		n.Version != "2.0" || n.SignedDate != apple.TimestampOf(signedDate) {
		t.Errorf("notification %+v", n)
	}
	d := n.Data
	if d == nil || d.BundleID != "com.example.app" || d.AppAppleID != 1234567890 || d.Environment != apple.EnvironmentProduction ||
		d.BundleVersion != "42" || d.Status != apple.SubscriptionStatusRevoked ||
		d.ConsumptionRequestReason != apple.ConsumptionRequestReasonUnintendedPurchase || d.SignedTransactionInfo == "" {
		t.Errorf("data %+v", d)
	}
	tx := n.Transaction
	if tx == nil {
		t.Fatal("no transaction")
	}
	if tx.TransactionID != "2000000000000001" || tx.Price != 990 || tx.Currency != "EUR" || tx.BundleID != "com.example.app" ||
		tx.Environment != apple.EnvironmentProduction || tx.SignedDate != apple.TimestampOf(signedDate) ||
		tx.RevocationReason == nil || *tx.RevocationReason != apple.RevocationReasonIssue ||
		tx.RevocationType != apple.RevocationTypeRefundProrated || tx.RevocationPercentage != 50000 ||
		tx.OfferDiscountType != apple.OfferDiscountTypeFreeTrial || tx.OfferPeriod != "P1M" ||
		tx.AppTransactionID != "704281826475823140" || tx.IsUpgraded == nil || !*tx.IsUpgraded ||
		tx.PurchaseDate.Time() != t0 {
		t.Errorf("transaction %+v", tx)
	}
	if !json.Valid(tx.Raw) || !bytes.Contains(tx.Raw, []byte(`"price":990`)) {
		t.Errorf("transaction raw %s", tx.Raw)
	}
	r := n.RenewalInfo
	if r == nil || r.AutoRenewProductID != "com.example.monthly" || r.RenewalPrice != 4990 || len(r.EligibleWinBackOfferIDs) != 2 ||
		r.IsInBillingRetryPeriod == nil || *r.IsInBillingRetryPeriod {
		t.Errorf("renewal info %+v", r)
	}
	if n.AppTransaction != nil {
		t.Errorf("app transaction %+v", n.AppTransaction)
	}
	payload, err := verifierFor(ca).VerifyJWS(signed)
	if err != nil || !bytes.Equal(payload, n.Raw) {
		t.Errorf("Raw %s differs from the signed payload %s (%v)", n.Raw, payload, err)
	}
}

func TestVerifyNotificationAppData(t *testing.T) {
	ca := newCA(t)
	n, err := verifierFor(ca).VerifyNotification(signNotification(t, ca, appletest.Notification{
		Type:           "SOMETHING_ABOUT_THE_APP",
		BundleID:       "com.example.app",
		AppAppleID:     99,
		Environment:    "Sandbox",
		SignedDate:     signedDate,
		AppTransaction: &apple.AppTransaction{AppTransactionID: "71134", OriginalPlatform: apple.PurchasePlatformIOS},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if n.Data != nil || n.AppData == nil || n.AppData.SignedAppTransactionInfo == "" {
		t.Fatalf("appData %+v, data %+v", n.AppData, n.Data)
	}
	at := n.AppTransaction
	if at == nil || at.AppTransactionID != "71134" || at.ReceiptType != apple.EnvironmentSandbox || at.AppAppleID != 99 ||
		at.ReceiptCreationDate != apple.TimestampOf(signedDate) || at.OriginalPlatform != apple.PurchasePlatformIOS || len(at.Raw) == 0 {
		t.Errorf("app transaction %+v", at)
	}
	if id := n.Identity(); id != (apple.Identity{BundleID: "com.example.app", AppAppleID: 99, Environment: "Sandbox"}) {
		t.Errorf("identity %+v", id)
	}
}

func TestVerifyNotificationNestedFailures(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	tests := []struct {
		name  string
		data  map[string]any
		want  apple.Reason
		field string
	}{
		{
			name:  "transaction signed by another CA",
			data:  map[string]any{"signedTransactionInfo": sign(t, other, map[string]any{"signedDate": apple.TimestampOf(signedDate)})},
			want:  apple.ReasonUntrustedRoot,
			field: "signedTransactionInfo",
		},
		{
			name:  "renewal info not a JWS",
			data:  map[string]any{"signedRenewalInfo": "garbage"},
			want:  apple.ReasonMalformed,
			field: "signedRenewalInfo",
		},
		{
			name:  "transaction payload not an object",
			data:  map[string]any{"signedTransactionInfo": sign(t, ca, []string{"x"})},
			want:  apple.ReasonMalformed,
			field: "signedTransactionInfo",
		},
		{
			name:  "renewal info signed after the chain expired",
			data:  map[string]any{"signedRenewalInfo": sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(caTo.AddDate(0, 0, 1))})},
			want:  apple.ReasonExpiredChain,
			field: "signedRenewalInfo",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := signNotification(t, ca, appletest.Notification{Extra: map[string]any{"data": tt.data}})
			n, err := verifierFor(ca).VerifyNotification(signed)
			if n != nil || apple.ReasonOf(err) != tt.want || !strings.Contains(err.Error(), tt.field+": ") {
				t.Fatalf("VerifyNotification = %v, %v; want reason %s naming %s", n, err, tt.want, tt.field)
			}
		})
	}
}

func TestVerifyTransactionAndRenewalInfo(t *testing.T) {
	ca := newCA(t)
	v := verifierFor(ca)
	tx, err := v.VerifyTransaction(sign(t, ca, json.RawMessage(`{"transactionId":"1","price":1990,"currency":"USD","signedDate":1738368000000,"type":"Auto-Renewable Subscription","offerType":4,"billingPlanType":"MONTHLY","commitmentInfo":{"billingPeriodNumber":3,"totalBillingPeriods":12,"commitmentPrice":9990,"commitmentExpiresDate":1767225600000},"advancedCommerceInfo":{"items":[{"SKU":"a"}]}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if tx.TransactionID != "1" || tx.Price != 1990 || tx.Type != apple.ProductTypeAutoRenewable || tx.OfferType != apple.OfferTypeWinBack ||
		tx.BillingPlanType != apple.BillingPlanTypeMonthly || tx.CommitmentInfo == nil || tx.CommitmentInfo.TotalBillingPeriods != 12 ||
		tx.CommitmentInfo.CommitmentPrice != 9990 || string(tx.AdvancedCommerceInfo) != `{"items":[{"SKU":"a"}]}` {
		t.Errorf("transaction %+v", tx)
	}
	ri, err := v.VerifyRenewalInfo(sign(t, ca, json.RawMessage(`{"autoRenewStatus":0,"priceIncreaseStatus":0,"expirationIntent":2,"renewalBillingPlanType":"BILLED_UPFRONT","commitmentInfo":{"commitmentAutoRenewStatus":1,"commitmentRenewalPrice":100},"signedDate":1738368000000}`)))
	if err != nil {
		t.Fatal(err)
	}
	if ri.AutoRenewStatus == nil || *ri.AutoRenewStatus != apple.AutoRenewStatusOff || ri.PriceIncreaseStatus == nil ||
		ri.ExpirationIntent != apple.ExpirationIntentBillingError || ri.RenewalBillingPlanType != apple.BillingPlanTypeBilledUpfront ||
		ri.CommitmentInfo == nil || ri.CommitmentInfo.CommitmentAutoRenewStatus == nil || ri.CommitmentInfo.CommitmentRenewalPrice != 100 {
		t.Errorf("renewal info %+v", ri)
	}
	if _, err := v.VerifyTransaction(sign(t, ca, json.RawMessage(`{"signedDate":1738368000000,"price":"free"}`))); apple.ReasonOf(err) != apple.ReasonMalformed {
		t.Errorf("price as a string: %v, want malformed", err)
	}
}

func TestUnknownValuesAndFieldsKept(t *testing.T) {
	ca := newCA(t)
	tx := sign(t, ca, json.RawMessage(`{"transactionId":"9","type":"Brand New Type","offerType":9,"revocationType":"PARTIAL_SOMETHING","inAppOwnershipType":"BORROWED","environment":"Staging","futureTxField":{"a":[1,2]},"signedDate":1738368000000}`))
	signed := signNotification(t, ca, appletest.Notification{
		Type:    "SOMETHING_NEW",
		Subtype: "NEWER_STILL",
		Extra: map[string]any{
			"data":           map[string]any{"bundleId": "com.example.app", "environment": "Sandbox", "status": 77, "consumptionRequestReason": "BORED", "futureDataField": true, "signedTransactionInfo": tx},
			"futureTopLevel": map[string]any{"nested": "value"},
		},
	})
	n, err := verifierFor(ca).VerifyNotification(signed)
	if err != nil {
		t.Fatal(err)
	}
	if n.NotificationType != "SOMETHING_NEW" || n.Subtype != "NEWER_STILL" || n.Data.Status != 77 || n.Data.ConsumptionRequestReason != "BORED" {
		t.Errorf("notification %+v, data %+v", n, n.Data)
	}
	if tr := n.Transaction; tr.Type != "Brand New Type" || tr.OfferType != 9 || tr.RevocationType != "PARTIAL_SOMETHING" ||
		tr.InAppOwnershipType != "BORROWED" || tr.Environment != "Staging" {
		t.Errorf("transaction %+v", tr)
	}
	for _, want := range []string{`"futureTopLevel":{"nested":"value"}`, `"futureDataField":true`} {
		if !bytes.Contains(n.Raw, []byte(want)) {
			t.Errorf("notification Raw %s lacks %s", n.Raw, want)
		}
	}
	if !bytes.Contains(n.Transaction.Raw, []byte(`"futureTxField":{"a":[1,2]}`)) {
		t.Errorf("transaction Raw %s lacks the unknown field", n.Transaction.Raw)
	}
	doc, err := n.DecodedJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"futureTopLevel":{"nested":"value"}`, `"futureTxField":{"a":[1,2]}`} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("DecodedJSON %s lacks %s", doc, want)
		}
	}
}

// xcodeNotification is shaped like Xcode/StoreKit Testing data: fractional millisecond dates,
// environment Xcode, and a chain Apple did not sign. It is fixed so that its decoded form can
// be a golden file.
func xcodeNotification() string {
	header := `{"alg":"ES256","x5c":["MIIB"],"kid":"Apple_Xcode_Key"}`
	tx := unsignedJWS(header, `{"transactionId":"0","originalTransactionId":"0","bundleId":"com.example.app","productId":"coins","purchaseDate":1738368000123.456,"originalPurchaseDate":1738368000123.456,"quantity":1,"type":"Consumable","inAppOwnershipType":"PURCHASED","signedDate":1738368000999.9,"environment":"Xcode","transactionReason":"PURCHASE","storefront":"USA","storefrontId":"143441","price":990,"currency":"USD","deviceVerification":"abc"}`)
	ri := unsignedJWS(header, `{"originalTransactionId":"0","autoRenewProductId":"monthly","productId":"monthly","autoRenewStatus":1,"signedDate":1738368000999.9,"environment":"Xcode","renewalDate":1740787200000.5}`)
	return unsignedJWS(header, `{"notificationType":"CONSUMPTION_REQUEST","subtype":null,"notificationUUID":"5f3a0a5e-0c27-4a57-9b9f-2a7c2c1a3e10","data":{"bundleId":"com.example.app","bundleVersion":"1","environment":"Xcode","signedTransactionInfo":"`+tx+`","signedRenewalInfo":"`+ri+`","consumptionRequestReason":"UNINTENDED_PURCHASE"},"version":"2.0","signedDate":1738368001234.5678}`)
}

func TestDecodeNotificationXcode(t *testing.T) {
	signed := xcodeNotification()
	n, err := apple.DecodeNotification(signed)
	if err != nil {
		t.Fatal(err)
	}
	if n.SignedDate != 1738368001234 || n.Transaction.PurchaseDate != 1738368000123 || n.Transaction.SignedDate != 1738368000999 ||
		n.RenewalInfo.RenewalDate != 1740787200000 {
		t.Errorf("dates %d %d %d %d", n.SignedDate, n.Transaction.PurchaseDate, n.Transaction.SignedDate, n.RenewalInfo.RenewalDate)
	}
	if !apple.IsUnsignedEnvironment(n.Identity().Environment) {
		t.Errorf("environment %q", n.Identity().Environment)
	}
	// Not signed by a trusted chain: verification must refuse it.
	if _, err := apple.NewVerifier(nil).VerifyNotification(signed); apple.ReasonOf(err) != apple.ReasonBadChainLength {
		t.Errorf("VerifyNotification: %v, want bad_chain_length", err)
	}

	got, err := n.DecodedJSON()
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	golden := filepath.Join("testdata", "decoded_xcode.golden.json")
	if *update {
		if err := os.WriteFile(golden, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(indented.Bytes(), want) {
		t.Errorf("DecodedJSON differs from %s (run go test -update):\n%s", golden, indented.Bytes())
	}
}

func TestDecodeNotificationErrors(t *testing.T) {
	good := b64url(`{"notificationUUID":"u1","data":{"signedTransactionInfo":"not-a-jws"}}`)
	tests := []struct {
		name     string
		in       string
		wantUUID string // "" means no Notification comes back
	}{
		{"empty", "", ""},
		{"one part", "abc", ""},
		{"payload not base64url", "e30.***.sig", ""},
		{"payload not JSON", "e30." + b64url("nope") + ".sig", ""},
		{"payload an array", "e30." + b64url("[]") + ".sig", ""},
		{"payload with wrongly typed field", "e30." + b64url(`{"data":{"appAppleId":"12"}}`) + ".sig", ""},
		{"nested JWS malformed", "e30." + good + ".sig", "u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := apple.DecodeNotification(tt.in)
			if apple.ReasonOf(err) != apple.ReasonMalformed {
				t.Fatalf("error %v, want malformed", err)
			}
			switch {
			case tt.wantUUID == "" && n != nil:
				t.Fatalf("notification %+v returned", n)
			case tt.wantUUID != "" && (n == nil || n.NotificationUUID != tt.wantUUID):
				t.Fatalf("notification %+v, want UUID %s", n, tt.wantUUID)
			}
		})
	}
}

func TestDecodedJSONShape(t *testing.T) {
	ca := newCA(t)
	n, err := verifierFor(ca).VerifyNotification(signNotification(t, ca, appletest.Notification{Type: "TEST"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.DecodedJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 4 || string(doc["transaction"]) != "null" || string(doc["renewalInfo"]) != "null" || string(doc["appTransaction"]) != "null" {
		t.Errorf("document %s", got)
	}
	if !bytes.Equal(doc["notification"], n.Raw) {
		t.Errorf("notification %s, want %s", doc["notification"], n.Raw)
	}

	// A Notification built in code, without Raw, is encoded from its fields.
	built := &apple.Notification{NotificationType: "TEST", Transaction: &apple.Transaction{Price: 5}}
	got, err = built.DecodedJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"notification":{"notificationType":"TEST"},"transaction":{"price":5},"renewalInfo":null,"appTransaction":null}`; string(got) != want {
		t.Errorf("DecodedJSON = %s, want %s", got, want)
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    apple.Timestamp
		wantErr bool
	}{
		{in: `1738368000000`, want: 1738368000000},
		{in: `1738368000123.999`, want: 1738368000123},
		{in: `-1.5`, want: -1},
		{in: `1e3`, want: 1000},
		{in: `"1738368000000"`, want: 1738368000000},
		{in: `"1.5"`, want: 1},
		{in: `0`, want: 0},
		{in: `null`, want: 42}, // unchanged
		{in: `9223372036854775807`, want: 9223372036854775807},
		{in: `9223372036854775808`, wantErr: true},
		{in: `1e300`, wantErr: true},
		{in: `"soon"`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `""`, wantErr: true},
	}
	for _, tt := range tests {
		ts := apple.Timestamp(42)
		err := json.Unmarshal([]byte(tt.in), &ts)
		if (err != nil) != tt.wantErr || (!tt.wantErr && ts != tt.want) {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d (error %v)", tt.in, ts, err, tt.want, tt.wantErr)
		}
	}
	b, err := json.Marshal(struct {
		A apple.Timestamp `json:"a"`
		B apple.Timestamp `json:"b,omitempty"`
	}{A: 1738368000123})
	if err != nil || string(b) != `{"a":1738368000123}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	if got := apple.Timestamp(1738368000123).String(); got != "2025-02-01T00:00:00.123Z" {
		t.Errorf("String() = %s", got)
	}
	if got := apple.TimestampOf(t0).Time(); !got.Equal(t0) {
		t.Errorf("round trip %s, want %s", got, t0)
	}
}
