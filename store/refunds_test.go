package store

import (
	"fmt"
	"testing"
	"time"
)

func TestRefundLedgerAndStats(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	event := func(typ, txid string, price int64, currency string, at time.Time, edit ...func(*RefundEvent)) {
		t.Helper()
		ev := &RefundEvent{Type: typ, TransactionID: txid, App: "myapp", Environment: "Production", ProductID: "coins",
			Price: price, Currency: currency, UUID: fmt.Sprintf("%s-%s-%d", typ, txid, at.UnixNano()), ReceivedAt: at}
		for _, e := range edit {
			e(ev)
		}
		appendVerified(t, db, ev.UUID, ev, nil)
	}
	// 1: asked, refunded in full, then reversed. 2: asked, declined (won back).
	// 3: prorated refund of 25 %. 4: declined, in USD. 5: before the period.
	event(RefundEventConsumptionRequest, "1", 9990, "EUR", t0, func(e *RefundEvent) { e.Reason = "UNINTENDED_PURCHASE" })
	event(RefundEventRefund, "1", 9990, "EUR", t0.Add(time.Hour), func(e *RefundEvent) { e.RevocationType = "REFUND_FULL" })
	event(RefundEventReversed, "1", 9990, "EUR", t0.Add(2*time.Hour))
	event(RefundEventConsumptionRequest, "2", 4990, "EUR", t0, func(e *RefundEvent) { e.Reason = "OTHER" })
	event(RefundEventDeclined, "2", 4990, "EUR", t0.Add(time.Hour))
	event(RefundEventRefund, "3", 8000, "EUR", t0.Add(time.Hour), func(e *RefundEvent) {
		e.RevocationType, e.RevocationPercentage = "REFUND_PRORATED", 25_000
	})
	event(RefundEventDeclined, "4", 1990, "USD", t0.Add(time.Hour))
	event(RefundEventRefund, "5", 100, "EUR", t0.Add(-48*time.Hour))

	r1, err := db.Refund("1")
	if err != nil {
		t.Fatal(err)
	}
	if r1.Outcome != RefundReversed || r1.RefundedAmount != 0 || len(r1.Events) != 3 || r1.Events[2].Amount != 9990 ||
		r1.Reasons[0] != "UNINTENDED_PURCHASE" || r1.Price != 9990 || r1.Currency != "EUR" {
		t.Errorf("record 1 = %+v", r1)
	}
	if r3, _ := db.Refund("3"); r3.RefundedAmount != 2000 || r3.Outcome != RefundRefunded {
		t.Errorf("prorated refund = %+v, want 2000 refunded", r3)
	}

	stats, err := db.RefundStats(t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s := stats["myapp"]
	if s == nil {
		t.Fatal("no stats for myapp")
	}
	if s.Requests != 2 || s.Refunded != 2 || s.Declined != 2 || s.Reversed != 1 {
		t.Errorf("counts = %+v", *s)
	}
	if got := s.Amounts["EUR"]; got != (RefundAmounts{Refunded: 9990 + 2000, Declined: 4990, Reversed: 9990}) {
		t.Errorf("EUR = %+v", got)
	}
	if got := s.Amounts["USD"]; got != (RefundAmounts{Declined: 1990}) {
		t.Errorf("USD = %+v", got)
	}
	if got := s.WinBackRate(); got != 0.5 {
		t.Errorf("win-back rate %v, want 0.5", got)
	}
	all, _ := db.RefundStats(time.Time{})
	if all["myapp"].Refunded != 3 {
		t.Errorf("all time: %d refunds, want 3", all["myapp"].Refunded)
	}

	// Paging, newest first by first sight.
	var seen []string
	var cursor []byte
	for {
		page, next, err := db.Refunds(RefundFilter{}, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			seen = append(seen, r.TransactionID)
		}
		if next == nil {
			break
		}
		cursor = next
	}
	if fmt.Sprint(seen) != "[4 3 2 1 5]" {
		t.Errorf("pages = %v", seen)
	}
	if got, _, _ := db.Refunds(RefundFilter{Outcome: RefundDeclined}, nil, 10); len(got) != 2 {
		t.Errorf("declined: %d records", len(got))
	}
	if got, _, _ := db.Refunds(RefundFilter{Since: t0}, nil, 10); len(got) != 4 {
		t.Errorf("since: %d records, want 4", len(got))
	}
}
