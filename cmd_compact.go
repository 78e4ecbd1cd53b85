package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

type compactOptions struct{ config string }

func newCompactCommand() *cobra.Command {
	var o compactOptions
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the database to reclaim space (daemon stopped)",
		Long: "Rewrite data_dir/asnrelay.db into a fresh file and put it in place: retention frees pages but\n" +
			"bbolt never shrinks its file. Stop asnrelay serve first; compact refuses a database in use.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, res, err := relay.Compact(relay.ConfigPath(o.config))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %s -> %s\n", path, size(res.Before), size(res.After))
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.config, "config", "c", "", "configuration file (default $ASNRELAY_CONFIG or ./asnrelay.yaml)")
	return cmd
}

// size prints a byte count in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
