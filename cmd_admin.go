package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

// adminCommands are the commands that talk to a running daemon's admin API
// (and compact, which needs it stopped).
func adminCommands() []*cobra.Command {
	return []*cobra.Command{
		newNotificationsCommand(), newDeliveriesCommand(), newReplayCommand(),
		newReverifyCommand(), newStatsCommand(), newCompactCommand(),
	}
}

// adminFlags say where the running daemon's admin API is.
type adminFlags struct{ admin, token, config string }

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.admin, "admin", "", "admin API base URL, e.g. http://127.0.0.1:8081 (default from --config's admin.listen)")
	cmd.Flags().StringVar(&f.token, "token", "", "admin API bearer token (default from --config's admin.token)")
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "configuration file (default $ASNRELAY_CONFIG or ./asnrelay.yaml)")
}

func (f *adminFlags) client() (*relay.AdminClient, error) {
	return relay.AdminEndpoint{URL: f.admin, Token: f.token, Config: f.config}.Client()
}

// daemonError passes the daemon's answer on as it is; a 400 means the command
// line asked for something the API refuses, so it exits 2 like a usage error.
func daemonError(err error) error {
	if ae, ok := errors.AsType[*relay.AdminError](err); ok && ae.Status == http.StatusBadRequest {
		return usageError{err}
	}
	return err
}

// writeRaw prints an API document as the daemon sent it.
func writeRaw(w io.Writer, raw []byte) error {
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}

// table writes aligned columns; call flush when done.
func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func row(tw *tabwriter.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = cell(fmt.Sprint(c))
	}
	fmt.Fprintln(tw, strings.Join(s, "\t"))
}

// cell keeps a table cell on one line and readable: untrusted text (a
// claimed type, a target's error) cannot break the table or the terminal.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	s = oneLine(s)
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}

// oneLine replaces control characters, so that untrusted text cannot move
// the cursor or break lines.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// stamp prints a time in UTC, to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// typeOf joins type and subtype the way filters take them.
func typeOf(typ, subtype string) string {
	if subtype == "" {
		return typ
	}
	return typ + "." + subtype
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// moreHint tells how to read the next page, on stderr so stdout stays a table.
func moreHint(cmd *cobra.Command, cursor string) {
	if cursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: repeat with --cursor %s\n", cursor)
	}
}
