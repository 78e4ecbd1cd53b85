package apple

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// appleRootCAG3 is Apple Root CA - G3 (DER), the root of the chain that signs App Store data,
// as published at https://www.apple.com/certificateauthority/. SHA-256 fingerprint
// 63:34:3A:BF:B8:9A:6A:03:EB:B5:7E:9B:3F:5F:A7:BE:7C:4F:5C:75:6F:30:17:B3:A8:C4:88:C3:65:3E:91:79.
//
//go:embed AppleRootCA-G3.cer
var appleRootCAG3 []byte

// AppleRootCA returns a fresh copy of the embedded Apple Root CA - G3 certificate.
func AppleRootCA() *x509.Certificate {
	cert, err := x509.ParseCertificate(appleRootCAG3)
	if err != nil {
		// The bytes are compiled in and checked by a test; this is a broken build, not bad input.
		panic("apple: embedded AppleRootCA-G3.cer does not parse: " + err.Error())
	}
	return cert
}

// ParseCertificates parses one or more certificates from PEM (any number of CERTIFICATE
// blocks; other blocks are skipped) or from a single DER certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !strings.Contains(string(data), "-----BEGIN") {
		cert, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("parse DER certificate: %w", err)
		}
		return []*x509.Certificate{cert}, nil
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PEM certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("parse PEM certificates: no CERTIFICATE block found")
	}
	return certs, nil
}
