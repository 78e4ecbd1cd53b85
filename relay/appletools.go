package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/relay/config"
)

// Errors of AppleTools that are the caller's mistakes (exit code 2).
var (
	// ErrNoSuchApp is matched when --app names no configured app.
	ErrNoSuchApp = errors.New("no such app")
	// ErrNoAPIKey is matched when the app has no api block.
	ErrNoAPIKey = errors.New("the app has no api block (In-App Purchase key)")
	// ErrBadEnvironment is matched by an environment other than Production or Sandbox.
	ErrBadEnvironment = errors.New("environment must be Production or Sandbox")
	// ErrBadLookup is matched by an unknown lookup kind or an empty identifier.
	ErrBadLookup = errors.New("bad lookup")
)

// LookupTimeout bounds one lookup, every page included.
const LookupTimeout = 2 * time.Minute

// AppleTools calls the App Store Server API directly with the configured
// In-App Purchase keys, for commands that need no running daemon: lookups,
// test notifications, promotional offer signatures. Signed data Apple answers
// with is verified against Apple's root and apple.root_certs.
type AppleTools struct {
	cfg     *config.Config
	clients appleClients
	now     func() time.Time
}

// AppleToolsOptions tune AppleTools; the zero value is what the CLI uses.
type AppleToolsOptions struct {
	Now        func() time.Time // nil: time.Now
	HTTPClient *http.Client     // nil: apple's default
	// RateLimit is apple.ClientOptions.RateLimit: 0 keeps Apple's limits.
	RateLimit float64
}

// NewAppleTools checks cfg and builds a client per app and environment. Its
// errors are config errors.
func NewAppleTools(cfg *config.Config, opts AppleToolsOptions) (*AppleTools, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	roots, err := loadRoots(cfg.Apple.RootCerts)
	if err != nil {
		return nil, err
	}
	clients, err := newAppleClients(cfg, zerolog.Nop(), apple.ClientOptions{
		Verifier: apple.NewVerifier(roots).WithClock(opts.Now), Now: opts.Now, HTTPClient: opts.HTTPClient,
		RateLimit: opts.RateLimit, UserAgent: "asnrelay-cli",
	})
	if err != nil {
		return nil, err
	}
	return &AppleTools{cfg: cfg, clients: clients, now: opts.Now}, nil
}

// app returns the configured app called name, with an api block; name ""
// means the only app with one.
func (a *AppleTools) app(name string) (*config.App, error) {
	if name == "" {
		var withAPI []string
		for _, app := range a.cfg.Apps {
			if app.API != nil {
				withAPI = append(withAPI, app.Name)
			}
		}
		if len(withAPI) != 1 {
			return nil, fmt.Errorf("%w: name one with --app (apps with an api block: %s)", ErrNoSuchApp, strings.Join(withAPI, ", "))
		}
		name = withAPI[0]
	}
	app, ok := a.cfg.App(name)
	if !ok {
		return nil, fmt.Errorf("%w %q in the config", ErrNoSuchApp, name)
	}
	if app.API == nil {
		return nil, fmt.Errorf("app %q: %w", name, ErrNoAPIKey)
	}
	return app, nil
}

// client returns app's client for env; env "" means the first API
// environment the app accepts (Production before Sandbox).
func (a *AppleTools) client(name, env string) (*apple.Client, error) {
	app, err := a.app(name)
	if err != nil {
		return nil, err
	}
	name = app.Name
	if env == "" {
		env = string(apiEnvironmentsOf(app)[0])
	}
	if !slices.Contains(apiEnvironments, apple.Environment(env)) {
		return nil, fmt.Errorf("%w, not %q", ErrBadEnvironment, env)
	}
	return a.clients[name][apple.Environment(env)], nil
}

// Lookup kinds.
const (
	LookupTransaction   = "transaction"   // Get Transaction Info
	LookupHistory       = "history"       // Get Transaction History, every page
	LookupSubscriptions = "subscriptions" // Get All Subscription Statuses
	LookupOrder         = "order"         // Look Up Order ID
	LookupRefunds       = "refunds"       // Get Refund History, every page
)

// LookupRequest names what to look up.
type LookupRequest struct {
	Kind string // one of the Lookup* kinds
	App  string
	// Environment is Production or Sandbox. Empty means the first the app
	// accepts, and for a transaction: Production, then Sandbox when
	// Production does not know the transaction, as Apple documents.
	Environment string
	ID          string // transaction ID, or order ID for LookupOrder
}

