package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

func newConsumptionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consumption",
		Short: "Review, send or cancel the answers to CONSUMPTION_REQUEST",
		Long: "Apple sends CONSUMPTION_REQUEST when a customer asks for a refund and waits 12 hours for\n" +
			"Send Consumption Information. These commands show the answers the daemon queued, sent or\n" +
			"skipped, and change a pending one during its review delay.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newConsumptionLsCommand(),
		newConsumptionActionCommand(relay.ConsumptionActionSendNow, "send TRANSACTION_ID", "Send the pending answer now (optionally with another --preference)"),
		newConsumptionActionCommand(relay.ConsumptionActionOverride, "override TRANSACTION_ID", "Change the pending answer's --preference, keep its send time"),
		newConsumptionActionCommand(relay.ConsumptionActionCancel, "cancel TRANSACTION_ID", "Cancel the pending answer: nothing is sent to Apple"),
	)
	return cmd
}

type consumptionLsOptions struct {
	adminFlags
	app, state, since string
	limit             int
	json              bool
}

func newConsumptionLsCommand() *cobra.Command {
	var o consumptionLsOptions
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List consumption answers: pending ones with their deadlines, then what was sent",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, raw, err := c.Consumption(cmd.Context(), relay.ConsumptionQuery{App: o.app, State: o.state, Since: o.since, Limit: o.limit})
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			printConsumption(cmd.OutOrStdout(), list)
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "", "only this app")
	f.StringVar(&o.state, "state", "", "only pending, sent, failed, skipped, dry_run or cancelled")
	f.StringVar(&o.since, "since", "", "only requests received since, e.g. 24h or an RFC 3339 time")
	f.IntVar(&o.limit, "limit", 0, "transactions to list (default 100)")
	f.BoolVar(&o.json, "json", false, "print the JSON document")
	return cmd
}

func printConsumption(out io.Writer, list relay.ConsumptionList) {
	// Pending first, the closest deadline first; then the rest as listed.
	rows := slices.Clone(list.Consumption)
	slices.SortStableFunc(rows, func(a, b relay.ConsumptionInfo) int {
		ap, bp := a.State == "pending", b.State == "pending"
		switch {
		case ap && bp:
			return a.Deadline.Compare(b.Deadline)
		case ap:
			return -1
		case bp:
			return 1
		}
		return 0
	})
	tw := table(out, "TRANSACTION", "REQ", "APP", "ENVIRONMENT", "REASON", "STATE", "PREFERENCE", "SOURCE", "SEND AT", "DEADLINE", "LEFT", "NOTE")
	for _, c := range rows {
		answer, sendAt, left := c.Answer, "", ""
		if c.State == "pending" {
			answer, sendAt = c.Planned, stamp(c.SendAt)
			left = (time.Duration(c.SecondsLeft) * time.Second).Round(time.Minute).String()
		}
		pref := ""
		if answer != nil {
			pref = answer.RefundPreference
			if pref == "" {
				pref = "(none)"
			}
			if !answer.CustomerConsented {
				pref += " (no consent)"
			}
		}
		note := strings.TrimSpace(c.Error + " " + c.ProviderError)
		if c.InFlight {
			note = strings.TrimSpace("sending now " + note)
		}
		row(tw, c.TransactionID, c.Request, c.App, c.Environment, c.Reason, c.State, pref, c.Source, sendAt, stamp(c.Deadline), left, note)
	}
	tw.Flush()
	if !list.Complete {
		fmt.Fprintln(out, "(scan stopped at its bound; narrow with --app or --state)")
	}
}

type consumptionActionOptions struct {
	adminFlags
	preference, note string
}

// preferenceValues are what --preference takes; none leaves refundPreference out.
var preferenceValues = []string{"DECLINE", "GRANT_FULL", "GRANT_PRORATED", "none"}

func newConsumptionActionCommand(action, use, short string) *cobra.Command {
	var o consumptionActionOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := relay.ConsumptionActionRequest{Action: action, Note: o.note}
			if cmd.Flags().Changed("preference") {
				p := strings.ToUpper(o.preference)
				if !slices.Contains(preferenceValues, p) && p != "NONE" {
					return usageError{fmt.Errorf("--preference %q: want one of %s", o.preference, strings.Join(preferenceValues, ", "))}
				}
				if p == "NONE" {
					p = ""
				}
				in.RefundPreference = &p
			} else if action == relay.ConsumptionActionOverride {
				return usageError{fmt.Errorf("override needs --preference")}
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, _, err := c.ConsumptionAction(cmd.Context(), args[0], in)
			if err != nil {
				return daemonError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s applied to %d pending answer(s)\n", res.TransactionID, res.Action, res.Updated)
			printConsumption(cmd.OutOrStdout(), relay.ConsumptionList{Consumption: res.Consumption, Complete: true})
			return nil
		},
	}
	o.register(cmd)
	if action == relay.ConsumptionActionCancel {
		cmd.Flags().StringVar(&o.note, "note", "", "why, recorded with the cancellation")
	} else {
		cmd.Flags().StringVar(&o.preference, "preference", "", "refundPreference to send: "+strings.Join(preferenceValues, ", "))
	}
	return cmd
}
