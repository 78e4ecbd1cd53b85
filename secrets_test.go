package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
)

// The CLI must not print secrets either: not in check's statuses, not in
// config errors, not in the daemon's logs.

const (
	cliAdminToken = "adm1n-t0ken-s3cr3t"
	cliHeader     = "hdr-s3cr3t-value"
	cliURLPass    = "url-pa55-s3cr3t"
	cliURLQuery   = "query-s3cr3t"
	cliProvider   = "prov-s3cr3t"
	cliKeyJunk    = "garbage-s3cr3t-key-material"
)

var cliWebhook = "whsec_" + base64.StdEncoding.EncodeToString([]byte("signing-s3cr3t-key"))

// secretsConfig is a config with every kind of secret: an admin token, an
// In-App Purchase key file, a provider_url with a password and a query key,
// a target with a password, a query token, a header and a webhook secret.
func secretsConfig(keyFile, baseURL, target, public, admin string) string {
	return fmt.Sprintf(`listen: %q
data_dir: ./data
log: {level: trace, format: console}
admin: {listen: %q, token: %q}
apps:
  - name: myapp
    bundle_id: com.example.app
    app_apple_id: 1234567890
    environments: [Sandbox]
    api:
      issuer_id: "ISSUER"
      key_id: FAKEKEY123
      private_key_file: %q
      base_url: %q
    consumption:
      enabled: true
      dry_run: true
      provider_url: "http://prov:%s@127.0.0.1:9/answer?key=%s"
targets:
  - name: backend
    url: %q
    headers: {Authorization: "Bearer %s"}
    secret: %q
    retry: {initial: 10ms, max_interval: 50ms}
`, public, admin, cliAdminToken, keyFile, baseURL, cliURLPass, cliProvider, target, cliHeader, cliWebhook)
}

