package appletest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/asnrelay/asnrelay/apple"
)

// FakeAPI is an in-memory App Store Server API for tests: an http.Handler to serve with
// httptest. It checks the bearer token of every request as Apple does (ES256 by Key, kid, iss,
// aud, bid, a sane iat/exp no more than 60 minutes apart), answers the endpoints asnrelay uses
// from the data in its fields with data signed by CA, records every request, and can be told
// to fail or to be slow.
//
// Set the exported fields before serving, or later inside Update; the handler reads them
// under the same lock.
type FakeAPI struct {
	CA          *CA               // signs transactions, renewal info and test notifications
	Key         *ecdsa.PrivateKey // the In-App Purchase key clients must sign with
	KeyID       string
	IssuerID    string
	BundleID    string
	AppAppleID  int64
	Environment apple.Environment // the environment answers and signed data claim
	Now         func() time.Time  // checks token times and dates signed data; default time.Now
	PageSize    int               // page size of the history endpoints; default 20

	// Transactions are served by Get Transaction Info (by transactionId), Get Transaction
	// History (all of them, when the path's id is one of them; productId, revoked and sort
	// filters apply) and Get Refund History (those with a RevocationDate). Empty bundleId,
	// environment and signedDate are filled in.
	Transactions []apple.Transaction
	// Orders maps an order ID to transaction IDs, for Look Up Order ID.
	Orders map[string][]string
	// Subscriptions are served by Get All Subscription Statuses.
	Subscriptions []Subscription
	// NotificationHistory holds signed payloads served by Get Notification History, oldest
	// first. Those that decode are filtered by signedDate and the request's
	// notificationType, notificationSubtype and transactionId; onlyFailures is ignored.
	NotificationHistory []string
	// Delay makes every answer wait this long (or until the client gives up).
	Delay time.Duration
	// NotificationURL, when set, is where the fake sends the TEST notification of Request a
	// Test Notification, as Apple does: a POST of {"signedPayload":"..."}, made before the
	// request is answered. Get Test Notification Status then reports that very notification
	// and SUCCESS for a 200–206 answer, UNSUCCESSFUL_HTTP_RESPONSE_CODE or NO_RESPONSE else.
	// Without it, the notification is only signed and reported as sent.
	NotificationURL string

	mu        sync.Mutex
	failures  []Failure
	requests  []Request
	testToken int
	tests     map[int]*testNotification // by token number
}

// testNotification is a TEST notification the fake was asked for.
type testNotification struct {
	signed   string
	attempts []apple.SendAttempt
}

// Subscription is one entry of Get All Subscription Statuses.
type Subscription struct {
	GroupID     string
	Status      apple.SubscriptionStatus
	Transaction apple.Transaction
	RenewalInfo apple.RenewalInfo
}

// Failure is a programmed error answer.
type Failure struct {
	Status     int           // HTTP status
	ErrorCode  int64         // errorCode in the body; 0 sends no body
	Message    string        // errorMessage; default "fake failure"
	RetryAfter string        // Retry-After header, verbatim
	Delay      time.Duration // wait before answering
	Path       string        // only requests whose path starts with this; "" for any
	Times      int           // how many requests it answers; 0 means 1
}

// Request is a request the FakeAPI received.
type Request struct {
	Method    string
	Path      string // escaped, as sent
	Query     url.Values
	Header    http.Header
	Body      []byte
	Claims    jwt.MapClaims // the token's claims, when it parsed
	AuthError string        // why the token was rejected; "" when accepted
	Status    int           // the status answered
}

// NewFakeAPI returns a FakeAPI signing with ca, with a fresh In-App Purchase key, Key ID
// "FAKEKEY123", a random Issuer ID, bundle ID "com.example.app" and environment Sandbox.
func NewFakeAPI(ca *CA) (*FakeAPI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate api key: %w", err)
	}
	return &FakeAPI{
		CA:          ca,
		Key:         key,
		KeyID:       "FAKEKEY123",
		IssuerID:    newUUID(),
		BundleID:    "com.example.app",
		AppAppleID:  1234567890,
		Environment: apple.EnvironmentSandbox,
	}, nil
}

// ClientOptions returns options for an apple.Client that calls the fake at baseURL (the
// httptest server's URL) with the fake's key and identifiers.
func (f *FakeAPI) ClientOptions(baseURL string) apple.ClientOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return apple.ClientOptions{
		IssuerID:    f.IssuerID,
		KeyID:       f.KeyID,
		BundleID:    f.BundleID,
		Key:         f.Key,
		Environment: f.Environment,
		BaseURL:     baseURL,
		Now:         f.Now,
	}
}

