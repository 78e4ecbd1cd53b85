package relay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
)

// newLiveCA is a test CA valid around the machine's clock: the fake App
// Store Server API signs what it serves at the time it serves it.
func newLiveCA(t testing.TB) *appletest.CA {
	t.Helper()
	now := time.Now()
	ca, err := appletest.New(now.Add(-7*24*time.Hour), now.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// startFakeAPI serves a fake App Store Server API signing with ca, for the
// app of testConfig.
func startFakeAPI(t testing.TB, ca *appletest.CA) (*appletest.FakeAPI, string) {
	t.Helper()
	fake, err := appletest.NewFakeAPI(ca)
	if err != nil {
		t.Fatal(err)
	}
	fake.BundleID, fake.AppAppleID = testBundle, 1234567890
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

// withAPI gives the first app of cfg the fake's In-App Purchase key, written
// to a .p8 file as App Store Connect hands it out, and points it at baseURL.
func withAPI(t testing.TB, cfg *config.Config, fake *appletest.FakeAPI, baseURL string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "SubscriptionKey_"+fake.KeyID+".p8")
	if err := os.WriteFile(path, fake.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Apps[0].API = &config.API{IssuerID: fake.IssuerID, KeyID: fake.KeyID, PrivateKeyFile: path,
		PrivateKey: fake.KeyPEM(), BaseURL: baseURL}
}

func TestCheck(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	ctx := context.Background()

	t.Run("good key, online", func(t *testing.T) {
		cfg := testConfig(t, ca)
		withAPI(t, cfg, fake, url)
		got, err := Check(ctx, cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Environment != "Production" || got[1].Environment != "Sandbox" {
			t.Fatalf("statuses %+v, want Production and Sandbox", got)
		}
		for _, st := range got {
			if !st.Active || !st.Online || st.Status != StatusActive || !st.OK() || st.CheckedAt.IsZero() {
				t.Errorf("%+v, want Active online", st)
			}
		}
		reqs := fake.Requests()
		if len(reqs) != 2 || reqs[0].Path != "/inApps/v1/notifications/history" || reqs[0].AuthError != "" {
			t.Errorf("Apple got %+v, want two notification history requests", reqs)
		}
	})

	t.Run("good key, offline asks nobody", func(t *testing.T) {
		fake.Reset()
		cfg := testConfig(t, ca)
		withAPI(t, cfg, fake, "http://127.0.0.1:1") // nothing listens there
		got, err := Check(ctx, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range got {
			if !st.Active || st.Online {
				t.Errorf("%+v, want Active offline", st)
			}
		}
	})

	t.Run("wrong key id: 401 says what to check", func(t *testing.T) {
		cfg := testConfig(t, ca)
		withAPI(t, cfg, fake, url)
		cfg.Apps[0].API.KeyID = "WRONGKEY12"
		got, err := Check(ctx, cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range got {
			if st.Active || st.OK() || !strings.Contains(st.Status, "HTTP 401") ||
				!strings.Contains(st.Status, "key_id is the key's Key ID") || !strings.Contains(st.Status, "In-App Purchase key") {
				t.Errorf("status %q, want the 401 diagnosis", st.Status)
			}
		}
	})

	t.Run("Apple unreachable", func(t *testing.T) {
		cfg := testConfig(t, ca)
		withAPI(t, cfg, fake, "http://127.0.0.1:1")
		got, err := Check(ctx, cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		if st := got[0]; st.Active || !strings.Contains(st.Status, "cannot reach http://127.0.0.1:1") {
			t.Errorf("status %q, want cannot reach", st.Status)
		}
	})

	t.Run("no api block", func(t *testing.T) {
		got, err := Check(ctx, testConfig(t, ca), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range got {
			if st.API || st.Status != StatusNoAPI || !st.OK() {
				t.Errorf("%+v, want no api block", st)
			}
		}
	})

	t.Run("a certificate instead of the .p8 is a config error naming the file", func(t *testing.T) {
		cfg := testConfig(t, ca)
		withAPI(t, cfg, fake, url)
		cfg.Apps[0].API.PrivateKey = ca.RootPEM()
		_, err := Check(ctx, cfg, false)
		if !IsConfigError(err) || !errors.Is(err, apple.ErrInvalidPrivateKey) ||
			!strings.Contains(err.Error(), "apps[0].api.private_key_file") ||
			!strings.Contains(err.Error(), cfg.Apps[0].API.PrivateKeyFile) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v, want a config error naming the key file", err)
		}
	})
}

func TestDaemonChecksKeysAtStart(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	cfg := testConfig(t, ca)
	withAPI(t, cfg, fake, url)
	second := config.DefaultApp()
	second.Name, second.BundleID, second.Environments = "other", "com.example.other", []string{"Sandbox"}
	cfg.Apps = append(cfg.Apps, second)
	h := startRelay(t, cfg)

	var list AppList
	waitFor(t, "the key check", func() bool {
		resp, err := http.Get(h.admin + "/api/v1/apps")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		list = AppList{}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		return len(list.Apps) == 2 && !list.Apps[0].CheckedAt.IsZero()
	})
	my := list.Apps[0]
	if my.Name != "myapp" || !my.API || my.Status["Production"] != StatusActive || my.Status["Sandbox"] != StatusActive {
		t.Errorf("myapp: %+v, want Active in both environments", my)
	}
	other := list.Apps[1]
	if other.API || other.Status["Sandbox"] != StatusNoAPI || len(other.Status) != 1 {
		t.Errorf("other: %+v, want no api block", other)
	}
	for _, env := range []string{"Production", "Sandbox"} {
		if v := gaugeValue(h.r.metrics.appleAPIUp.WithLabelValues("myapp", env)); v != 1 {
			t.Errorf("asnrelay_apple_api_up{myapp,%s} = %v, want 1", env, v)
		}
	}
	if v := counterValue(h.r.metrics.appleRequests.WithLabelValues(apple.EndpointGetNotificationHistory, "200")); v != 2 {
		t.Errorf("asnrelay_apple_requests_total{get_notification_history,200} = %v, want 2", v)
	}
}

func TestDaemonReportsABadKeyAndKeepsServing(t *testing.T) {
	ca := newLiveCA(t)
	fake, url := startFakeAPI(t, ca)
	cfg := testConfig(t, ca)
	withAPI(t, cfg, fake, url)
	cfg.Apps[0].API.IssuerID = "not-the-issuer"
	h := startRelay(t, cfg)
	waitFor(t, "the key check", func() bool {
		return len(h.r.appleState.checksOf("myapp")) == 2
	})
	for _, st := range h.r.appleState.checksOf("myapp") {
		if st.Active || !strings.Contains(st.Status, "HTTP 401") {
			t.Errorf("%+v, want the 401 diagnosis", st)
		}
		if v := gaugeValue(h.r.metrics.appleAPIUp.WithLabelValues("myapp", st.Environment)); v != 0 {
			t.Errorf("asnrelay_apple_api_up{%s} = %v, want 0", st.Environment, v)
		}
	}
	if code := h.post(t, "myapp", body(t, ca, appletest.Notification{AppAppleID: 1234567890})); code != http.StatusOK {
		t.Errorf("ingest answered %d with a bad key, want 200", code)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
