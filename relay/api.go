package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/asnrelay/asnrelay/store"
)

// MaxAPIBody bounds the JSON body of an admin API request.
const MaxAPIBody = 1 << 20

// apiError is an error with the HTTP status it answers with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &apiError{status: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
}

// apiFunc is an admin API handler: it writes its answer, or returns the
// error that apiHandler turns into one.
type apiFunc func(w http.ResponseWriter, req *http.Request) error

// registerAPI adds the JSON admin API under /api/v1/ and the dashboard.
func (r *Relay) registerAPI(mux *http.ServeMux) {
	routes := []struct {
		pattern string
		fn      apiFunc
	}{
		{"GET /api/v1/notifications", r.apiNotifications},
		{"GET /api/v1/notifications/{id}", r.apiNotification},
		{"GET /api/v1/notifications/{id}/body", r.apiNotificationBody},
		{"GET /api/v1/deliveries", r.apiDeliveries},
		{"GET /api/v1/deliveries/{id}", r.apiDelivery},
		{"POST /api/v1/deliveries/{id}/retry", r.apiRetry},
		{"POST /api/v1/replay", r.apiReplay},
		{"POST /api/v1/reverify", r.apiReverify},
		{"GET /api/v1/stats", r.apiStats},
		{"GET /api/v1/apps", r.apiApps},
		{"/api/v1/", func(w http.ResponseWriter, req *http.Request) error { return noRoute(mux, w, req) }},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, r.guard(r.authorized(r.apiHandler(rt.fn))))
	}
	r.registerAppleAPI(mux)
	r.registerRefundAPI(mux)
	r.registerDashboard(mux)
}

// apiHandler runs fn and answers its error, if any, with errorStatus.
func (r *Relay) apiHandler(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		err := fn(w, req)
		if err == nil {
			return
		}
		status, msg := errorStatus(err)
		if status >= 500 {
			r.log.Error().Err(err).Str("method", req.Method).Str("path", req.URL.Path).Msg("admin API")
		}
		writeError(w, status, msg)
	})
}

// errorStatus is the one place that maps errors to answers of the admin API.
func errorStatus(err error) (int, string) {
	var ae *apiError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, "store closed: asnrelay is shutting down"
	}
	return http.StatusInternalServerError, err.Error()
}

// noRoute answers a path under /api/v1/ that no route serves: 405 when
// another method would be served, else 404.
func noRoute(mux *http.ServeMux, w http.ResponseWriter, req *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := req.Clone(req.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/api/v1/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("method %s not allowed on %s", req.Method, req.URL.Path)}
	}
	return errNotFound("no such endpoint: %s %s", req.Method, req.URL.Path)
}

// guard protects the admin API and dashboard from browsers: cross-origin
// writes (a web page posting a form to 127.0.0.1) are refused, and without a
// token only a loopback Host is served, so that a DNS name rebound to
// 127.0.0.1 cannot read or drive the API.
func (r *Relay) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	tokenless := r.cfg.Admin.Token == ""
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tokenless && !loopbackHost(req.Host) {
			writeError(w, http.StatusForbidden, "without admin.token only a loopback Host (127.0.0.1, ::1, localhost) is served")
			return
		}
		next.ServeHTTP(w, req)
	}))
}

func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// readJSON decodes the request's JSON body into v: at most MaxAPIBody bytes,
// no unknown fields, nothing after the document. An empty body leaves v as is.
func readJSON(w http.ResponseWriter, req *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, MaxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return err
		}
		return errBadRequest("request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("request body: more than one JSON document")
	}
	return nil
}

// writeJSON writes v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeError writes the stable error shape {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
