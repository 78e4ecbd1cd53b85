package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

func newNotificationsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notifications",
		Short: "List and show stored notifications (running daemon)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("use notifications ls or notifications show ID")}
		},
	}
	cmd.AddCommand(newNotificationsListCommand(), newNotificationsShowCommand())
	return cmd
}

type notificationsListOptions struct {
	adminFlags
	query relay.NotificationQuery
	json  bool
}

func newNotificationsListCommand() *cobra.Command {
	var o notificationsListOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List notifications, newest first",
		Long: "List the notifications the daemon holds, newest first, one page at a time (--limit, default 50,\n" +
			"at most 1000; --cursor reads the next page). Unverified notifications show what their payload\n" +
			"claims. --json prints the API document {\"notifications\": [...], \"next_cursor\": \"...\"} as is.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, raw, err := c.Notifications(cmd.Context(), o.query)
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			tw := table(cmd.OutOrStdout(), "ID", "RECEIVED", "APP", "ENVIRONMENT", "TYPE", "STATE", "NOTIFICATION UUID")
			for _, n := range list.Notifications {
				row(tw, n.ID, stamp(n.ReceivedAt), n.App, n.Environment, typeOf(n.Type, n.Subtype), n.State, n.UUID)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			moreHint(cmd, list.NextCursor)
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.query.App, "app", "", "only this app")
	f.StringVar(&o.query.Environment, "environment", "", "only this environment (Production, Sandbox, Xcode, LocalTesting)")
	f.StringVar(&o.query.Type, "type", "", "only this notificationType, or TYPE.SUBTYPE")
	f.StringVar(&o.query.State, "state", "", "only this state: received, verified, unverified, duplicate")
	f.StringVar(&o.query.Since, "since", "", "received since: a duration ago (72h, 7d) or an RFC 3339 time")
	f.StringVar(&o.query.Until, "until", "", "received before: a duration ago or an RFC 3339 time")
	f.IntVar(&o.query.Limit, "limit", 0, "page size (default 50, at most 1000)")
	f.StringVar(&o.query.Cursor, "cursor", "", "next_cursor of the previous page")
	f.BoolVar(&o.json, "json", false, "print the API document as is")
	return cmd
}

type notificationsShowOptions struct {
	adminFlags
	body bool
	json bool
}

func newNotificationsShowCommand() *cobra.Command {
	var o notificationsShowOptions
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one notification: metadata, decoded payload, deliveries",
		Long: "Show one notification: its metadata, its payload decoded (marked UNVERIFIED unless it was\n" +
			"verified) and its deliveries. --body prints the exact bytes Apple sent instead; --json the API\n" +
			"document as is.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg("notification", args[0])
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if o.body {
				body, err := c.NotificationBody(cmd.Context(), id)
				if err != nil {
					return daemonError(err)
				}
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			d, raw, err := c.Notification(cmd.Context(), id)
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			return printNotification(cmd, d)
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&o.body, "body", false, "print the exact stored request body")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the API document as is")
	cmd.MarkFlagsMutuallyExclusive("body", "json")
	return cmd
}

func printNotification(cmd *cobra.Command, d relay.NotificationDetail) error {
	w := cmd.OutOrStdout()
	n := d.Notification
	tw := table(w, "notification", fmt.Sprint(n.ID))
	row(tw, "notification uuid", n.UUID)
	row(tw, "app", n.App)
	row(tw, "environment", n.Environment)
	row(tw, "type", typeOf(n.Type, n.Subtype))
	row(tw, "state", n.State)
	if n.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", oneLine(n.Reason)) // in full: it says what to fix
	}
	row(tw, "bundle id", n.BundleID)
	row(tw, "received", stamp(n.ReceivedAt)+" from "+cell(n.RemoteAddr))
	row(tw, "processed", stamp(n.ProcessedAt))
	row(tw, "size", plural(n.Size, "byte", "bytes"))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\ndeliveries (%d):\n", len(d.Deliveries))
	if len(d.Deliveries) > 0 {
		printDeliveries(w, d.Deliveries)
	}

	switch {
	case d.Payload == nil || string(d.Payload) == "null":
		fmt.Fprintf(w, "\npayload: not decoded: %s\n", d.PayloadError)
	default:
		label := "payload (verified):"
		if !d.Verified {
			label = "payload (UNVERIFIED: do not trust it):"
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, d.Payload, "", "  "); err != nil {
			buf.Reset()
			buf.Write(d.Payload)
		}
		fmt.Fprintf(w, "\n%s\n%s\n", label, buf.Bytes())
	}
	return nil
}
