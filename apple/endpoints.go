package apple

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// TransactionInfoResponse is the answer of Get Transaction Info.
type TransactionInfoResponse struct {
	SignedTransactionInfo string `json:"signedTransactionInfo"`

	// Transaction is SignedTransactionInfo verified and decoded; nil without a Verifier.
	Transaction *Transaction `json:"-"`
}

// GetTransactionInfo gets one transaction (GET /inApps/v1/transactions/{transactionId}).
// transactionID may be any transaction identifier of the customer, also an original one.
func (c *Client) GetTransactionInfo(ctx context.Context, transactionID string) (*TransactionInfoResponse, error) {
	const ep = EndpointGetTransactionInfo
	if transactionID == "" {
		return nil, invalidRequest(ep, "empty transaction id")
	}
	out := new(TransactionInfoResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodGet, path: "/inApps/v1/transactions/" + url.PathEscape(transactionID), out: out}); err != nil {
		return nil, err
	}
	if c.verifier != nil && out.SignedTransactionInfo != "" {
		t, err := c.verifier.VerifyTransaction(out.SignedTransactionInfo)
		if err != nil {
			return nil, verifyAnswerErr(ep, "signedTransactionInfo", err)
		}
		out.Transaction = t
	}
	return out, nil
}

// GetTransactionInfoAnyEnvironment finds a transaction whose environment is unknown, the way
// Apple documents for Get Transaction Info: it asks production and, only if Production answers
// 404 with errorCode 4040010 (transaction id not found), asks sandbox. It returns the answer
// and the environment that gave it. Every other error of Production is returned as is.
func GetTransactionInfoAnyEnvironment(ctx context.Context, production, sandbox *Client, transactionID string) (*TransactionInfoResponse, Environment, error) {
	out, err := production.GetTransactionInfo(ctx, transactionID)
	if err == nil {
		return out, production.Environment(), nil
	}
	if !isTransactionIDNotFound(err) || sandbox == nil {
		return nil, "", err
	}
	out, err = sandbox.GetTransactionInfo(ctx, transactionID)
	if err != nil {
		return nil, "", err
	}
	return out, sandbox.Environment(), nil
}

func isTransactionIDNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == ErrorCodeTransactionIDNotFound
}

// TransactionHistoryRequest filters Get Transaction History. Zero fields are not sent.
type TransactionHistoryRequest struct {
	StartDate                    Timestamp          // transactions purchased at or after
	EndDate                      Timestamp          // transactions purchased before
	ProductIDs                   []string           // productId, repeatable
	ProductTypes                 []HistoryProduct   // productType, repeatable
	Sort                         HistorySort        // ASCENDING (Apple's default) or DESCENDING
	SubscriptionGroupIdentifiers []string           // subscriptionGroupIdentifier, repeatable
	InAppOwnershipType           InAppOwnershipType // FAMILY_SHARED or PURCHASED
	Revoked                      *bool              // only revoked (true) or only not revoked (false)
}

// HistoryProduct is a productType filter of Get Transaction History.
type HistoryProduct string

// Product type filters.
const (
	HistoryProductAutoRenewable HistoryProduct = "AUTO_RENEWABLE"
	HistoryProductNonRenewable  HistoryProduct = "NON_RENEWABLE"
	HistoryProductConsumable    HistoryProduct = "CONSUMABLE"
	HistoryProductNonConsumable HistoryProduct = "NON_CONSUMABLE"
)

// HistorySort is the order of Get Transaction History, by date of last modification.
type HistorySort string

// Sort orders.
const (
	HistorySortAscending  HistorySort = "ASCENDING"
	HistorySortDescending HistorySort = "DESCENDING"
)

