package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

func newSendTestCommand() *cobra.Command {
	var o relay.SendTestOptions
	cmd := &cobra.Command{
		Use:   "send-test --url URL",
		Short: "Mint a locally signed notification and POST it to a relay",
		Long: "Sign a notification with a throwaway test CA and POST it, e.g. to http://localhost:8080/asn/myapp.\n" +
			"With --root-out F the CA's root is written to F (list it in apple.root_certs so the relay\n" +
			"verifies what send-test signs) and the CA is kept in F.signer.pem for later runs.\n" +
			"Never list a test root in a production relay's config.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.URL == "" {
				return usageError{fmt.Errorf("--url is required")}
			}
			res, err := relay.SendTest(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.RootWritten {
				fmt.Fprintf(out, "wrote test root %s (add it to apple.root_certs) and its CA %s.signer.pem\n", o.RootOut, o.RootOut)
			}
			fmt.Fprintf(out, "POST %s notificationUUID=%s: %d %s\n", o.URL, res.UUID, res.Status, res.Answer)
			if res.Status < 200 || res.Status > 206 {
				return fmt.Errorf("relay answered %d", res.Status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "where to POST, e.g. http://localhost:8080/asn/myapp (required)")
	f.StringVar(&o.Type, "type", "TEST", "notificationType")
	f.StringVar(&o.Subtype, "subtype", "", "subtype")
	f.StringVar(&o.BundleID, "bundle-id", "com.example.myapp", "data.bundleId")
	f.StringVar(&o.Environment, "environment", "Sandbox", "data.environment")
	f.Int64Var(&o.AppAppleID, "app-apple-id", 0, "data.appAppleId (needed for Production)")
	f.StringVar(&o.RootOut, "root-out", "", "write the test CA's root certificate here, and keep the CA beside it")
	return cmd
}
