package relay

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/asnrelay/asnrelay/relay/config"
)

// DefaultConfigFile is used when neither --config nor $ASNRELAY_CONFIG is set.
const DefaultConfigFile = "asnrelay.yaml"

// ConfigPath picks the configuration file: the flag's value, else
// $ASNRELAY_CONFIG, else ./asnrelay.yaml.
func ConfigPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("ASNRELAY_CONFIG"); env != "" {
		return env
	}
	return DefaultConfigFile
}

// IsConfigError reports whether err comes from a bad configuration, which
// the CLI reports with exit code 2.
func IsConfigError(err error) bool { return errors.Is(err, config.ErrInvalid) }

// Serve loads the configuration at path and runs a relay until ctx ends,
// logging to logOut.
func Serve(ctx context.Context, path string, logOut io.Writer, opts Options) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log, err := NewLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}
	r, err := New(cfg, log, opts)
	if err != nil {
		return err
	}
	if err := r.Open(); err != nil {
		return err
	}
	return errors.Join(r.Run(ctx), r.Close())
}