// KeyPEM returns the fake's key as a .p8 file holds it (PKCS#8 PEM).
func (f *FakeAPI) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(f.Key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Update runs fn with the fake locked, to change its fields while it serves.
func (f *FakeAPI) Update(fn func(f *FakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// Fail queues a programmed failure; queued failures answer matching requests in order.
func (f *FakeAPI) Fail(fl Failure) {
	if fl.Times <= 0 {
		fl.Times = 1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fl)
}

// FailNext makes the next n requests answer status with errorCode (0: no body).
func (f *FakeAPI) FailNext(status int, errorCode int64, n int) {
	f.Fail(Failure{Status: status, ErrorCode: errorCode, Times: n})
}

// Requests returns the requests received so far.
func (f *FakeAPI) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Reset forgets the recorded requests and queued failures.
func (f *FakeAPI) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests, f.failures = nil, nil
}

// maxRequestBody bounds what the fake reads of a request body.
const maxRequestBody = 1 << 20

// ServeHTTP answers one request.
func (f *FakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	path := r.URL.EscapedPath()
	rec := Request{Method: r.Method, Path: path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}

	f.mu.Lock()
	rec.Claims, rec.AuthError = f.checkToken(r.Header.Get("Authorization"))
	var fail *Failure
	if rec.AuthError == "" {
		fail = f.takeFailure(path)
	}
	delay := f.Delay
	if fail != nil && fail.Delay > 0 {
		delay = fail.Delay
	}
	var a answer
	switch {
	case rec.AuthError != "":
		a = answer{status: http.StatusUnauthorized}
	case fail != nil:
		a = failureAnswer(*fail)
	default:
		a = f.route(r.Method, path, rec.Query, body)
	}
	rec.Status = a.status
	f.requests = append(f.requests, rec)
	f.mu.Unlock()

	if a.after != nil {
		a.after()
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if a.body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	w.Write(a.body)
}

type answer struct {
	status int
	header http.Header
	body   []byte
	after  func() // runs unlocked before the answer is written
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
	}
	return answer{status: status, body: b}
}

func errorAnswer(status int, code int64, msg string) answer {
	return jsonAnswer(status, map[string]any{"errorCode": code, "errorMessage": msg})
}

func failureAnswer(fl Failure) answer {
	a := answer{status: fl.Status}
	if fl.ErrorCode != 0 {
		msg := fl.Message
		if msg == "" {
			msg = "fake failure"
		}
		a = errorAnswer(fl.Status, fl.ErrorCode, msg)
	}
	if fl.RetryAfter != "" {
		a.header = http.Header{"Retry-After": {fl.RetryAfter}}
	}
	return a
}

// takeFailure pops the first queued failure matching path.
func (f *FakeAPI) takeFailure(path string) *Failure {
	for i := range f.failures {
		fl := &f.failures[i]
		if fl.Path != "" && !strings.HasPrefix(path, fl.Path) {
			continue
		}
		out := *fl
		if fl.Times--; fl.Times <= 0 {
			f.failures = slices.Delete(f.failures, i, i+1)
		}
		return &out
	}
	return nil
}

func (f *FakeAPI) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// checkToken checks a bearer token as Apple would, returning its claims and, when it is not
// acceptable, why.
func (f *FakeAPI) checkToken(auth string) (jwt.MapClaims, string) {
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return nil, "no bearer token"
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &f.Key.PublicKey, nil })
	if err != nil {
		return nil, "token: " + err.Error()
	}
	if kid, _ := tok.Header["kid"].(string); kid != f.KeyID {
		return claims, fmt.Sprintf("kid %q, want %q", kid, f.KeyID)
	}
	if typ, _ := tok.Header["typ"].(string); typ != "JWT" {
		return claims, fmt.Sprintf("typ %q, want JWT", typ)
	}
	for name, want := range map[string]string{"iss": f.IssuerID, "aud": apple.APIAudience, "bid": f.BundleID} {
		if got, _ := claims[name].(string); got != want {
			return claims, fmt.Sprintf("%s %v, want %q", name, claims[name], want)
		}
	}
	iat, ok1 := claims["iat"].(float64)
	exp, ok2 := claims["exp"].(float64)
	now := float64(f.now().Unix())
	switch {
	case !ok1 || !ok2:
		return claims, "iat or exp missing"
	case exp <= iat:
		return claims, "exp is not after iat"
	case exp-iat > 3600:
		return claims, "token valid for more than 60 minutes"
	case iat > now+60:
		return claims, "iat in the future"
	case exp < now:
		return claims, "token expired"
	}
	return claims, ""
}

