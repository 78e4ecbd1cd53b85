package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// appendVerified stores a body and processes it as a verified notification
// carrying the given Apple work; it returns the state committed.
func appendVerified(t *testing.T, db *DB, uuid string, refund *RefundEvent, nc *NewConsumption) Processed {
	t.Helper()
	seq, err := db.Append(Incoming{App: "myapp", Body: []byte(`{"signedPayload":"x"}`), ReceivedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	state := StateVerified
	if refund == nil && nc == nil && uuid == "" {
		state = StateUnverified
	}
	done, err := db.Process([]Outcome{{Seq: seq, State: state, Verified: state == StateVerified, UUID: uuid, Refund: refund, Consumption: nc}})
	if err != nil {
		t.Fatal(err)
	}
	return done[0]
}

func consumptionRequest(txid, uuid string, received time.Time) (*RefundEvent, *NewConsumption) {
	ev := &RefundEvent{Type: RefundEventConsumptionRequest, TransactionID: txid, App: "myapp", Environment: "Sandbox",
		ProductID: "coins", Price: 4990, Currency: "EUR", Reason: "UNINTENDED_PURCHASE", UUID: uuid, ReceivedAt: received}
	nc := &NewConsumption{TransactionID: txid, App: "myapp", Environment: "Sandbox", ProductID: "coins", Price: 4990,
		Currency: "EUR", Reason: "UNINTENDED_PURCHASE", UUID: uuid, ReceivedAt: received,
		Deadline: received.Add(12 * time.Hour), SendAt: received.Add(time.Hour)}
	return ev, nc
}

func TestConsumptionJobIsWrittenWithTheVerifiedNotificationOnly(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	ev, nc := consumptionRequest("1000", "u1", t0)
	if p := appendVerified(t, db, "u1", ev, nc); p.State != StateVerified {
		t.Fatalf("state %s", p.State)
	}
	// A copy with the same UUID is a duplicate: no second request, no ledger event.
	if p := appendVerified(t, db, "u1", ev, nc); p.State != StateDuplicate {
		t.Fatalf("second copy is %s, want duplicate", p.State)
	}
	// An unverified outcome carrying work (the processor never sends one) writes nothing either.
	seq, _ := db.Append(Incoming{App: "myapp", Body: []byte(`{}`), ReceivedAt: t0})
	ev2, nc2 := consumptionRequest("2000", "u2", t0)
	if _, err := db.Process([]Outcome{{Seq: seq, State: StateUnverified, UUID: "u2", Refund: ev2, Consumption: nc2}}); err != nil {
		t.Fatal(err)
	}
	j, err := db.ConsumptionJob("1000")
	if err != nil || len(j.Requests) != 1 || j.Requests[0].State != ConsumptionPending || j.Requests[0].Seq != 1 {
		t.Fatalf("job = %+v, %v", j, err)
	}
	if _, err := db.ConsumptionJob("2000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unverified notification made a job: %v", err)
	}
	if _, err := db.Refund("2000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unverified notification made a ledger record: %v", err)
	}
	r, err := db.Refund("1000")
	if err != nil || r.Requests != 1 || len(r.Events) != 1 || r.Outcome != RefundRequested {
		t.Errorf("ledger = %+v, %v", r, err)
	}
}

func TestConsumptionDueHoldsOneKeyPerTransaction(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	ev, nc := consumptionRequest("1000", "u1", t0)
	appendVerified(t, db, "u1", ev, nc)
	ev, nc = consumptionRequest("1000", "u2", t0.Add(10*time.Minute)) // Apple asks again, new UUID
	appendVerified(t, db, "u2", ev, nc)

	due, next, err := db.ConsumptionDue(t0, 10, nil)
	if err != nil || len(due) != 0 || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("before the review delay: due %d, next %v, %v", len(due), next, err)
	}
	due, _, err = db.ConsumptionDue(t0.Add(2*time.Hour), 10, nil)
	if err != nil || len(due) != 1 || len(due[0].Requests) != 2 {
		t.Fatalf("due = %+v, %v; want one job with two requests", due, err)
	}
	if h := due[0].Head(); h != 0 {
		t.Fatalf("head %d, want 0", h)
	}
	if due, _, _ := db.ConsumptionDue(t0.Add(2*time.Hour), 10, func(string) bool { return true }); len(due) != 0 {
		t.Error("skipped (in flight) job returned")
	}

	// A retry moves the request later; the index follows.
	later := t0.Add(3 * time.Hour)
	if _, err := db.RecordConsumption("1000", 1, ConsumptionResult{State: ConsumptionPending, NextAt: later, Attempted: true, Status: 500, Error: "HTTP 500"}); err != nil {
		t.Fatal(err)
	}
	if due, next, _ := db.ConsumptionDue(t0.Add(2*time.Hour), 10, nil); len(due) != 0 || !next.Equal(later) {
		t.Fatalf("after a retry: due %d next %v", len(due), next)
	}
	answer := &ConsumptionAnswer{CustomerConsented: true, DeliveryStatus: "DELIVERED", RefundPreference: "GRANT_FULL"}
	j, err := db.RecordConsumption("1000", 1, ConsumptionResult{State: ConsumptionSent, At: later, Answer: answer, Source: "policy", Attempted: true, Status: 202})
	if err != nil {
		t.Fatal(err)
	}
	if r := j.Requests[0]; r.State != ConsumptionSent || r.Attempts != 2 || !r.InTime() || r.Answer.RefundPreference != "GRANT_FULL" {
		t.Errorf("request 1 = %+v", r)
	}
	// The second request is next, due at its own send time.
	due, _, _ = db.ConsumptionDue(later, 10, nil)
	if len(due) != 1 || due[0].Head() != 1 {
		t.Fatalf("second request not due: %+v", due)
	}
	if _, err := db.RecordConsumption("1000", 1, ConsumptionResult{State: ConsumptionSent}); !errors.Is(err, ErrNothingPending) {
		t.Errorf("recording a finished request again: %v", err)
	}
	b, err := db.ConsumptionBacklog()
	if err != nil || b.Pending != 1 || !b.EarliestDeadline.Equal(t0.Add(10*time.Minute+12*time.Hour)) {
		t.Errorf("backlog = %+v, %v", b, err)
	}
	r, _ := db.Refund("1000")
	if len(r.Answers) != 1 || r.Answers[0].State != ConsumptionSent || !r.Answers[0].InTime || r.Requests != 2 {
		t.Errorf("ledger = %+v", r)
	}
}

