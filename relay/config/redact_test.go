package config

import (
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	cfg := valid()
	cfg.Admin.Token = "admintoken"
	cfg.Apps[0].API = &API{IssuerID: "i", KeyID: "k", PrivateKey: []byte(testPEM), BaseURL: "https://u:pw@api.example.com/"}
	cfg.Apps[0].Consumption.ProviderURL = "https://example.com/c?key=providerkey"
	cfg.Targets[0].Secret = "whsec_c2VjcmV0"
	cfg.Targets[0].Headers = map[string]string{"Authorization": "Bearer headertoken"}
	cfg.Targets[0].URL = "https://user:urlpass@example.com/hook?token=querytoken&x=1"
	before := strings.Join(strings.Fields(fmtConfig(cfg)), " ")

	r := cfg.Redacted()
	out := fmtConfig(r)
	for _, secret := range []string{"admintoken", "PRIVATE KEY", ":pw@", "providerkey", "c2VjcmV0", "headertoken", "urlpass", "querytoken"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted config contains %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "api.example.com") || !strings.Contains(out, "user:REDACTED@example.com/hook") {
		t.Errorf("redacted config lost non-secret parts:\n%s", out)
	}
	if after := strings.Join(strings.Fields(fmtConfig(cfg)), " "); after != before {
		t.Errorf("Redacted changed the original:\n%s\n%s", before, after)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("redacted config does not validate: %v", err)
	}
}

func fmtConfig(c Config) string {
	var b strings.Builder
	b.WriteString(c.Admin.Token + "\n")
	for _, a := range c.Apps {
		if a.API != nil {
			b.WriteString(string(a.API.PrivateKey) + a.API.BaseURL + "\n")
		}
		b.WriteString(a.Consumption.ProviderURL + "\n")
	}
	for _, tg := range c.Targets {
		b.WriteString(tg.URL + " " + tg.Secret + "\n")
		for k, v := range tg.Headers {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.String()
}
