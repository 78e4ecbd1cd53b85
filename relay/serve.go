package relay

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"

	"github.com/asnrelay/asnrelay/relay/config"
)

// DefaultConfigFile is used when neither --config nor $ASNRELAY_CONFIG is set.
const DefaultConfigFile = "asnrelay.yaml"

// MinProcs is the fewest Go processors the daemon runs with. The store's
// writer spends most of its time in fsync, and a goroutine in a system call
// keeps its processor until the runtime notices; with one processor (a
// one-CPU container, where Go sets GOMAXPROCS to 1) every request waits
// behind every fsync. Two let one run handlers while the other waits on
// the disk; the container's CPU quota still bounds the CPU used.
const MinProcs = 2

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
	if prev := runtime.GOMAXPROCS(0); prev < MinProcs {
		runtime.GOMAXPROCS(MinProcs)
		log.Info().Int("from", prev).Int("to", MinProcs).Msg("raised GOMAXPROCS: fsync must not stall request handling")
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
