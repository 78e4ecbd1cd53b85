package appletest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// MarshalPEM writes the CA as six PEM blocks (root, intermediate and leaf
// certificates, then their keys), so a test CA can be kept and reused, e.g.
// by `asnrelay send-test --root-out`. It holds private keys: keep it private.
func (ca *CA) MarshalPEM() ([]byte, error) {
	var out []byte
	for _, c := range []*x509.Certificate{ca.Root, ca.Intermediate, ca.Leaf} {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	for _, k := range []*ecdsa.PrivateKey{ca.RootKey, ca.IntermediateKey, ca.LeafKey} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("marshal key: %w", err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	return out, nil
}

// ParsePEM reads a CA written by MarshalPEM.
func ParsePEM(data []byte) (*CA, error) {
	var (
		certs []*x509.Certificate
		keys  []*ecdsa.PrivateKey
	)
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("test CA: %w", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("test CA: %w", err)
			}
			ec, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, errors.New("test CA: key is not ECDSA")
			}
			keys = append(keys, ec)
		}
	}
	if len(certs) != 3 || len(keys) != 3 {
		return nil, fmt.Errorf("test CA: want 3 certificates and 3 keys, found %d and %d", len(certs), len(keys))
	}
	return &CA{Root: certs[0], Intermediate: certs[1], Leaf: certs[2],
		RootKey: keys[0], IntermediateKey: keys[1], LeafKey: keys[2]}, nil
}
