package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
	"github.com/asnrelay/asnrelay/relay/config"
)

type backfillOptions struct {
	adminFlags
	app, environment string
	since            string
	onlyFailures     bool
}

func newBackfillCommand() *cobra.Command {
	var o backfillOptions
	cmd := &cobra.Command{
		Use:   "backfill --app A",
		Short: "Fetch Apple's notification history and store what the relay missed",
		Long: "Ask the running daemon to fetch the app's Notification History from Apple for the last --since\n" +
			"(default 72h, at most 180d) and to store every notification it does not hold yet; they then go\n" +
			"through verification, dedupe and routing like any other. Prints how many were fetched, stored\n" +
			"and skipped (already held).",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.app == "" {
				return usageError{fmt.Errorf("--app is required")}
			}
			since, err := config.ParseDuration(o.since)
			if err != nil || since <= 0 || since > relay.MaxBackfillWindow {
				return usageError{fmt.Errorf("--since %q: want a duration up to 180d, like 72h or 7d", o.since)}
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, _, err := c.Backfill(cmd.Context(), relay.BackfillRequest{
				App: o.app, Environment: o.environment, Start: time.Now().Add(-since), OnlyFailures: o.onlyFailures,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %v %s .. %s: fetched %d, stored %d, skipped %d (already held)\n",
				res.App, res.Environments, res.Start.Format(time.RFC3339), res.End.Format(time.RFC3339),
				res.Fetched, res.Stored, res.Skipped)
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "", "app name (required)")
	f.StringVar(&o.environment, "environment", "", "Production or Sandbox (default: each the app accepts)")
	f.StringVar(&o.since, "since", "72h", "how far back, up to 180d")
	f.BoolVar(&o.onlyFailures, "only-failures", false, "only notifications Apple failed to deliver")
	return cmd
}