func (r TransactionHistoryRequest) query(revision string) url.Values {
	q := url.Values{}
	if revision != "" {
		q.Set("revision", revision)
	}
	if r.StartDate != 0 {
		q.Set("startDate", strconv.FormatInt(int64(r.StartDate), 10))
	}
	if r.EndDate != 0 {
		q.Set("endDate", strconv.FormatInt(int64(r.EndDate), 10))
	}
	for _, p := range r.ProductIDs {
		q.Add("productId", p)
	}
	for _, p := range r.ProductTypes {
		q.Add("productType", string(p))
	}
	if r.Sort != "" {
		q.Set("sort", string(r.Sort))
	}
	for _, g := range r.SubscriptionGroupIdentifiers {
		q.Add("subscriptionGroupIdentifier", g)
	}
	if r.InAppOwnershipType != "" {
		q.Set("inAppOwnershipType", string(r.InAppOwnershipType))
	}
	if r.Revoked != nil {
		q.Set("revoked", strconv.FormatBool(*r.Revoked))
	}
	return q
}

// HistoryResponse is a page of Get Transaction History.
type HistoryResponse struct {
	Revision           string      `json:"revision"` // pass to the next call for the next page
	HasMore            bool        `json:"hasMore"`
	BundleID           string      `json:"bundleId"`
	AppAppleID         int64       `json:"appAppleId"`
	Environment        Environment `json:"environment"`
	SignedTransactions []string    `json:"signedTransactions"`

	// Transactions are SignedTransactions verified and decoded, in order; nil without a
	// Verifier.
	Transactions []*Transaction `json:"-"`
}

// GetTransactionHistory gets one page of up to 20 of the customer's transactions (GET
// /inApps/v2/history/{transactionId}). Pass "" as revision for the first page, then the
// previous page's Revision with the same filters; see TransactionHistoryPages.
func (c *Client) GetTransactionHistory(ctx context.Context, transactionID, revision string, filter TransactionHistoryRequest) (*HistoryResponse, error) {
	const ep = EndpointGetTransactionHistory
	if transactionID == "" {
		return nil, invalidRequest(ep, "empty transaction id")
	}
	out := new(HistoryResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodGet, path: "/inApps/v2/history/" + url.PathEscape(transactionID), query: filter.query(revision), out: out}); err != nil {
		return nil, err
	}
	var err error
	if out.Transactions, err = c.verifyTransactions(ep, out.SignedTransactions); err != nil {
		return nil, err
	}
	return out, nil
}

// TransactionHistoryPages walks all pages of Get Transaction History. It stops at the first
// error, which it yields.
func (c *Client) TransactionHistoryPages(ctx context.Context, transactionID string, filter TransactionHistoryRequest) iter.Seq2[*HistoryResponse, error] {
	return pages(EndpointGetTransactionHistory, "revision",
		func(revision string) (*HistoryResponse, error) {
			return c.GetTransactionHistory(ctx, transactionID, revision, filter)
		},
		func(p *HistoryResponse) (bool, string) { return p.HasMore, p.Revision })
}

// StatusResponse is the answer of Get All Subscription Statuses.
type StatusResponse struct {
	Environment Environment               `json:"environment"`
	BundleID    string                    `json:"bundleId"`
	AppAppleID  int64                     `json:"appAppleId"`
	Data        []SubscriptionGroupStatus `json:"data"`
}

// SubscriptionGroupStatus holds the latest transactions of one subscription group
// (SubscriptionGroupIdentifierItem).
type SubscriptionGroupStatus struct {
	SubscriptionGroupIdentifier string            `json:"subscriptionGroupIdentifier"`
	LastTransactions            []LastTransaction `json:"lastTransactions"`
}

// LastTransaction is the latest transaction and renewal info of one subscription
// (lastTransactionsItem).
type LastTransaction struct {
	Status                SubscriptionStatus `json:"status"`
	OriginalTransactionID string             `json:"originalTransactionId"`
	SignedTransactionInfo string             `json:"signedTransactionInfo"`
	SignedRenewalInfo     string             `json:"signedRenewalInfo"`

	// Verified and decoded signed data; nil without a Verifier.
	Transaction *Transaction `json:"-"`
	RenewalInfo *RenewalInfo `json:"-"`
}