func TestUpdatePendingConsumption(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	ev, nc := consumptionRequest("1000", "u1", t0)
	appendVerified(t, db, "u1", ev, nc)
	if _, _, err := db.UpdatePendingConsumption("9999", func(*ConsumptionRequest) {}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown transaction: %v", err)
	}
	pref := "GRANT_PRORATED"
	j, n, err := db.UpdatePendingConsumption("1000", func(r *ConsumptionRequest) {
		r.Override = &ConsumptionFields{RefundPreference: &pref}
		r.SendAt = t0
	})
	if err != nil || n != 1 || *j.Requests[0].Override.RefundPreference != pref {
		t.Fatalf("override: %+v %d %v", j, n, err)
	}
	if due, _, _ := db.ConsumptionDue(t0, 10, nil); len(due) != 1 {
		t.Fatal("send now did not make the job due")
	}
	_, _, err = db.UpdatePendingConsumption("1000", func(r *ConsumptionRequest) {
		r.State, r.Error, r.FinishedAt = ConsumptionCancelled, "operator", t0
	})
	if err != nil {
		t.Fatal(err)
	}
	if due, next, _ := db.ConsumptionDue(t0.Add(24*time.Hour), 10, nil); len(due) != 0 || !next.IsZero() {
		t.Error("cancelled request still due")
	}
	if _, _, err := db.UpdatePendingConsumption("1000", func(*ConsumptionRequest) {}); !errors.Is(err, ErrNothingPending) {
		t.Errorf("nothing pending: %v", err)
	}
	if r, _ := db.Refund("1000"); len(r.Answers) != 1 || r.Answers[0].State != ConsumptionCancelled {
		t.Errorf("ledger answers = %+v", r.Answers)
	}
}

func TestAppleDecisionCancelsPendingAnswers(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	ev, nc := consumptionRequest("1000", "u1", t0)
	appendVerified(t, db, "u1", ev, nc)
	appendVerified(t, db, "u2", &RefundEvent{Type: RefundEventRefund, TransactionID: "1000", App: "myapp", Price: 4990, Currency: "EUR", UUID: "u2", ReceivedAt: t0.Add(time.Minute)}, nil)
	j, _ := db.ConsumptionJob("1000")
	if r := j.Requests[0]; r.State != ConsumptionCancelled || r.Error == "" {
		t.Errorf("request = %+v, want cancelled", r)
	}
	if b, _ := db.ConsumptionBacklog(); b.Pending != 0 {
		t.Errorf("backlog %+v", b)
	}
}

func TestConsumptionJobsFilters(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	for i := range 3 {
		txid := fmt.Sprint(1000 + i)
		ev, nc := consumptionRequest(txid, "u"+txid, t0.Add(time.Duration(i)*time.Minute))
		appendVerified(t, db, "u"+txid, ev, nc)
	}
	db.RecordConsumption("1001", 1, ConsumptionResult{State: ConsumptionDryRun, At: t0})
	all, complete, err := db.ConsumptionJobs(ConsumptionFilter{}, 10)
	if err != nil || !complete || len(all) != 3 || all[0].TransactionID != "1002" {
		t.Fatalf("all = %d jobs (first %v), %v", len(all), all[0].TransactionID, err)
	}
	if got, _, _ := db.ConsumptionJobs(ConsumptionFilter{State: ConsumptionDryRun}, 10); len(got) != 1 || got[0].TransactionID != "1001" {
		t.Errorf("dry_run filter: %d", len(got))
	}
	if got, _, _ := db.ConsumptionJobs(ConsumptionFilter{App: "other"}, 10); len(got) != 0 {
		t.Errorf("app filter: %d", len(got))
	}
	if got, _, _ := db.ConsumptionJobs(ConsumptionFilter{}, 2); len(got) != 2 {
		t.Errorf("limit: %d", len(got))
	}
}
