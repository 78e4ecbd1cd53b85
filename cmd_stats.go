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

type statsOptions struct {
	adminFlags
	since string
	json  bool
}

func newStatsCommand() *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show counts, per-target backlog and health (running daemon)",
		Long: "Show the daemon's figures: notifications stored and waiting, the last 24 h (or --since) by\n" +
			"state, app and type, requests to /asn since the daemon started, and per target the pending and\n" +
			"dead deliveries, the age of the oldest pending one, the last error and whether it is failing.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			st, raw, err := c.Stats(cmd.Context(), o.since)
			if err != nil {
				return daemonError(err)
			}
			if o.json {
				return writeRaw(cmd.OutOrStdout(), raw)
			}
			return printStats(cmd.OutOrStdout(), st)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&o.since, "since", "", "count notifications received since: a duration ago or an RFC 3339 time (default 24h)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the API document as is")
	return cmd
}

func printStats(w io.Writer, st relay.Stats) error {
	n := st.Notifications
	fmt.Fprintf(w, "asnrelay %s at %s\n\n", st.Version, stamp(st.Now))
	fmt.Fprintf(w, "notifications: %d stored, %d waiting to be processed, last id %d\n", n.Stored, n.Inbox, n.LastID)
	window := fmt.Sprintf("since %s", stamp(n.Since))
	if !n.Complete {
		window += fmt.Sprintf(" (newest %d only)", n.Scanned)
	}
	fmt.Fprintf(w, "%s: %s\n", window, counts(n.ByState, []string{"verified", "unverified", "duplicate", "received"}))
	if len(n.ByApp) > 0 {
		tw := table(w, "  APP", "TYPE", "COUNT")
		for _, app := range sortedKeys(n.ByApp) {
			for _, typ := range sortedKeys(n.ByApp[app]) {
				row(tw, "  "+app, typ, n.ByApp[app][typ])
			}
		}
		tw.Flush()
	}
	var ingest []string
	for _, app := range sortedKeys(st.Ingest.ByApp) {
		var codes []string
		for _, code := range sortedKeys(st.Ingest.ByApp[app]) {
			codes = append(codes, fmt.Sprintf("%s×%d", code, st.Ingest.ByApp[app][code]))
		}
		ingest = append(ingest, app+": "+strings.Join(codes, " "))
	}
	fmt.Fprintf(w, "\ningest since start: %d requests", st.Ingest.Requests)
	if len(ingest) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(ingest, "; "))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w)
	tw := table(w, "TARGET", "HEALTH", "PENDING", "OLDEST PENDING", "DEAD", "LAST ERROR")
	for _, t := range st.Targets {
		health := "ok"
		if t.Failing {
			health = "failing, next probe " + stamp(t.NextProbe)
		}
		oldest := "-"
		if t.Pending > 0 {
			oldest = (time.Duration(t.OldestPendingSeconds) * time.Second).String()
		}
		row(tw, t.Name, health, t.Pending, oldest, t.Dead, t.LastError)
	}
	return tw.Flush()
}

// counts prints "verified 3, unverified 1", known keys first.
func counts(m map[string]int, order []string) string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		if ia < 0 {
			ia = len(order)
		}
		if ib < 0 {
			ib = len(order)
		}
		return ia - ib
	})
	var parts []string
	for _, k := range keys {
		label := k
		if label == "" {
			label = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", label, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
