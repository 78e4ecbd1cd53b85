package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
	"github.com/asnrelay/asnrelay/relay/config"
)

type checkOptions struct {
	config string
	online bool
}

func newCheckCommand() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the config, load every In-App Purchase key and sign a token",
		Long: "Validate the configuration, read every app's In-App Purchase key (.p8) and sign an App Store\n" +
			"Server API token with it. With --online, also ask Apple (the last hour of notification history)\n" +
			"per app and environment. Prints one line per app and environment: Active, or what is wrong.\n" +
			"Exit 1 when an app with an api block is not Active, 2 on a config error.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(relay.ConfigPath(o.config))
			if err != nil {
				return err
			}
			statuses, err := relay.Check(cmd.Context(), cfg, o.online)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			failed, keys := 0, 0
			for _, st := range statuses {
				fmt.Fprintf(w, "%s\t%s\t%s\n", st.App, st.Environment, st.Status)
				if !st.OK() {
					failed++
				}
				if st.API {
					keys++
				}
			}
			w.Flush()
			if !o.online && keys > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "(offline: keys read and tokens signed; --online asks Apple)")
			}
			if failed > 0 {
				return fmt.Errorf("%d app environment(s) not Active", failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.config, "config", "c", "", "configuration file (default $ASNRELAY_CONFIG or ./asnrelay.yaml)")
	cmd.Flags().BoolVar(&o.online, "online", false, "also call the App Store Server API per app and environment")
	return cmd
}
