package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

type replayOptions struct {
	adminFlags
	ids  []uint
	req  relay.ReplayRequest
	json bool
}

func newReplayCommand() *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay [--id ID]... [--target T] [--state dead] [--app A] [--type T] [--since DUR]",
		Short: "Send notifications or dead deliveries again (running daemon)",
		Long: "Create new deliveries; history is kept (each replay links to the delivery it repeats).\n\n" +
			"  --id ID...      these notifications, to every target they qualify for (or --target)\n" +
			"  --state dead    every dead delivery not yet replayed, matching --target, --app, --type,\n" +
			"                  --environment, --since/--until (when they were created)\n" +
			"  --since DUR     without --id or --state: every processed notification received since then,\n" +
			"                  matching the filters (a new target catching up, say)\n\n" +
			"Target filters always hold: an unverified notification never goes to a verified_only target.\n" +
			"Prints how many deliveries it created.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.req.IDs = notificationIDs(o.ids)
			if o.req.State != "" && o.req.State != "dead" {
				return usageError{fmt.Errorf("--state: only dead, got %q", o.req.State)}
			}
			if len(o.req.IDs) == 0 && o.req.State == "" && o.req.Since == "" {
				return usageError{fmt.Errorf("say what to replay: --id ID, --state dead, or --since DUR")}
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, raw, err := c.Replay(cmd.Context(), o.req)
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", plural(res.Created, "delivery", "deliveries"))
			for _, s := range res.Skipped {
				what := fmt.Sprintf("notification %d", s.Notification)
				if s.Delivery != 0 {
					what = fmt.Sprintf("delivery %d (notification %d)", s.Delivery, s.Notification)
				}
				if s.Target != "" {
					what += " to " + s.Target
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s: %s\n", what, s.Reason)
			}
			if res.Truncated {
				fmt.Fprintf(cmd.ErrOrStderr(), "stopped at %d deliveries: replay the rest with a narrower --since/--until\n", relay.MaxReplay)
			}
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.UintSliceVar(&o.ids, "id", nil, "notification id; repeatable (or comma-separated)")
	f.StringVar(&o.req.Target, "target", "", "only to this target")
	f.StringVar(&o.req.State, "state", "", "dead: replay dead deliveries")
	f.StringVar(&o.req.App, "app", "", "only this app")
	f.StringVar(&o.req.Type, "type", "", "only this notificationType, or TYPE.SUBTYPE")
	f.StringVar(&o.req.Environment, "environment", "", "only this environment")
	f.StringVar(&o.req.Since, "since", "", "since: a duration ago (72h, 7d) or an RFC 3339 time")
	f.StringVar(&o.req.Until, "until", "", "until: a duration ago or an RFC 3339 time")
	f.BoolVar(&o.json, "json", false, "print the API document as is")
	return cmd
}

type reverifyOptions struct {
	adminFlags
	ids []uint
	req relay.ReverifyRequest
}

func newReverifyCommand() *cobra.Command {
	var o reverifyOptions
	cmd := &cobra.Command{
		Use:   "reverify [--since DUR] [--id ID]...",
		Short: "Verify unverified notifications again (running daemon)",
		Long: "Send unverified notifications back to processing, where they are verified again with the\n" +
			"daemon's current configuration (after adding a root certificate or fixing an app's bundle_id,\n" +
			"app_apple_id or environments, and restarting) and delivered to the targets they now qualify\n" +
			"for. Targets with verified_only: false get them again. Prints how many were queued.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.req.IDs = notificationIDs(o.ids)
			c, err := o.client()
			if err != nil {
				return err
			}
			res, _, err := c.Reverify(cmd.Context(), o.req)
			if err != nil {
				return daemonError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queued %s for verification\n", plural(res.Queued, "notification", "notifications"))
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&o.req.Since, "since", "", "only those received since: a duration ago (72h, 7d) or an RFC 3339 time")
	cmd.Flags().UintSliceVar(&o.ids, "id", nil, "only these notification ids; repeatable")
	return cmd
}

func notificationIDs(ids []uint) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = uint64(id)
	}
	return out
}
