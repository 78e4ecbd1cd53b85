// Command asnrelay receives App Store Server Notifications V2, stores each one
// durably before answering Apple, and forwards it to every configured target.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = ""
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "asnrelay:", err)
	var usage usageError
	if errors.As(err, &usage) || relay.IsConfigError(err) {
		return exitUsage
	}
	return exitRuntime
}

// usageError marks a wrong command line (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "asnrelay",
		Short: "A durable relay for App Store Server Notifications V2",
		Long: "asnrelay is the URL Apple sends App Store Server Notifications V2 to. It stores each\n" +
			"notification durably before answering, verifies it, and forwards the exact bytes to your backends.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (see asnrelay --help)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(), newVersionCommand(), newDecodeCommand(), newSendTestCommand())
	root.AddCommand(adminCommands()...)
	root.AddCommand(newRefundsCommand(), newConsumptionCommand())
	root.AddCommand(newCheckCommand(), newAppleCommand(), newBackfillCommand())
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

type serveOptions struct{ config string }

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the relay daemon",
		Long: "Run the relay: the public /asn/{app} endpoint, the admin API, processing and delivery.\n" +
			"SIGINT or SIGTERM stops intake, finishes in-flight requests and deliveries, and exits 0.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return relay.Serve(cmd.Context(), relay.ConfigPath(o.config), cmd.ErrOrStderr(), relay.Options{Version: version})
		},
	}
	cmd.Flags().StringVarP(&o.config, "config", "c", "", "configuration file (default $ASNRELAY_CONFIG or ./asnrelay.yaml)")
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and Go version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "asnrelay %s\ncommit %s\n%s %s/%s\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// buildCommit is the commit set by -ldflags, else the one Go recorded.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
