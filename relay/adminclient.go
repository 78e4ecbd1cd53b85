package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asnrelay/asnrelay/relay/config"
)

const (
	// AdminTimeout bounds every call of an AdminClient.
	AdminTimeout = 60 * time.Second
	// maxAdminResponse bounds the answer an AdminClient reads.
	maxAdminResponse = 64 << 20
)

// AdminError is an error answer of the admin API, as the daemon said it.
type AdminError struct {
	Status  int
	Message string
}

func (e *AdminError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// AdminClient calls the admin API of a running daemon.
type AdminClient struct {
	base  *url.URL
	token string
	http  *http.Client
	// timeout bounds each call; 0 means AdminTimeout.
	timeout time.Duration
}

// NewAdminClient returns a client of the admin API at base, a URL with
// scheme ("http://127.0.0.1:8081"). token may be empty (loopback listener);
// client nil means a plain http.Client. Every call is bounded by AdminTimeout.
func NewAdminClient(base, token string, client *http.Client) (*AdminClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want a base URL with scheme, like http://127.0.0.1:8081", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if client == nil {
		client = &http.Client{Timeout: AdminTimeout}
	}
	return &AdminClient{base: u, token: token, http: client}, nil
}

// Base is the admin API's base URL.
func (c *AdminClient) Base() string { return c.base.String() }

// AdminEndpoint says where the CLI finds the daemon: URL and Token as given,
// and whatever is missing from the configuration file (Config, else
// $ASNRELAY_CONFIG, else ./asnrelay.yaml when it exists): admin.listen as a
// loopback URL, admin.token. Without either, the default admin.listen.
type AdminEndpoint struct {
	URL, Token, Config string
}

// Client resolves the endpoint into a client.
func (e AdminEndpoint) Client() (*AdminClient, error) {
	base, token := e.URL, e.Token
	if base == "" || token == "" {
		cfg, err := e.config()
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			if base == "" {
				base = AdminURL(cfg.Admin.Listen)
			}
			if token == "" {
				token = cfg.Admin.Token
			}
		}
	}
	if base == "" {
		base = AdminURL(config.DefaultAdminListen)
	}
	return NewAdminClient(base, token, nil)
}

// config loads the configuration file named, or the default one if it
// exists; nil when there is none.
func (e AdminEndpoint) config() (*config.Config, error) {
	path := ConfigPath(e.Config)
	if e.Config == "" && os.Getenv("ASNRELAY_CONFIG") == "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	return config.Load(path)
}

// AdminURL turns an admin.listen address into the URL a local client uses:
// ":8081" and "0.0.0.0:8081" become "http://127.0.0.1:8081", "[::]:8081"
// becomes "http://[::1]:8081".
func AdminURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// do makes one call and returns the answer's body; an answer other than
// 2xx is an *AdminError.
func (c *AdminClient) do(ctx context.Context, method, path string, query url.Values, in any) ([]byte, error) {
	timeout := AdminTimeout
	if c.timeout > 0 {
		timeout = c.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w (is asnrelay serve running? see --admin, --config)", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse+1))
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: read answer: %w", c.base, err)
	}
	if len(data) > maxAdminResponse {
		return nil, fmt.Errorf("admin API at %s: answer larger than %d bytes", c.base, maxAdminResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &AdminError{Status: resp.StatusCode, Message: msg}
	}
	return data, nil
}

func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// get calls GET path and decodes the answer into out; it returns the raw answer too.
func getJSON[T any](ctx context.Context, c *AdminClient, path string, query url.Values) (T, []byte, error) {
	var out T
	data, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return out, nil, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, data, fmt.Errorf("admin API %s: %w", path, err)
	}
	return out, data, nil
}

func postJSON[T any](ctx context.Context, c *AdminClient, path string, in any) (T, []byte, error) {
	var out T
	data, err := c.do(ctx, http.MethodPost, path, nil, in)
	if err != nil {
		return out, nil, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, data, fmt.Errorf("admin API %s: %w", path, err)
	}
	return out, data, nil
}

// NotificationQuery are the filters of Notifications; zero fields are left out.
type NotificationQuery struct {
	App, Environment, Type, State string
	Since, Until                  string
	Limit                         int
	Cursor                        string
}

func (q NotificationQuery) values() url.Values {
	return queryValues("app", q.App, "environment", q.Environment, "type", q.Type, "state", q.State,
		"since", q.Since, "until", q.Until, "limit", itoa(q.Limit), "cursor", q.Cursor)
}

// DeliveryQuery are the filters of Deliveries; zero fields are left out.
type DeliveryQuery struct {
	Target, State          string
	Notification           uint64
	App, Environment, Type string
	Since, Until           string
	Limit                  int
	Cursor                 string
}

func (q DeliveryQuery) values() url.Values {
	n := ""
	if q.Notification != 0 {
		n = strconv.FormatUint(q.Notification, 10)
	}
	return queryValues("target", q.Target, "state", q.State, "notification", n, "app", q.App,
		"environment", q.Environment, "type", q.Type, "since", q.Since, "until", q.Until,
		"limit", itoa(q.Limit), "cursor", q.Cursor)
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func queryValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// Notifications lists notifications (GET /api/v1/notifications).
func (c *AdminClient) Notifications(ctx context.Context, q NotificationQuery) (NotificationList, []byte, error) {
	return getJSON[NotificationList](ctx, c, "/api/v1/notifications", q.values())
}

// Notification returns one notification with its payload and deliveries.
func (c *AdminClient) Notification(ctx context.Context, id uint64) (NotificationDetail, []byte, error) {
	return getJSON[NotificationDetail](ctx, c, fmt.Sprintf("/api/v1/notifications/%d", id), nil)
}

// NotificationBody returns the exact bytes Apple sent.
func (c *AdminClient) NotificationBody(ctx context.Context, id uint64) ([]byte, error) {
	return c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/notifications/%d/body", id), nil, nil)
}

// Deliveries lists deliveries (GET /api/v1/deliveries).
func (c *AdminClient) Deliveries(ctx context.Context, q DeliveryQuery) (DeliveryList, []byte, error) {
	return getJSON[DeliveryList](ctx, c, "/api/v1/deliveries", q.values())
}

// Delivery returns one delivery with its attempts.
func (c *AdminClient) Delivery(ctx context.Context, id uint64) (DeliveryDetail, []byte, error) {
	return getJSON[DeliveryDetail](ctx, c, fmt.Sprintf("/api/v1/deliveries/%d", id), nil)
}

// Retry creates a new delivery repeating delivery id.
func (c *AdminClient) Retry(ctx context.Context, id uint64) (ReplayResult, []byte, error) {
	return postJSON[ReplayResult](ctx, c, fmt.Sprintf("/api/v1/deliveries/%d/retry", id), nil)
}

// Replay asks for notifications or dead deliveries to be sent again.
func (c *AdminClient) Replay(ctx context.Context, in ReplayRequest) (ReplayResult, []byte, error) {
	return postJSON[ReplayResult](ctx, c, "/api/v1/replay", in)
}

// Reverify sends unverified notifications back to verification.
func (c *AdminClient) Reverify(ctx context.Context, in ReverifyRequest) (ReverifyResult, []byte, error) {
	return postJSON[ReverifyResult](ctx, c, "/api/v1/reverify", in)
}

// Stats returns the daemon's figures; since may be empty (the last 24 h).
func (c *AdminClient) Stats(ctx context.Context, since string) (Stats, []byte, error) {
	return getJSON[Stats](ctx, c, "/api/v1/stats", queryValues("since", since))
}