func cliForbidden(pems ...[]byte) []string {
	out := []string{cliAdminToken, cliHeader, cliURLPass, cliURLQuery, cliProvider, cliKeyJunk, cliWebhook,
		strings.TrimPrefix(cliWebhook, "whsec_"), "signing-s3cr3t", "PRIVATE KEY", "BEGIN"}
	for _, p := range pems {
		for _, line := range strings.Split(string(p), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return out
}

func leaked(s string, forbidden []string) []string {
	var found []string
	for _, f := range forbidden {
		if strings.Contains(s, f) {
			found = append(found, f)
		}
	}
	return found
}

func pemOf(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestCLIDoesNotPrintSecrets(t *testing.T) {
	env := newAppleEnv(t)
	ca, fake := env.ca, env.fake
	put := func(name string, data []byte) string {
		path := filepath.Join(env.dir, name)
		write(t, path, data)
		return path
	}
	goodKey := env.keyPEM
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	otherPEM := pemOf(t, "PRIVATE KEY", ecDER)
	otherKey := put("other.p8", otherPEM)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := pemOf(t, "PRIVATE KEY", rsaDER)
	rsaFile := put("rsa.p8", rsaPEM)
	ecSEC1, _ := x509.MarshalECPrivateKey(ecKey)
	sec1PEM := pemOf(t, "EC PRIVATE KEY", ecSEC1) // accepted as a key: only its text is forbidden
	junkFile := put("junk.p8", []byte(cliKeyJunk+"\n"))
	certFile := put("cert.p8", pemOf(t, "CERTIFICATE", ca.Leaf.Raw))
	forbidden := cliForbidden(fake.KeyPEM(), otherPEM, rsaPEM, sec1PEM)

	withPass := func(u string) string { return strings.Replace(u, "http://", "http://user:"+cliURLPass+"@", 1) }
	target := withPass("http://127.0.0.1:9") + "/hook?token=" + cliURLQuery
	closed := withPass("http://" + freePort(t))

	t.Run("check", func(t *testing.T) {
		// Apple's fake speaks Sandbox only; Production needs no key here.
		for _, tc := range []struct {
			name, key, baseURL string
			online             bool
			want               string
		}{
			{"offline", goodKey, withPass(env.api), false, "Active"},
			{"online", goodKey, withPass(env.api), true, "Active"},
			{"key Apple does not know", otherKey, withPass(env.api), true, "401"},
			{"Apple unreachable", goodKey, closed, true, "cannot reach"},
		} {
			cfg := put("check.yaml", []byte(secretsConfig(tc.key, tc.baseURL, target, "127.0.0.1:0", "127.0.0.1:0")))
			args := []string{"check", "--config", cfg}
			if tc.online {
				args = append(args, "--online")
			}
			code, out, errOut := runCLI(t, args...)
			if !strings.Contains(out+errOut, tc.want) {
				t.Errorf("%s: exit %d, %q %q; want %q", tc.name, code, out, errOut, tc.want)
			}
			if found := leaked(out+errOut, forbidden); len(found) > 0 {
				t.Errorf("%s: check printed %q:\n%s%s", tc.name, found, out, errOut)
			}
		}
	})

	t.Run("config errors", func(t *testing.T) {
		good := secretsConfig(goodKey, env.api, target, "127.0.0.1:0", "127.0.0.1:0")
		for _, tc := range []struct{ name, config string }{
			{"webhook secret not base64", strings.Replace(good, cliWebhook, "whsec_not*base64*"+cliProvider, 1)},
			{"header value with a control character", strings.Replace(good, "Bearer "+cliHeader, `Bearer `+cliHeader+`\u0001`, 1)},
			{"admin as a string", strings.Replace(good, fmt.Sprintf("admin: {listen: %q, token: %q}", "127.0.0.1:0", cliAdminToken), "admin: "+cliAdminToken, 1)},
			{"token as a list", strings.Replace(good, fmt.Sprintf("token: %q", cliAdminToken), "token: ["+cliAdminToken+"]", 1)},
			{"token as a map", strings.Replace(good, fmt.Sprintf("token: %q", cliAdminToken), "token: {x: "+cliAdminToken+"}", 1)},
			{"misspelt token key", strings.Replace(good, "token:", "tokn:", 1)},
			{"unterminated quote", strings.Replace(good, fmt.Sprintf("token: %q", cliAdminToken), `token: "`+cliAdminToken, 1)},
			{"duplicate secret key", strings.Replace(good, fmt.Sprintf("secret: %q", cliWebhook), fmt.Sprintf("secret: %q\n    secret: %q", cliWebhook, cliWebhook), 1)},
			{"target URL with a space", strings.Replace(good, target, withPass("http://exa mple.com")+"/?token="+cliURLQuery, 1)},
			{"provider_url not http", strings.Replace(good, "http://prov:", "ftp://prov:", 1)},
			{"key file of junk", strings.Replace(good, goodKey, junkFile, 1)},
			{"RSA key", strings.Replace(good, goodKey, rsaFile, 1)},
			{"certificate for a key", strings.Replace(good, goodKey, certFile, 1)},
			{"unset variable", strings.Replace(good, fmt.Sprintf("token: %q", cliAdminToken), `token: "${ASNRELAY_NO_SUCH_VAR}"`, 1)},
			{"admin off loopback, empty token", strings.Replace(good, fmt.Sprintf("admin: {listen: %q, token: %q}", "127.0.0.1:0", cliAdminToken), `admin: {listen: "0.0.0.0:0"}`, 1)},
		} {
			if tc.config == good {
				t.Fatalf("%s: the edit did not apply", tc.name)
			}
			cfg := put("bad.yaml", []byte(tc.config))
			for _, cmd := range []string{"serve", "check"} {
				// A config that is not refused would serve until the deadline.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var stdout, stderr syncBuffer
				code := run(ctx, []string{cmd, "--config", cfg}, &stdout, &stderr)
				cancel()
				out, errOut := stdout.String(), stderr.String()
				if code != exitUsage {
					t.Errorf("%s: %s exit %d, want 2: %s", tc.name, cmd, code, errOut)
				}
				if found := leaked(out+errOut, forbidden); len(found) > 0 {
					t.Errorf("%s: %s printed %q: %s", tc.name, cmd, found, errOut)
				}
			}
		}
	})

	t.Run("serve", func(t *testing.T) {
		// The daemon at trace level, console format: a notification, failed
		// deliveries to a target refusing connections, wrong admin tokens.
		public, admin := freePort(t), freePort(t)
		refused := withPass("http://"+freePort(t)) + "/hook?token=" + cliURLQuery
		root := put("root.pem", ca.RootPEM())
		cfg := secretsConfig(goodKey, withPass(env.api), refused, public, admin)
		cfg = strings.Replace(cfg, "apps:", "apple: {root_certs: ["+root+"]}\napps:", 1)
		path := put("serve.yaml", []byte(cfg))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var logs syncBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"serve", "--config", path}, &bytes.Buffer{}, &logs) }()
		deadline := time.Now().Add(10 * time.Second)
		for !serving(public) {
			if time.Now().After(deadline) {
				t.Fatalf("not serving: %s", logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		b, err := ca.Body(appletest.Notification{Type: "DID_RENEW", BundleID: "com.example.app"})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+public+"/asn/myapp", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, tok := range []string{"wrong", cliAdminToken + "x"} {
			req, _ := http.NewRequest("GET", "http://"+admin+"/api/v1/stats", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		for !strings.Contains(logs.String(), "delivery attempt failed") || strings.Count(logs.String(), "delivery attempt failed") < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("no failed deliveries logged: %s", logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
		out := logs.String()
		forbiddenHere := append(forbidden, string(b[len(b)-90:len(b)-2])) // the body's signature
		if found := leaked(out, forbiddenHere); len(found) > 0 {
			t.Errorf("serve logged %q:\n%s", found, out)
		}
		t.Logf("serve at trace level: %d log lines, no secret", strings.Count(out, "\n"))
	})
}

func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
