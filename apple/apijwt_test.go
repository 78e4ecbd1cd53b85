package apple_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/asnrelay/asnrelay/apple"
)

func newAPIKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

func TestParsePrivateKey(t *testing.T) {
	p256 := newAPIKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1 := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("EC PRIVATE KEY", der)
	}
	pub, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// A .p8 as App Store Connect hands it out: CRLF line ends, a trailing newline missing.
	p8 := strings.ReplaceAll(strings.TrimRight(string(pkcs8(t, p256)), "\n"), "\n", "\r\n")

	tests := []struct {
		name string
		in   []byte
		want string // "" means success; else a substring of the error
	}{
		{"pkcs8 p-256", pkcs8(t, p256), ""},
		{"p8 with CRLF", []byte(p8), ""},
		{"sec1 p-256", sec1(p256), ""},
		{"with text around", append(append([]byte("key for the app:\n"), pkcs8(t, p256)...), "bye\n"...), ""},
		{"not pem", []byte("MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg"), "not a PEM file: expected the .p8 In-App Purchase key downloaded from App Store Connect"},
		{"empty", nil, "not a PEM file"},
		{"certificate", newCA(t).RootPEM(), "certificate, not a private key"},
		{"rsa pkcs8", pkcs8(t, rsaKey), "an RSA key"},
		{"rsa pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "an RSA key"},
		{"ed25519", pkcs8(t, edKey), "Ed25519"},
		{"p-384 pkcs8", pkcs8(t, p384), "curve P-384, want P-256"},
		{"p-384 sec1", sec1(p384), "curve P-384, want P-256"},
		{"public key", pemOf("PUBLIC KEY", pub), "public key"},
		{"encrypted", pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "encrypted"},
		{"garbage in a PRIVATE KEY block", pemOf("PRIVATE KEY", []byte("definitely not DER, but secret-ish")), "not a valid PKCS#8 key"},
		{"garbage in an EC PRIVATE KEY block", pemOf("EC PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), "not a valid SEC1 key"},
		{"other block", pemOf("OPENSSH PRIVATE KEY", []byte{1}), `"OPENSSH PRIVATE KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := apple.ParsePrivateKey(tt.in)
			if tt.want == "" {
				if err != nil || key == nil || !key.Equal(p256) {
					t.Fatalf("ParsePrivateKey = %v, %v", key, err)
				}
				return
			}
			if err == nil || key != nil || !errors.Is(err, apple.ErrInvalidPrivateKey) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParsePrivateKey error %v, want one containing %q", err, tt.want)
			}
			// No key material in the message: no run of 16 base64 characters of the input.
			if block, _ := pem.Decode(tt.in); block != nil {
				b64 := base64.StdEncoding.EncodeToString(block.Bytes)
				for i := 0; i+16 <= len(b64); i += 8 {
					if strings.Contains(err.Error(), b64[i:i+16]) {
						t.Fatalf("error %q contains key material", err)
					}
				}
				if strings.Contains(err.Error(), "secret-ish") {
					t.Fatalf("error %q contains the block's bytes", err)
				}
			}
		})
	}
}
