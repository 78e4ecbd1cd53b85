package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminURL(t *testing.T) {
	for listen, want := range map[string]string{
		":8081":            "http://127.0.0.1:8081",
		"0.0.0.0:8081":     "http://127.0.0.1:8081",
		"[::]:8081":        "http://[::1]:8081",
		"127.0.0.1:9000":   "http://127.0.0.1:9000",
		"localhost:8081":   "http://localhost:8081",
		"10.1.2.3:8081":    "http://10.1.2.3:8081",
		"[fd00::1]:8081":   "http://[fd00::1]:8081",
		"admin.local:8081": "http://admin.local:8081",
	} {
		if got := AdminURL(listen); got != want {
			t.Errorf("AdminURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestNewAdminClientWantsAURLWithScheme(t *testing.T) {
	for _, base := range []string{"127.0.0.1:8081", "ftp://x", "http://", ":::"} {
		if _, err := NewAdminClient(base, "", nil); err == nil {
			t.Errorf("NewAdminClient(%q) succeeded", base)
		}
	}
	c, err := NewAdminClient("https://relay.example/admin/", "t", nil)
	if err != nil || c.Base() != "https://relay.example/admin" {
		t.Errorf("base = %v, %v", c, err)
	}
}

func TestAdminClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/prefix/api/v1/stats":
			if r.Header.Get("Authorization") != "Bearer tok" {
				writeError(w, 401, "missing or wrong bearer token (admin.token)")
				return
			}
			writeJSON(w, 200, Stats{Version: "x"})
		case "/prefix/api/v1/notifications/7":
			http.Error(w, "bad gateway from a proxy", http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, _ := NewAdminClient(srv.URL+"/prefix", "tok", nil)
	if st, raw, err := c.Stats(ctx, ""); err != nil || st.Version != "x" || !strings.Contains(string(raw), `"version": "x"`) {
		t.Errorf("stats = %+v, %s, %v", st, raw, err)
	}
	_, _, err := c.Notification(ctx, 7)
	var ae *AdminError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "bad gateway from a proxy" {
		t.Errorf("plain-text error: %v", err)
	}
	if _, err := c.NotificationBody(ctx, 1); !errors.As(err, &ae) || ae.Status != 418 || ae.Message != "I'm a teapot" {
		t.Errorf("empty error: %v", err)
	}
	c, _ = NewAdminClient(srv.URL+"/prefix", "", nil)
	if _, _, err := c.Stats(ctx, ""); err == nil || err.Error() != "missing or wrong bearer token (admin.token) (HTTP 401)" {
		t.Errorf("401: %v", err)
	}
}

func TestAdminEndpointResolution(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "asnrelay.yaml")
	os.WriteFile(path, []byte("admin: {listen: \"0.0.0.0:9191\", token: from-config}\napps:\n  - name: a\n    bundle_id: b\n    environments: [Sandbox]\n"), 0o600)
	t.Chdir(t.TempDir()) // no ./asnrelay.yaml
	t.Setenv("ASNRELAY_CONFIG", "")
	for _, tc := range []struct {
		e           AdminEndpoint
		base, token string
	}{
		{AdminEndpoint{}, "http://127.0.0.1:8081", ""},
		{AdminEndpoint{Config: path}, "http://127.0.0.1:9191", "from-config"},
		{AdminEndpoint{Config: path, URL: "http://10.0.0.1:1", Token: "flag"}, "http://10.0.0.1:1", "flag"},
		{AdminEndpoint{Config: path, URL: "http://10.0.0.1:1"}, "http://10.0.0.1:1", "from-config"},
	} {
		c, err := tc.e.Client()
		if err != nil || c.Base() != tc.base || c.token != tc.token {
			t.Errorf("%+v: %v %v", tc.e, c, err)
		}
	}
	if _, err := (AdminEndpoint{Config: filepath.Join(dir, "missing.yaml")}).Client(); !IsConfigError(err) {
		t.Errorf("missing config: %v", err)
	}
	t.Setenv("ASNRELAY_CONFIG", path)
	if c, err := (AdminEndpoint{}).Client(); err != nil || c.token != "from-config" {
		t.Errorf("$ASNRELAY_CONFIG: %v %v", c, err)
	}
}
