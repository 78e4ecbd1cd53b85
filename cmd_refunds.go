package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

func newRefundsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "refunds",
		Short: "Show the refund ledger: requests, our answers, Apple's decisions",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRefundsLsCommand(), newRefundsStatsCommand())
	return cmd
}

type refundsLsOptions struct {
	adminFlags
	app, since, outcome, cursor string
	limit                       int
	json                        bool
}

func newRefundsLsCommand() *cobra.Command {
	var o refundsLsOptions
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List refund ledger records, the most recent first",
		Long: "List the refund ledger of the running daemon: one line per transaction that saw a\n" +
			"CONSUMPTION_REQUEST, REFUND, REFUND_DECLINED, REFUND_REVERSED or REVOKE, with its price,\n" +
			"Apple's latest decision and our answers. Amounts are in the transaction's currency.\n" +
			"--json prints the API's document.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, raw, err := c.Refunds(cmd.Context(), relay.RefundQuery{App: o.app, Outcome: o.outcome, Since: o.since, Limit: o.limit, Cursor: o.cursor})
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			printRefunds(cmd.OutOrStdout(), list)
			moreHint(cmd, list.NextCursor)
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "", "only this app")
	f.StringVar(&o.since, "since", "", "only records updated since, e.g. 24h, 7d or an RFC 3339 time")
	f.StringVar(&o.outcome, "outcome", "", "only requested, refunded, declined, reversed or revoked")
	f.IntVar(&o.limit, "limit", 0, "records per page (default 50)")
	f.StringVar(&o.cursor, "cursor", "", "next_cursor of the previous page")
	f.BoolVar(&o.json, "json", false, "print the JSON document")
	return cmd
}

func printRefunds(out io.Writer, list relay.RefundList) {
	tw := table(out, "TRANSACTION", "APP", "ENVIRONMENT", "PRODUCT", "PRICE", "OUTCOME", "REQUESTS", "ANSWERS", "REFUNDED", "UPDATED")
	for _, r := range list.Refunds {
		answers := make([]string, 0, len(r.Answers))
		for _, a := range r.Answers {
			s := string(a.State)
			if a.RefundPreference != "" {
				s += ":" + a.RefundPreference
			}
			answers = append(answers, s)
		}
		row(tw, r.TransactionID, r.App, r.Environment, r.ProductID, money(r.Price, r.Currency), r.Outcome, r.Requests,
			strings.Join(answers, ","), money(r.RefundedAmount, r.Currency), stamp(r.UpdatedAt))
	}
	tw.Flush()
}

type refundsStatsOptions struct {
	adminFlags
	app, since string
	json       bool
}

func newRefundsStatsCommand() *cobra.Command {
	var o refundsStatsOptions
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Refund figures per app: requests, answers in time, refunds, win-backs, amounts",
		Long: "Print the refund ledger's figures per app for the period (default the last 30 days):\n" +
			"CONSUMPTION_REQUESTs received, answers sent and sent in time, Apple's decisions (refunded,\n" +
			"declined = won back, reversed), the win-back rate declined / (refunded + declined), and the\n" +
			"amounts by currency. --json prints the API's document.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			doc, raw, err := c.RefundStats(cmd.Context(), o.app, o.since)
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			printRefundStats(cmd.OutOrStdout(), doc)
			return nil
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "", "only this app")
	f.StringVar(&o.since, "since", "", "period start, e.g. 24h, 30d or an RFC 3339 time (default 30d)")
	f.BoolVar(&o.json, "json", false, "print the JSON document")
	return cmd
}

func printRefundStats(out io.Writer, doc relay.RefundStatsDoc) {
	fmt.Fprintf(out, "since %s\n", stamp(doc.Since))
	tw := table(out, "APP", "REQUESTS", "SENT", "IN TIME", "DRY RUN", "SKIPPED", "FAILED", "CANCELLED",
		"REFUNDED", "DECLINED", "REVERSED", "REVOKED", "WIN-BACK")
	line := func(name string, s relay.RefundStatsFigure) {
		row(tw, name, s.Requests, s.Sent, s.AnsweredInTime, s.DryRun, s.Skipped, s.Failed, s.Cancelled,
			s.Refunded, s.Declined, s.Reversed, s.Revoked, fmt.Sprintf("%.1f%%", 100*s.WinBackRate))
	}
	for _, a := range doc.Apps {
		line(a.App, a.RefundStatsFigure)
	}
	if len(doc.Apps) != 1 {
		line("total", doc.Total)
	}
	tw.Flush()
	if len(doc.Total.Amounts) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw = table(out, "CURRENCY", "REFUNDED", "DECLINED (KEPT)", "REVERSED")
	currencies := make([]string, 0, len(doc.Total.Amounts))
	for cur := range doc.Total.Amounts {
		currencies = append(currencies, cur)
	}
	slices.Sort(currencies)
	for _, cur := range currencies {
		a := doc.Total.Amounts[cur]
		row(tw, cur, milliunits(a.Refunded), milliunits(a.Declined), milliunits(a.Reversed))
	}
	tw.Flush()
}

// milliunits formats an amount in milliunits as a decimal: 4990 is 4.99,
// 4995 is 4.995.
func milliunits(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	frac := strings.TrimSuffix(fmt.Sprintf("%03d", v%1000), "0")
	return sign + strconv.FormatInt(v/1000, 10) + "." + frac
}

func money(v int64, currency string) string {
	if currency == "" {
		return milliunits(v)
	}
	return milliunits(v) + " " + currency
}
