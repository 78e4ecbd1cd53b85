package relay

import (
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/relay/config"
)

// NewLogger builds the logger that cfg asks for, writing to w.
func NewLogger(cfg config.Log, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil || cfg.Level == "" {
		return zerolog.Logger{}, &config.Error{Key: "log.level", Msg: fmt.Sprintf("unknown level %q", cfg.Level)}
	}
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.DateTime}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// newStdLogger routes net/http's own messages (TLS junk, bad requests) to
// zerolog at debug: strangers can trigger them at will.
func newStdLogger(l zerolog.Logger, server string) *log.Logger {
	return log.New(stdWriter{l.With().Str("server", server).Logger()}, "", 0)
}

type stdWriter struct{ log zerolog.Logger }

func (w stdWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