// GetAllSubscriptionStatuses gets the status of all the customer's auto-renewable
// subscriptions (GET /inApps/v1/subscriptions/{transactionId}), optionally only those with
// the given statuses.
func (c *Client) GetAllSubscriptionStatuses(ctx context.Context, transactionID string, status ...SubscriptionStatus) (*StatusResponse, error) {
	const ep = EndpointGetAllSubscriptionStatuses
	if transactionID == "" {
		return nil, invalidRequest(ep, "empty transaction id")
	}
	var q url.Values
	for _, s := range status {
		if q == nil {
			q = url.Values{}
		}
		q.Add("status", strconv.Itoa(int(s)))
	}
	out := new(StatusResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodGet, path: "/inApps/v1/subscriptions/" + url.PathEscape(transactionID), query: q, out: out}); err != nil {
		return nil, err
	}
	if c.verifier == nil {
		return out, nil
	}
	for i := range out.Data {
		for j := range out.Data[i].LastTransactions {
			lt := &out.Data[i].LastTransactions[j]
			if lt.SignedTransactionInfo != "" {
				t, err := c.verifier.VerifyTransaction(lt.SignedTransactionInfo)
				if err != nil {
					return nil, verifyAnswerErr(ep, "signedTransactionInfo", err)
				}
				lt.Transaction = t
			}
			if lt.SignedRenewalInfo != "" {
				r, err := c.verifier.VerifyRenewalInfo(lt.SignedRenewalInfo)
				if err != nil {
					return nil, verifyAnswerErr(ep, "signedRenewalInfo", err)
				}
				lt.RenewalInfo = r
			}
		}
	}
	return out, nil
}

// OrderLookupStatus says whether an order ID is valid (0) or not (1).
type OrderLookupStatus int32

// Order lookup statuses.
const (
	OrderLookupStatusValid   OrderLookupStatus = 0
	OrderLookupStatusInvalid OrderLookupStatus = 1
)

// OrderLookupResponse is the answer of Look Up Order ID.
type OrderLookupResponse struct {
	Status             OrderLookupStatus `json:"status"`
	SignedTransactions []string          `json:"signedTransactions"`

	// Transactions are SignedTransactions verified and decoded; nil without a Verifier.
	Transactions []*Transaction `json:"-"`
}

// LookUpOrderID gets the transactions of an order, by the order ID on the customer's receipt
// email (GET /inApps/v1/lookup/{orderId}).
func (c *Client) LookUpOrderID(ctx context.Context, orderID string) (*OrderLookupResponse, error) {
	const ep = EndpointLookUpOrderID
	if orderID == "" {
		return nil, invalidRequest(ep, "empty order id")
	}
	out := new(OrderLookupResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodGet, path: "/inApps/v1/lookup/" + url.PathEscape(orderID), out: out}); err != nil {
		return nil, err
	}
	var err error
	if out.Transactions, err = c.verifyTransactions(ep, out.SignedTransactions); err != nil {
		return nil, err
	}
	return out, nil
}

// RefundHistoryResponse is a page of Get Refund History.
type RefundHistoryResponse struct {
	SignedTransactions []string `json:"signedTransactions"`
	Revision           string   `json:"revision"`
	HasMore            bool     `json:"hasMore"`

	// Transactions are SignedTransactions verified and decoded; nil without a Verifier.
	Transactions []*Transaction `json:"-"`
}

// GetRefundHistory gets one page of up to 20 of the customer's refunded transactions (GET
// /inApps/v2/refund/lookup/{transactionId}). Pass "" as revision for the first page; see
// RefundHistoryPages.
func (c *Client) GetRefundHistory(ctx context.Context, transactionID, revision string) (*RefundHistoryResponse, error) {
	const ep = EndpointGetRefundHistory
	if transactionID == "" {
		return nil, invalidRequest(ep, "empty transaction id")
	}
	var q url.Values
	if revision != "" {
		q = url.Values{"revision": {revision}}
	}
	out := new(RefundHistoryResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodGet, path: "/inApps/v2/refund/lookup/" + url.PathEscape(transactionID), query: q, out: out}); err != nil {
		return nil, err
	}
	var err error
	if out.Transactions, err = c.verifyTransactions(ep, out.SignedTransactions); err != nil {
		return nil, err
	}
	return out, nil
}

