package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

func newDeliveriesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List, show and retry deliveries (running daemon)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("use deliveries ls, deliveries show ID or deliveries retry ID")}
		},
	}
	cmd.AddCommand(newDeliveriesListCommand(), newDeliveriesShowCommand(), newDeliveriesRetryCommand())
	return cmd
}

type deliveriesListOptions struct {
	adminFlags
	query relay.DeliveryQuery
	json  bool
}

func newDeliveriesListCommand() *cobra.Command {
	var o deliveriesListOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List deliveries, newest first",
		Long: "List deliveries (one notification to one target), newest first, one page at a time.\n" +
			"--json prints the API document {\"deliveries\": [...], \"next_cursor\": \"...\"} as is.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, raw, err := c.Deliveries(cmd.Context(), o.query)
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			printDeliveries(cmd.OutOrStdout(), list.Deliveries)
			moreHint(cmd, list.NextCursor)
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.query.Target, "target", "", "only this target")
	f.StringVar(&o.query.State, "state", "", "only this state: pending, succeeded, dead")
	f.Uint64Var(&o.query.Notification, "notification", 0, "only the deliveries of this notification id")
	f.StringVar(&o.query.App, "app", "", "only this app")
	f.StringVar(&o.query.Type, "type", "", "only this notificationType")
	f.StringVar(&o.query.Since, "since", "", "created since: a duration ago (72h, 7d) or an RFC 3339 time")
	f.IntVar(&o.query.Limit, "limit", 0, "page size (default 50, at most 1000)")
	f.StringVar(&o.query.Cursor, "cursor", "", "next_cursor of the previous page")
	f.BoolVar(&o.json, "json", false, "print the API document as is")
	return cmd
}

func printDeliveries(w io.Writer, ds []relay.DeliveryInfo) {
	tw := table(w, "ID", "NOTIFICATION", "TARGET", "TYPE", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR")
	for _, d := range ds {
		state := d.State
		if d.ReplayedBy != 0 {
			state += fmt.Sprintf(" (replayed as %d)", d.ReplayedBy)
		}
		row(tw, d.ID, d.Notification, d.Target, d.Type, state, d.Attempts, stamp(d.CreatedAt), d.LastError)
	}
	tw.Flush()
}

type deliveriesShowOptions struct {
	adminFlags
	json bool
}

func newDeliveriesShowCommand() *cobra.Command {
	var o deliveriesShowOptions
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one delivery and its attempts",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg("delivery", args[0])
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			d, raw, err := c.Delivery(cmd.Context(), id)
			if err != nil {
				return daemonError(err)
			}
			w := cmd.OutOrStdout()
			if o.json {
				return writeRaw(w, raw)
			}
			printDeliveries(w, []relay.DeliveryInfo{d.Delivery})
			fmt.Fprintf(w, "\nattempts (%d):\n", len(d.Attempts))
			if len(d.Attempts) > 0 {
				tw := table(w, "N", "AT", "STATUS", "LATENCY", "ERROR", "RESPONSE")
				for _, a := range d.Attempts {
					status := "-"
					if a.Status != 0 {
						status = strconv.Itoa(a.Status)
					}
					row(tw, a.N, stamp(a.At), status, fmt.Sprintf("%.1fms", a.LatencyMS), a.Error, a.Response)
				}
				return tw.Flush()
			}
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&o.json, "json", false, "print the API document as is")
	return cmd
}

func newDeliveriesRetryCommand() *cobra.Command {
	var o adminFlags
	cmd := &cobra.Command{
		Use:   "retry ID",
		Short: "Send a delivery again, as a new delivery linked to it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg("delivery", args[0])
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, _, err := c.Retry(cmd.Context(), id)
			if err != nil {
				return daemonError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", plural(res.Created, "delivery", "deliveries"))
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

func parseIDArg(what, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageError{fmt.Errorf("%s id %q: want a positive integer", what, s)}
	}
	return id, nil
}