// LookupResult is a verified answer, as indented JSON.
type LookupResult struct {
	Environment string // the environment that answered
	JSON        []byte
}

// Lookup asks Apple and returns the verified, decoded answer: the
// transaction for LookupTransaction, else a document holding Apple's answer
// with each signed field replaced by its decoded payload.
func (a *AppleTools) Lookup(ctx context.Context, req LookupRequest) (LookupResult, error) {
	if req.ID == "" {
		return LookupResult{}, fmt.Errorf("%w: empty id", ErrBadLookup)
	}
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	app, err := a.app(req.App)
	if err != nil {
		return LookupResult{}, err
	}
	c, err := a.client(app.Name, req.Environment)
	if err != nil {
		return LookupResult{}, err
	}
	var doc any
	env := c.Environment()
	switch req.Kind {
	case LookupTransaction:
		var out *apple.TransactionInfoResponse
		if req.Environment == "" && env == apple.EnvironmentProduction {
			out, env, err = apple.GetTransactionInfoAnyEnvironment(ctx, c, a.clients[app.Name][apple.EnvironmentSandbox], req.ID)
		} else {
			out, err = c.GetTransactionInfo(ctx, req.ID)
		}
		if err == nil {
			doc = rawOrNull(out.Transaction)
		}
	case LookupHistory:
		doc, err = historyDoc(ctx, c, req.ID)
	case LookupSubscriptions:
		doc, err = subscriptionsDoc(ctx, c, req.ID)
	case LookupOrder:
		var out *apple.OrderLookupResponse
		if out, err = c.LookUpOrderID(ctx, req.ID); err == nil {
			doc = map[string]any{"status": out.Status, "transactions": raws(out.Transactions)}
		}
	case LookupRefunds:
		txs := []json.RawMessage{}
		for page, perr := range c.RefundHistoryPages(ctx, req.ID) {
			if err = perr; err != nil {
				break
			}
			txs = append(txs, raws(page.Transactions)...)
		}
		doc = map[string]any{"transactions": txs}
	default:
		return LookupResult{}, fmt.Errorf("%w: unknown kind %q", ErrBadLookup, req.Kind)
	}
	if err != nil {
		if req.Environment == "" && env == apple.EnvironmentProduction && errors.Is(err, apple.ErrNotFound) {
			err = fmt.Errorf("%w (looked in Production; for a Sandbox purchase pass --environment Sandbox)", err)
		}
		return LookupResult{Environment: string(env)}, err
	}
	data, err := indentJSON(doc)
	return LookupResult{Environment: string(env), JSON: data}, err
}

func historyDoc(ctx context.Context, c *apple.Client, id string) (any, error) {
	doc := map[string]any{}
	txs := []json.RawMessage{}
	for page, err := range c.TransactionHistoryPages(ctx, id, apple.TransactionHistoryRequest{}) {
		if err != nil {
			return nil, err
		}
		doc["environment"], doc["bundleId"], doc["appAppleId"] = page.Environment, page.BundleID, page.AppAppleID
		txs = append(txs, raws(page.Transactions)...)
	}
	doc["transactions"] = txs
	return doc, nil
}

func subscriptionsDoc(ctx context.Context, c *apple.Client, id string) (any, error) {
	out, err := c.GetAllSubscriptionStatuses(ctx, id)
	if err != nil {
		return nil, err
	}
	type last struct {
		Status                apple.SubscriptionStatus `json:"status"`
		OriginalTransactionID string                   `json:"originalTransactionId"`
		Transaction           json.RawMessage          `json:"transaction"`
		RenewalInfo           json.RawMessage          `json:"renewalInfo"`
	}
	type group struct {
		SubscriptionGroupIdentifier string `json:"subscriptionGroupIdentifier"`
		LastTransactions            []last `json:"lastTransactions"`
	}
	groups := []group{}
	for _, g := range out.Data {
		gr := group{SubscriptionGroupIdentifier: g.SubscriptionGroupIdentifier, LastTransactions: []last{}}
		for _, lt := range g.LastTransactions {
			l := last{Status: lt.Status, OriginalTransactionID: lt.OriginalTransactionID, Transaction: rawOrNull(lt.Transaction)}
			l.RenewalInfo = json.RawMessage("null")
			if lt.RenewalInfo != nil {
				l.RenewalInfo = lt.RenewalInfo.Raw
			}
			gr.LastTransactions = append(gr.LastTransactions, l)
		}
		groups = append(groups, gr)
	}
	return map[string]any{"environment": out.Environment, "bundleId": out.BundleID, "appAppleId": out.AppAppleID, "data": groups}, nil
}