// RefundHistoryPages walks all pages of Get Refund History. It stops at the first error,
// which it yields.
func (c *Client) RefundHistoryPages(ctx context.Context, transactionID string) iter.Seq2[*RefundHistoryResponse, error] {
	return pages(EndpointGetRefundHistory, "revision",
		func(revision string) (*RefundHistoryResponse, error) {
			return c.GetRefundHistory(ctx, transactionID, revision)
		},
		func(p *RefundHistoryResponse) (bool, string) { return p.HasMore, p.Revision })
}

// SendTestNotificationResponse is the answer of Request a Test Notification.
type SendTestNotificationResponse struct {
	TestNotificationToken string `json:"testNotificationToken"`
}

// RequestTestNotification asks Apple to send a TEST notification to the app's notification
// URL for the client's environment (POST /inApps/v1/notifications/test).
func (c *Client) RequestTestNotification(ctx context.Context) (*SendTestNotificationResponse, error) {
	out := new(SendTestNotificationResponse)
	if err := c.do(ctx, request{endpoint: EndpointRequestTestNotification, method: http.MethodPost, path: "/inApps/v1/notifications/test", out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// SendAttemptResult is the outcome of one attempt of Apple to send a notification.
type SendAttemptResult string

// Send attempt results.
const (
	SendAttemptResultSuccess                      SendAttemptResult = "SUCCESS"
	SendAttemptResultTimedOut                     SendAttemptResult = "TIMED_OUT"
	SendAttemptResultTLSIssue                     SendAttemptResult = "TLS_ISSUE"
	SendAttemptResultCircularRedirect             SendAttemptResult = "CIRCULAR_REDIRECT"
	SendAttemptResultNoResponse                   SendAttemptResult = "NO_RESPONSE"
	SendAttemptResultSocketIssue                  SendAttemptResult = "SOCKET_ISSUE"
	SendAttemptResultUnsupportedCharset           SendAttemptResult = "UNSUPPORTED_CHARSET"
	SendAttemptResultInvalidResponse              SendAttemptResult = "INVALID_RESPONSE"
	SendAttemptResultPrematureClose               SendAttemptResult = "PREMATURE_CLOSE"
	SendAttemptResultUnsuccessfulHTTPResponseCode SendAttemptResult = "UNSUCCESSFUL_HTTP_RESPONSE_CODE"
	SendAttemptResultOther                        SendAttemptResult = "OTHER"
)

// SendAttempt is one attempt of Apple to send a notification (sendAttemptItem).
type SendAttempt struct {
	AttemptDate       Timestamp         `json:"attemptDate"`
	SendAttemptResult SendAttemptResult `json:"sendAttemptResult"`
}

// CheckTestNotificationResponse is the answer of Get Test Notification Status.
type CheckTestNotificationResponse struct {
	SignedPayload string        `json:"signedPayload"`
	SendAttempts  []SendAttempt `json:"sendAttempts"`

	// Notification is SignedPayload verified and decoded; nil without a Verifier.
	Notification *Notification `json:"-"`
}

// GetTestNotificationStatus gets the TEST notification Apple sent for a token of
// RequestTestNotification and how sending it went (GET /inApps/v1/notifications/test/{token}).
func (c *Client) GetTestNotificationStatus(ctx context.Context, testNotificationToken string) (*CheckTestNotificationResponse, error) {
	const ep = EndpointGetTestNotificationStatus
	if testNotificationToken == "" {
		return nil, invalidRequest(ep, "empty test notification token")
	}
	out := new(CheckTestNotificationResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodGet, path: "/inApps/v1/notifications/test/" + url.PathEscape(testNotificationToken), out: out}); err != nil {
		return nil, err
	}
	if c.verifier != nil && out.SignedPayload != "" {
		n, err := c.verifier.VerifyNotification(out.SignedPayload)
		if err != nil {
			return nil, verifyAnswerErr(ep, "signedPayload", err)
		}
		out.Notification = n
	}
	return out, nil
}

// NotificationHistoryRequest is the body of Get Notification History. StartDate and EndDate
// are required; StartDate may be at most 180 days back.
type NotificationHistoryRequest struct {
	StartDate           Timestamp        `json:"startDate"`
	EndDate             Timestamp        `json:"endDate"`
	NotificationType    NotificationType `json:"notificationType,omitempty"`
	NotificationSubtype Subtype          `json:"notificationSubtype,omitempty"` // needs NotificationType
	TransactionID       string           `json:"transactionId,omitempty"`       // not together with NotificationType
	OnlyFailures        bool             `json:"onlyFailures,omitempty"`
}

// NotificationHistoryItem is one notification Apple sent or tried to send
// (notificationHistoryResponseItem).
type NotificationHistoryItem struct {
	SignedPayload string        `json:"signedPayload"`
	SendAttempts  []SendAttempt `json:"sendAttempts"`
}

// NotificationHistoryResponse is a page of Get Notification History.
type NotificationHistoryResponse struct {
	NotificationHistory []NotificationHistoryItem `json:"notificationHistory"`
	HasMore             bool                      `json:"hasMore"`
	PaginationToken     string                    `json:"paginationToken"` // pass to the next call for the next page
}

// GetNotificationHistory gets one page of up to 20 notifications Apple sent or tried to send
// (POST /inApps/v1/notifications/history?paginationToken=...). Pass "" as paginationToken
// for the first page, then the previous page's PaginationToken with the same request; see
// NotificationHistoryPages. The signed payloads are returned as Apple sent them, not verified.
func (c *Client) GetNotificationHistory(ctx context.Context, paginationToken string, req NotificationHistoryRequest) (*NotificationHistoryResponse, error) {
	const ep = EndpointGetNotificationHistory
	if req.StartDate == 0 || req.EndDate == 0 {
		return nil, invalidRequest(ep, "startDate and endDate are required")
	}
	if req.StartDate >= req.EndDate {
		return nil, invalidRequest(ep, "startDate %s is not before endDate %s", req.StartDate, req.EndDate)
	}
	var q url.Values
	if paginationToken != "" {
		q = url.Values{"paginationToken": {paginationToken}}
	}
	out := new(NotificationHistoryResponse)
	if err := c.do(ctx, request{endpoint: ep, method: http.MethodPost, path: "/inApps/v1/notifications/history", query: q, body: req, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// NotificationHistoryPages walks all pages of Get Notification History. It stops at the first
// error, which it yields; a caller that wants to resume later keeps the PaginationToken of
// the last page it handled.
func (c *Client) NotificationHistoryPages(ctx context.Context, req NotificationHistoryRequest) iter.Seq2[*NotificationHistoryResponse, error] {
	return pages(EndpointGetNotificationHistory, "paginationToken",
		func(token string) (*NotificationHistoryResponse, error) {
			return c.GetNotificationHistory(ctx, token, req)
		},
		func(p *NotificationHistoryResponse) (bool, string) { return p.HasMore, p.PaginationToken })
}

// pages walks a paged endpoint: get fetches the page after cursor ("" for the
// first), next says whether more follow and the cursor that gets them. It
// stops at the first error, which it yields, and refuses to loop on a cursor
// that does not move.
func pages[P any](endpoint, cursorName string, get func(cursor string) (P, error), next func(P) (bool, string)) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		var zero P
		cursor := ""
		for {
			page, err := get(cursor)
			if err != nil {
				yield(zero, err)
				return
			}
			more, following := next(page)
			if !yield(page, nil) || !more {
				return
			}
			if following == "" || following == cursor {
				yield(zero, fmt.Errorf("apple api %s: hasMore without a new %s", endpoint, cursorName))
				return
			}
			cursor = following
		}
	}
}

// verifyTransactions verifies and decodes signed transactions when the client has a Verifier.
func (c *Client) verifyTransactions(ep string, signed []string) ([]*Transaction, error) {
	if c.verifier == nil || len(signed) == 0 {
		return nil, nil
	}
	out := make([]*Transaction, len(signed))
	for i, s := range signed {
		t, err := c.verifier.VerifyTransaction(s)
		if err != nil {
			return nil, verifyAnswerErr(ep, fmt.Sprintf("signedTransactions[%d]", i), err)
		}
		out[i] = t
	}
	return out, nil
}

// verifyAnswerErr names the endpoint and field of signed data that failed verification; the
// error stays a *VerificationError.
func verifyAnswerErr(ep, field string, err error) error {
	return nestedErr("apple api "+ep+": "+field, err)
}
