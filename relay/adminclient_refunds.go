package relay

import (
	"context"
	"net/url"
)

// RefundQuery are the filters of Refunds; zero fields are left out.
type RefundQuery struct {
	App, Outcome, Since string
	Limit               int
	Cursor              string
}

// Refunds lists refund ledger records (GET /api/v1/refunds).
func (c *AdminClient) Refunds(ctx context.Context, q RefundQuery) (RefundList, []byte, error) {
	return getJSON[RefundList](ctx, c, "/api/v1/refunds", queryValues("app", q.App, "outcome", q.Outcome,
		"since", q.Since, "limit", itoa(q.Limit), "cursor", q.Cursor))
}

// RefundStats returns the ledger's figures (GET /api/v1/refunds/stats); app
// and since may be empty (every app, the last 30 days).
func (c *AdminClient) RefundStats(ctx context.Context, app, since string) (RefundStatsDoc, []byte, error) {
	return getJSON[RefundStatsDoc](ctx, c, "/api/v1/refunds/stats", queryValues("app", app, "since", since))
}

// ConsumptionQuery are the filters of Consumption; zero fields are left out.
type ConsumptionQuery struct {
	App, State, Since string
	Limit             int
}

// Consumption lists CONSUMPTION_REQUEST answers (GET /api/v1/consumption).
func (c *AdminClient) Consumption(ctx context.Context, q ConsumptionQuery) (ConsumptionList, []byte, error) {
	return getJSON[ConsumptionList](ctx, c, "/api/v1/consumption", queryValues("app", q.App, "state", q.State,
		"since", q.Since, "limit", itoa(q.Limit)))
}

// ConsumptionAction sends now, cancels or overrides the pending answers of
// a transaction (POST /api/v1/consumption/{transactionId}).
func (c *AdminClient) ConsumptionAction(ctx context.Context, transactionID string, in ConsumptionActionRequest) (ConsumptionActionResult, []byte, error) {
	return postJSON[ConsumptionActionResult](ctx, c, "/api/v1/consumption/"+url.PathEscape(transactionID), in)
}