// route answers an authorised request from the fake's data; path is escaped.
func (f *FakeAPI) route(method, path string, q url.Values, body []byte) answer {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	last := ""
	if n := len(seg); n > 0 {
		last, _ = url.PathUnescape(seg[n-1])
	}
	switch {
	case method == http.MethodGet && len(seg) == 4 && path == "/inApps/v1/transactions/"+seg[3]:
		return f.transactionInfo(last)
	case method == http.MethodGet && len(seg) == 4 && strings.HasPrefix(path, "/inApps/v2/history/"):
		return f.history(last, q)
	case method == http.MethodGet && len(seg) == 4 && strings.HasPrefix(path, "/inApps/v1/subscriptions/"):
		return f.statuses(q)
	case method == http.MethodGet && len(seg) == 4 && strings.HasPrefix(path, "/inApps/v1/lookup/"):
		return f.lookup(last)
	case method == http.MethodGet && len(seg) == 5 && strings.HasPrefix(path, "/inApps/v2/refund/lookup/"):
		return f.refunds(last, q)
	case method == http.MethodPut && len(seg) == 5 && strings.HasPrefix(path, "/inApps/v2/transactions/consumption/"):
		return f.consumption(last, body)
	case method == http.MethodPost && path == "/inApps/v1/notifications/test":
		return f.requestTest()
	case method == http.MethodGet && len(seg) == 5 && strings.HasPrefix(path, "/inApps/v1/notifications/test/"):
		return f.testStatus(last)
	case method == http.MethodPost && path == "/inApps/v1/notifications/history":
		return f.notificationHistory(q, body)
	}
	return answer{status: http.StatusNotFound}
}

func (f *FakeAPI) find(id string) (apple.Transaction, bool) {
	for _, t := range f.Transactions {
		if t.TransactionID == id {
			return t, true
		}
	}
	return apple.Transaction{}, false
}

func notFound() answer {
	return errorAnswer(http.StatusNotFound, apple.ErrorCodeTransactionIDNotFound, "Transaction id not found.")
}

func (f *FakeAPI) transactionInfo(id string) answer {
	t, ok := f.find(id)
	if !ok {
		return notFound()
	}
	s, err := f.signTransaction(t)
	if err != nil {
		return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
	}
	return jsonAnswer(http.StatusOK, map[string]string{"signedTransactionInfo": s})
}

func (f *FakeAPI) history(id string, q url.Values) answer {
	if _, ok := f.find(id); !ok {
		return notFound()
	}
	var list []apple.Transaction
	for _, t := range f.Transactions {
		if ids := q["productId"]; len(ids) > 0 && !slices.Contains(ids, t.ProductID) {
			continue
		}
		if rv := q.Get("revoked"); rv != "" && (rv == "true") != (t.RevocationDate != 0) {
			continue
		}
		list = append(list, t)
	}
	if q.Get("sort") == "DESCENDING" {
		slices.Reverse(list)
	}
	page, revision, more, a := f.page(list, q.Get("revision"))
	if a != nil {
		return *a
	}
	signed, err := f.signTransactions(page)
	if err != nil {
		return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
	}
	return jsonAnswer(http.StatusOK, map[string]any{
		"revision": revision, "hasMore": more, "bundleId": f.BundleID, "appAppleId": f.AppAppleID,
		"environment": f.Environment, "signedTransactions": signed,
	})
}

func (f *FakeAPI) refunds(id string, q url.Values) answer {
	if _, ok := f.find(id); !ok {
		return notFound()
	}
	var list []apple.Transaction
	for _, t := range f.Transactions {
		if t.RevocationDate != 0 {
			list = append(list, t)
		}
	}
	page, revision, more, a := f.page(list, q.Get("revision"))
	if a != nil {
		return *a
	}
	signed, err := f.signTransactions(page)
	if err != nil {
		return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
	}
	return jsonAnswer(http.StatusOK, map[string]any{"signedTransactions": signed, "revision": revision, "hasMore": more})
}

// page cuts list at the offset a revision token names ("rev-N"; "" is the start).
func (f *FakeAPI) page(list []apple.Transaction, revision string) (page []apple.Transaction, next string, more bool, bad *answer) {
	start := 0
	if revision != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(revision, "rev-"))
		if err != nil || !strings.HasPrefix(revision, "rev-") || n < 0 || n > len(list) {
			a := errorAnswer(http.StatusBadRequest, 4000005, "Invalid request revision.")
			return nil, "", false, &a
		}
		start = n
	}
	end := min(len(list), start+f.pageSize())
	return list[start:end], "rev-" + strconv.Itoa(end), end < len(list), nil
}

