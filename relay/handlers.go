package relay

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// publicHandler is all that faces the internet: ingest and a liveness probe.
func (r *Relay) publicHandler() http.Handler {
	mux := http.NewServeMux()
	// One handler for every method and name under /asn/, so that each
	// request is counted and answered by the rules of the ingest path.
	mux.HandleFunc("/asn/", r.handleIngest)
	mux.HandleFunc("GET /healthz", handleHealthz)
	return mux
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// adminHandler serves probes, metrics and the admin API. Everything but the
// probes needs the bearer token when one is configured.
func (r *Relay) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.HandleFunc("GET /readyz", r.handleReadyz)
	mux.Handle("GET /metrics", r.authorized(promhttp.HandlerFor(r.metrics.registry, promhttp.HandlerOpts{})))
	r.registerAPI(mux)
	return mux
}

func (r *Relay) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if !r.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	handleHealthz(w, nil)
}

// authorized requires "Authorization: Bearer <admin.token>" when a token is
// configured (it must be when the admin listener is not loopback).
func (r *Relay) authorized(next http.Handler) http.Handler {
	token := r.cfg.Admin.Token
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="asnrelay"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (admin.token)")
			return
		}
		next.ServeHTTP(w, req)
	})
}