// rawOrNull is the signed JSON of a verified transaction.
func rawOrNull(t *apple.Transaction) json.RawMessage {
	if t == nil || len(t.Raw) == 0 {
		return json.RawMessage("null")
	}
	return t.Raw
}

func raws(ts []*apple.Transaction) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(ts))
	for _, t := range ts {
		out = append(out, rawOrNull(t))
	}
	return out
}

func indentJSON(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, data, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Test notification polling defaults.
const (
	DefaultTestPollInterval = 2 * time.Second
	DefaultTestPollTimeout  = 60 * time.Second
)

// TestNotificationOptions say which app's test notification to request and
// how long to wait for it.
type TestNotificationOptions struct {
	App string
	// Environment is Production or Sandbox; empty means Sandbox when the app
	// accepts it, else Production.
	Environment string
	// Admin, when set, is the running daemon asked whether the notification
	// arrived.
	Admin *AdminClient
	// PollInterval and PollTimeout bound the wait for Apple's send attempt
	// (and then for the daemon); zero means the defaults.
	PollInterval, PollTimeout time.Duration
	// Progress, when set, hears what is going on.
	Progress func(msg string)
}

// TestNotificationResult is what became of a test notification.
type TestNotificationResult struct {
	Environment string
	Token       string // testNotificationToken
	UUID        string // notificationUUID of the TEST notification, once Apple sent it
	// Attempts are Apple's send attempts (SUCCESS, TIMED_OUT, ...).
	Attempts []apple.SendAttempt
	// Relay is whether the daemon holds the notification: RelayHolds,
	// RelayMissing or RelayUnknown.
	Relay string
	// RelayError says why the relay could not be checked.
	RelayError string
}

// What a test notification's result says of the relay.
const (
	RelayHolds   = "received"
	RelayMissing = "not received"
	RelayUnknown = "could not check the relay"
)

// Sent reports whether one of Apple's attempts succeeded.
func (r TestNotificationResult) Sent() bool {
	return slices.ContainsFunc(r.Attempts, func(a apple.SendAttempt) bool {
		return a.SendAttemptResult == apple.SendAttemptResultSuccess
	})
}

// TestNotification asks Apple to send a TEST notification to the app's
// notification URL, waits for Apple's send attempt, and asks the daemon (when
// o.Admin is set) whether it holds the notification. The error is for what
// stops it from saying: Apple refusing the request, or no attempt in time.
func (a *AppleTools) TestNotification(ctx context.Context, o TestNotificationOptions) (TestNotificationResult, error) {
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultTestPollInterval
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultTestPollTimeout
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	app, err := a.app(o.App)
	if err != nil {
		return TestNotificationResult{}, err
	}
	if o.Environment == "" {
		o.Environment = string(apple.EnvironmentProduction)
		if app.Allows(string(apple.EnvironmentSandbox)) {
			o.Environment = string(apple.EnvironmentSandbox)
		}
	}
	c, err := a.client(app.Name, o.Environment)
	if err != nil {
		return TestNotificationResult{}, err
	}
	res := TestNotificationResult{Environment: o.Environment, Relay: RelayUnknown}
	sent, err := c.RequestTestNotification(ctx)
	if err != nil {
		return res, err
	}
	res.Token = sent.TestNotificationToken
	progress("Apple accepted the request (token %s); waiting up to %s for its send attempt", res.Token, o.PollTimeout)

	pollCtx, cancel := context.WithTimeout(ctx, o.PollTimeout)
	defer cancel()
	var status *apple.CheckTestNotificationResponse
	err = poll(pollCtx, o.PollInterval, func() (bool, error) {
		st, err := c.GetTestNotificationStatus(pollCtx, res.Token)
		var ae *apple.APIError
		if errors.As(err, &ae) && ae.Code == apple.ErrorCodeTestNotificationNotFound {
			return false, nil // not sent yet
		}
		if err != nil {
			return false, err
		}
		status = st
		return len(st.SendAttempts) > 0, nil
	})
	if status != nil {
		res.Attempts = status.SendAttempts
		if n := status.Notification; n != nil {
			res.UUID = n.NotificationUUID
		} else if n, derr := apple.DecodeNotification(status.SignedPayload); derr == nil {
			res.UUID = n.NotificationUUID
		}
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("no send attempt reported by Apple within %s; check the %s Server Notification URL in App Store Connect (App Information > App Store Server Notifications)", o.PollTimeout, o.Environment)
	}
	if err != nil {
		return res, err
	}

	switch {
	case o.Admin == nil:
		res.RelayError = "no admin API to ask"
	case res.UUID == "":
		res.RelayError = "Apple's answer carries no notificationUUID"
	default:
		res.Relay, res.RelayError = a.relayHolds(ctx, o, res.UUID)
	}
	return res, nil
}

// relayHolds asks the daemon, until the poll timeout, whether it has
// received and processed the TEST notification uuid.
func (a *AppleTools) relayHolds(ctx context.Context, o TestNotificationOptions, uuid string) (string, string) {
	ctx, cancel := context.WithTimeout(ctx, o.PollTimeout)
	defer cancel()
	var lastErr error
	err := poll(ctx, o.PollInterval, func() (bool, error) {
		list, _, err := o.Admin.Notifications(ctx, NotificationQuery{Type: string(apple.NotificationTypeTest), Since: "10m"})
		if err != nil {
			if ae, ok := errors.AsType[*AdminError](err); ok && ae.Status == http.StatusNotFound {
				return false, err // an older daemon without the endpoint: asking again will not help
			}
			if ctx.Err() == nil { // not just our own deadline
				lastErr = err
			}
			return false, nil
		}
		lastErr = nil
		return slices.ContainsFunc(list.Notifications, func(n NotificationSummary) bool { return n.UUID == uuid }), nil
	})
	switch {
	case err == nil:
		return RelayHolds, ""
	case lastErr != nil:
		return RelayUnknown, lastErr.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return RelayMissing, fmt.Sprintf("the daemon at %s holds no TEST notification %s: Apple sent it elsewhere (check the notification URL in App Store Connect) or it did not reach this relay", o.Admin.Base(), uuid)
	}
	return RelayUnknown, err.Error()
}

// poll calls try every interval until it reports done, fails, or ctx ends.
func poll(ctx context.Context, interval time.Duration, try func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := try()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// OfferRequest is a promotional offer to sign.
type OfferRequest struct {
	App             string
	ProductID       string
	OfferID         string
	AppAccountToken string // optional: the appAccountToken the purchase will carry
	// JWS asks for the newer promotional offer V2 signature (a JWS);
	// TransactionID is then optional but recommended.
	JWS           bool
	TransactionID string
}

// OfferSignature is what the app passes to StoreKit.
type OfferSignature struct {
	KeyID     string // keyIdentifier
	Nonce     string // nonce, a lowercase UUID (original signature only)
	Timestamp int64  // UNIX milliseconds (original signature only)
	Signature string // base64 DER signature, or the V2 JWS
}

// SignOffer signs a promotional offer with the app's In-App Purchase key.
func (a *AppleTools) SignOffer(req OfferRequest) (OfferSignature, error) {
	app, err := a.app(req.App)
	if err != nil {
		return OfferSignature{}, err
	}
	if req.ProductID == "" || req.OfferID == "" {
		return OfferSignature{}, fmt.Errorf("%w: product and offer are required", ErrBadLookup)
	}
	key, err := apple.ParsePrivateKey(app.API.PrivateKey)
	if err != nil {
		return OfferSignature{}, err
	}
	out := OfferSignature{KeyID: app.API.KeyID}
	if req.JWS {
		out.Signature, err = apple.SignPromotionalOfferV2(key, app.API.KeyID, app.API.IssuerID, app.BundleID,
			apple.PromotionalOfferV2{ProductID: req.ProductID, OfferIdentifier: req.OfferID, TransactionID: req.TransactionID}, a.now())
		return out, err
	}
	out.Nonce, out.Timestamp = newUUID(), a.now().UnixMilli()
	out.Signature, err = apple.SignPromotionalOffer(key, app.API.KeyID, app.BundleID, req.ProductID, req.OfferID,
		req.AppAccountToken, out.Nonce, out.Timestamp)
	return out, err
}