func (f *FakeAPI) pageSize() int {
	if f.PageSize > 0 {
		return f.PageSize
	}
	return 20
}

func (f *FakeAPI) statuses(q url.Values) answer {
	type item struct {
		Status                apple.SubscriptionStatus `json:"status"`
		OriginalTransactionID string                   `json:"originalTransactionId"`
		SignedTransactionInfo string                   `json:"signedTransactionInfo"`
		SignedRenewalInfo     string                   `json:"signedRenewalInfo"`
	}
	type group struct {
		SubscriptionGroupIdentifier string `json:"subscriptionGroupIdentifier"`
		LastTransactions            []item `json:"lastTransactions"`
	}
	var groups []group
	for _, s := range f.Subscriptions {
		if st := q["status"]; len(st) > 0 && !slices.Contains(st, strconv.Itoa(int(s.Status))) {
			continue
		}
		tx, err := f.signTransaction(s.Transaction)
		if err != nil {
			return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
		}
		ri := s.RenewalInfo
		if ri.Environment == "" {
			ri.Environment = f.Environment
		}
		if ri.SignedDate == 0 {
			ri.SignedDate = apple.TimestampOf(f.now())
		}
		renewal, err := f.CA.SignJWS(ri)
		if err != nil {
			return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
		}
		it := item{Status: s.Status, OriginalTransactionID: s.Transaction.OriginalTransactionID, SignedTransactionInfo: tx, SignedRenewalInfo: renewal}
		i := slices.IndexFunc(groups, func(g group) bool { return g.SubscriptionGroupIdentifier == s.GroupID })
		if i < 0 {
			groups = append(groups, group{SubscriptionGroupIdentifier: s.GroupID})
			i = len(groups) - 1
		}
		groups[i].LastTransactions = append(groups[i].LastTransactions, it)
	}
	return jsonAnswer(http.StatusOK, map[string]any{
		"environment": f.Environment, "bundleId": f.BundleID, "appAppleId": f.AppAppleID, "data": groups,
	})
}

func (f *FakeAPI) lookup(orderID string) answer {
	ids, ok := f.Orders[orderID]
	if !ok {
		return jsonAnswer(http.StatusOK, map[string]any{"status": apple.OrderLookupStatusInvalid})
	}
	var list []apple.Transaction
	for _, id := range ids {
		if t, ok := f.find(id); ok {
			list = append(list, t)
		}
	}
	signed, err := f.signTransactions(list)
	if err != nil {
		return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
	}
	return jsonAnswer(http.StatusOK, map[string]any{"status": apple.OrderLookupStatusValid, "signedTransactions": signed})
}

