package relay

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

// bufferPool recycles request bodies: once Append returns, bbolt has written
// the bytes and the buffer is free again.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps rare large bodies from pinning memory in the pool.
const maxPooledBuffer = 64 << 10

// handleIngest serves /asn/{app}. It answers 200 only once the exact body is
// committed; nothing else happens on this path.
func (r *Relay) handleIngest(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	r.gate.enter() // also asnrelay_ingest_in_flight_requests
	defer r.gate.leave()
	app := strings.TrimPrefix(req.URL.Path, "/asn/")
	code, msg := r.ingest(w, req, app)
	label := app
	if _, ok := r.apps[app]; !ok {
		label = "unknown" // bounded label values whatever strangers send
	}
	r.metrics.ingestRequests.WithLabelValues(label, strconv.Itoa(code)).Inc()
	if code == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		r.metrics.ingestDuration.Observe(time.Since(start).Seconds())
	} else {
		http.Error(w, msg, code)
	}
	if ev := r.log.Debug(); ev.Enabled() {
		ev.Str("app", label).Int("status", code).Str("remote", req.RemoteAddr).
			Dur("took", time.Since(start)).Msg("ingest")
	}
}

func (r *Relay) ingest(w http.ResponseWriter, req *http.Request, app string) (int, string) {
	if _, ok := r.apps[app]; !ok {
		return http.StatusNotFound, "unknown app"
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return http.StatusMethodNotAllowed, "method not allowed: use POST"
	}
	remote := r.clientAddr(req)
	if len(r.cfg.AllowSources) > 0 && !containsAddr(r.cfg.AllowSources, remote) {
		return http.StatusForbidden, "source address not allowed"
	}
	limit := r.cfg.MaxBodyBytes
	if req.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, "body larger than max_body_bytes"
	}
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			bufferPool.Put(buf)
		}
	}()
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	// Read one byte past the limit to tell "exactly at" from "over" without
	// reading the rest; MaxBytesReader also closes the connection then.
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, limit)); err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return http.StatusRequestEntityTooLarge, "body larger than max_body_bytes"
		}
		return http.StatusBadRequest, "could not read body"
	}
	body := buf.Bytes()
	if len(body) == 0 {
		return http.StatusBadRequest, "empty body"
	}
	if err := checkShape(body); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	in := store.Incoming{App: app, Body: body, RemoteAddr: remote.String(),
		ContentType: req.Header.Get("Content-Type"), ReceivedAt: r.now()}
	r.gate.storing()
	_, err := r.db.Append(in)
	r.gate.stored()
	if err != nil {
		r.log.Error().Err(err).Str("app", app).Msg("store body; answering 503 so Apple retries")
		return http.StatusServiceUnavailable, "store unavailable, retry later"
	}
	r.processor.wake()
	return http.StatusOK, ""
}

// clientAddr is the peer's address, or the address a trusted proxy forwarded.
func (r *Relay) clientAddr(req *http.Request) netip.Addr {
	peer := parseHostAddr(req.RemoteAddr)
	if len(r.cfg.TrustedProxies) == 0 || !containsAddr(r.cfg.TrustedProxies, peer) {
		return peer
	}
	// Walk X-Forwarded-For from the right: the first hop not a trusted proxy
	// is the client; anything left of it may be forged.
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !containsAddr(r.cfg.TrustedProxies, a) {
			return a
		}
	}
	return peer
}

func parseHostAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
