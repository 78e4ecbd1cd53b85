package apple_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/asnrelay/asnrelay/apple"
)

func TestAppleRootCAFingerprint(t *testing.T) {
	const want = "63:34:3A:BF:B8:9A:6A:03:EB:B5:7E:9B:3F:5F:A7:BE:7C:4F:5C:75:6F:30:17:B3:A8:C4:88:C3:65:3E:91:79"
	root := apple.AppleRootCA()
	sum := sha256.Sum256(root.Raw)
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	if got := strings.Join(hex, ":"); got != want {
		t.Fatalf("fingerprint %s, want %s", got, want)
	}
	if root.Subject.CommonName != "Apple Root CA - G3" || !root.IsCA {
		t.Fatalf("subject %s, CA %v", root.Subject, root.IsCA)
	}
}

func TestParseCertificates(t *testing.T) {
	a, b := newCA(t), newCA(t)
	twoPEM := append(append([]byte("comment\n"), a.RootPEM()...), b.RootPEM()...)
	twoPEM = append(twoPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...)

	tests := []struct {
		name    string
		in      []byte
		want    int
		wantErr bool
	}{
		{name: "DER", in: a.Root.Raw, want: 1},
		{name: "one PEM", in: a.RootPEM(), want: 1},
		{name: "two PEM blocks among others", in: twoPEM, want: 2},
		{name: "Apple root DER", in: apple.AppleRootCA().Raw, want: 1},
		{name: "empty", in: nil, wantErr: true},
		{name: "garbage", in: []byte("not a certificate"), wantErr: true},
		{name: "PEM without certificates", in: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), wantErr: true},
		{name: "PEM certificate with bad DER", in: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := apple.ParseCertificates(tt.in)
			if (err != nil) != tt.wantErr || len(certs) != tt.want {
				t.Fatalf("ParseCertificates = %d certificates, %v; want %d (error %v)", len(certs), err, tt.want, tt.wantErr)
			}
		})
	}
	certs, _ := apple.ParseCertificates(twoPEM)
	if !bytes.Equal(certs[0].Raw, a.Root.Raw) || !bytes.Equal(certs[1].Raw, b.Root.Raw) {
		t.Fatal("certificates out of order")
	}
}