func (f *FakeAPI) consumption(id string, body []byte) answer {
	var req struct {
		CustomerConsented *bool  `json:"customerConsented"`
		DeliveryStatus    string `json:"deliveryStatus"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errorAnswer(http.StatusBadRequest, apple.ErrorCodeGeneralBadRequest, "Bad request.")
	}
	if req.CustomerConsented == nil || !*req.CustomerConsented {
		return errorAnswer(http.StatusBadRequest, apple.ErrorCodeInvalidCustomerConsented, "Invalid request. The customer consented field is invalid or doesn't indicate that the customer consented.")
	}
	if req.DeliveryStatus == "" {
		return errorAnswer(http.StatusBadRequest, 4000036, "Invalid request. The delivery status field is invalid.")
	}
	if _, ok := f.find(id); !ok {
		return notFound()
	}
	return answer{status: http.StatusAccepted}
}

func (f *FakeAPI) requestTest() answer {
	now := f.now()
	signed, err := f.CA.SignNotification(Notification{
		Type: string(apple.NotificationTypeTest), SignedDate: now, BundleID: f.BundleID,
		AppAppleID: f.AppAppleID, Environment: string(f.Environment),
	})
	if err != nil {
		return errorAnswer(http.StatusInternalServerError, apple.ErrorCodeGeneralInternal, err.Error())
	}
	f.testToken++
	tn := &testNotification{signed: signed}
	if f.tests == nil {
		f.tests = make(map[int]*testNotification)
	}
	f.tests[f.testToken] = tn
	a := jsonAnswer(http.StatusOK, map[string]string{"testNotificationToken": fmt.Sprintf("%s-%d", f.IssuerID, f.testToken)})
	if f.NotificationURL == "" {
		tn.attempts = []apple.SendAttempt{{AttemptDate: apple.TimestampOf(now), SendAttemptResult: apple.SendAttemptResultSuccess}}
		return a
	}
	url := f.NotificationURL
	a.after = func() {
		result := sendTest(url, signed)
		f.mu.Lock()
		defer f.mu.Unlock()
		tn.attempts = append(tn.attempts, apple.SendAttempt{AttemptDate: apple.TimestampOf(f.now()), SendAttemptResult: result})
	}
	return a
}

// sendTest POSTs a TEST notification the way Apple does and returns the attempt's result.
func sendTest(url, signed string) apple.SendAttemptResult {
	body, _ := json.Marshal(map[string]string{"signedPayload": signed})
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return apple.SendAttemptResultNoResponse
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 206 {
		return apple.SendAttemptResultUnsuccessfulHTTPResponseCode
	}
	return apple.SendAttemptResultSuccess
}

func (f *FakeAPI) testStatus(token string) answer {
	n, err := strconv.Atoi(strings.TrimPrefix(token, f.IssuerID+"-"))
	tn, ok := f.tests[n]
	if err != nil || !ok || len(tn.attempts) == 0 {
		return errorAnswer(http.StatusNotFound, apple.ErrorCodeTestNotificationNotFound, "Either the test notification token is expired or the notification and status are not yet available.")
	}
	return jsonAnswer(http.StatusOK, map[string]any{"signedPayload": tn.signed, "sendAttempts": tn.attempts})
}

func (f *FakeAPI) notificationHistory(q url.Values, body []byte) answer {
	var req apple.NotificationHistoryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errorAnswer(http.StatusBadRequest, apple.ErrorCodeGeneralBadRequest, "Bad request.")
	}
	switch {
	case req.StartDate == 0:
		return errorAnswer(http.StatusBadRequest, 4000015, "Invalid request. The start date is not a timestamp value represented in milliseconds.")
	case req.EndDate == 0:
		return errorAnswer(http.StatusBadRequest, 4000016, "Invalid request. The end date is not a timestamp value represented in milliseconds.")
	case req.StartDate >= req.EndDate:
		return errorAnswer(http.StatusBadRequest, 4000013, "Invalid request. The end date precedes the start date or the dates are the same.")
	case req.NotificationType != "" && req.TransactionID != "":
		return errorAnswer(http.StatusBadRequest, 4000019, "Invalid request. Include either the transactionId or the notificationType in your query, but not both.")
	}
	var items []apple.NotificationHistoryItem
	for _, s := range f.NotificationHistory {
		n, err := apple.DecodeNotification(s)
		if err == nil {
			if n.SignedDate < req.StartDate || n.SignedDate >= req.EndDate ||
				req.NotificationType != "" && n.NotificationType != req.NotificationType ||
				req.NotificationSubtype != "" && n.Subtype != req.NotificationSubtype ||
				req.TransactionID != "" && (n.Transaction == nil || n.Transaction.TransactionID != req.TransactionID && n.Transaction.OriginalTransactionID != req.TransactionID) {
				continue
			}
		}
		date := apple.TimestampOf(f.now())
		if n != nil && n.SignedDate != 0 {
			date = n.SignedDate
		}
		items = append(items, apple.NotificationHistoryItem{
			SignedPayload: s,
			SendAttempts:  []apple.SendAttempt{{AttemptDate: date, SendAttemptResult: apple.SendAttemptResultSuccess}},
		})
	}
	start := 0
	if tok := q.Get("paginationToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		if err != nil || !strings.HasPrefix(tok, "page-") || n < 0 || n > len(items) {
			return errorAnswer(http.StatusBadRequest, 4000014, "Invalid request. The pagination token is invalid.")
		}
		start = n
	}
	end := min(len(items), start+f.pageSize())
	out := map[string]any{"notificationHistory": items[start:end], "hasMore": end < len(items)}
	if end < len(items) {
		out["paginationToken"] = "page-" + strconv.Itoa(end)
	}
	return jsonAnswer(http.StatusOK, out)
}

func (f *FakeAPI) signTransactions(list []apple.Transaction) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, t := range list {
		s, err := f.signTransaction(t)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (f *FakeAPI) signTransaction(t apple.Transaction) (string, error) {
	if t.BundleID == "" {
		t.BundleID = f.BundleID
	}
	if t.Environment == "" {
		t.Environment = f.Environment
	}
	if t.SignedDate == 0 {
		t.SignedDate = apple.TimestampOf(f.now())
	}
	return f.CA.SignJWS(t)
}
