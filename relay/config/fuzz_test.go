package config

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is a
// config error, and that what it accepts is valid and can be redacted.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(bytes.NewReader(data), Options{
			Name: "fuzz.yaml",
			Dir:  "/etc/asnrelay",
			LookupEnv: func(name string) (string, bool) {
				v, ok := map[string]string{"TOKEN": "t0ken", "HOST": "0.0.0.0", "N": "8", "EMPTY": ""}[name]
				return v, ok
			},
			ReadFile: func(name string) ([]byte, error) {
				switch {
				case strings.Contains(name, "missing"):
					return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
				case strings.HasSuffix(name, ".p8"):
					return []byte(testPEM), nil
				}
				return []byte("whsec_c2VjcmV0\n"), nil
			},
		})
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config and error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not match ErrInvalid", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		r := cfg.Redacted()
		if err := r.Validate(); err != nil {
			t.Fatalf("redacted config does not validate: %v", err)
		}
		for _, a := range cfg.Apps {
			if !a.Allows(a.Environments[0]) {
				t.Fatalf("app %q does not allow its own environment %q", a.Name, a.Environments[0])
			}
		}
	})
}
