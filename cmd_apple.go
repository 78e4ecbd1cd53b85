package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
	"github.com/asnrelay/asnrelay/relay/config"
)

// appleFlags pick the app, its key and the environment.
type appleFlags struct{ config, app, environment string }

func (f *appleFlags) register(cmd *cobra.Command, withEnvironment bool) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "configuration file (default $ASNRELAY_CONFIG or ./asnrelay.yaml)")
	cmd.Flags().StringVar(&f.app, "app", "", "app name (default: the only app with an api block)")
	if withEnvironment {
		cmd.Flags().StringVar(&f.environment, "environment", "", "Production or Sandbox")
	}
}

func (f *appleFlags) tools() (*relay.AppleTools, error) {
	cfg, err := config.Load(relay.ConfigPath(f.config))
	if err != nil {
		return nil, err
	}
	return relay.NewAppleTools(cfg, relay.AppleToolsOptions{})
}

// appleUsage turns the caller's mistakes into usage errors (exit code 2).
func appleUsage(err error) error {
	for _, target := range []error{relay.ErrNoSuchApp, relay.ErrNoAPIKey, relay.ErrBadEnvironment, relay.ErrBadLookup} {
		if errors.Is(err, target) {
			return usageError{err}
		}
	}
	return err
}

func newAppleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apple",
		Short: "Call the App Store Server API with an app's In-App Purchase key",
		Long: "Call the App Store Server API directly with the In-App Purchase key of an app in the config\n" +
			"(no daemon needed). Signed data in Apple's answers is verified and printed decoded.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTestNotificationCommand(), newSignOfferCommand())
	for _, l := range []struct{ kind, use, short string }{
		{relay.LookupTransaction, "transaction TRANSACTION_ID", "Get Transaction Info (Production, then Sandbox, unless --environment)"},
		{relay.LookupHistory, "history TRANSACTION_ID", "Get Transaction History, every page"},
		{relay.LookupSubscriptions, "subscriptions TRANSACTION_ID", "Get All Subscription Statuses"},
		{relay.LookupOrder, "order ORDER_ID", "Look Up Order ID (the order ID on the customer's receipt email)"},
		{relay.LookupRefunds, "refunds TRANSACTION_ID", "Get Refund History, every page"},
	} {
		cmd.AddCommand(newLookupCommand(l.kind, l.use, l.short))
	}
	return cmd
}

func newLookupCommand(kind, use, short string) *cobra.Command {
	var o appleFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tools, err := o.tools()
			if err != nil {
				return err
			}
			res, err := tools.Lookup(cmd.Context(), relay.LookupRequest{Kind: kind, App: o.app, Environment: o.environment, ID: args[0]})
			if err != nil {
				return appleUsage(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "verified: answer of the %s App Store Server API\n", res.Environment)
			_, err = cmd.OutOrStdout().Write(res.JSON)
			return err
		},
	}
	o.register(cmd, true)
	return cmd
}

type testNotificationOptions struct {
	appleFlags
	admin, token       string
	wait, pollInterval time.Duration
}

func newTestNotificationCommand() *cobra.Command {
	var o testNotificationOptions
	cmd := &cobra.Command{
		Use:   "test-notification --app A",
		Short: "Ask Apple to send a TEST notification and check that it reached this relay",
		Long: "Ask Apple to send a TEST notification to the app's Server Notification URL for the environment\n" +
			"(default Sandbox when the app accepts it), wait up to a minute for Apple's send attempt, print\n" +
			"it, and ask the running daemon (--admin, or admin.listen of --config) whether it holds the\n" +
			"notification. Exit 1 when Apple's attempt failed or the daemon does not hold it.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tools, err := o.tools()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			opts := relay.TestNotificationOptions{App: o.app, Environment: o.environment,
				PollTimeout: o.wait, PollInterval: o.pollInterval,
				Progress: func(msg string) { fmt.Fprintln(out, msg) }}
			admin, adminErr := relay.AdminEndpoint{URL: o.admin, Token: o.token, Config: o.config}.Client()
			if adminErr == nil {
				opts.Admin = admin
			}
			res, err := tools.TestNotification(cmd.Context(), opts)
			for _, a := range res.Attempts {
				fmt.Fprintf(out, "Apple's send attempt at %s: %s\n", a.AttemptDate, a.SendAttemptResult)
			}
			if err != nil {
				return appleUsage(err)
			}
			if res.UUID != "" {
				fmt.Fprintf(out, "notificationUUID %s\n", res.UUID)
			}
			if adminErr != nil {
				res.RelayError = adminErr.Error()
			}
			switch res.Relay {
			case relay.RelayHolds:
				fmt.Fprintf(out, "relay: received (the daemon at %s holds it)\n", opts.Admin.Base())
			case relay.RelayMissing:
				fmt.Fprintf(out, "relay: NOT received: %s\n", res.RelayError)
			default:
				fmt.Fprintf(out, "relay: %s: %s\n", relay.RelayUnknown, res.RelayError)
			}
			if !res.Sent() {
				return fmt.Errorf("Apple could not deliver the test notification (see its send attempts above)")
			}
			if res.Relay == relay.RelayMissing {
				return fmt.Errorf("the test notification did not reach this relay")
			}
			return nil
		},
	}
	o.register(cmd, true)
	cmd.Flags().StringVar(&o.admin, "admin", "", "admin API base URL of the running daemon (default from --config's admin.listen)")
	cmd.Flags().StringVar(&o.token, "token", "", "admin API bearer token (default from --config's admin.token)")
	cmd.Flags().DurationVar(&o.wait, "wait", relay.DefaultTestPollTimeout, "how long to wait for Apple's send attempt, and then for the relay")
	cmd.Flags().DurationVar(&o.pollInterval, "poll-interval", relay.DefaultTestPollInterval, "how often to ask")
	cmd.Flags().MarkHidden("poll-interval")
	return cmd
}

type signOfferOptions struct {
	appleFlags
	req relay.OfferRequest
}

func newSignOfferCommand() *cobra.Command {
	var o signOfferOptions
	cmd := &cobra.Command{
		Use:   "sign-offer --app A --product P --offer O",
		Short: "Sign a promotional offer with the app's In-App Purchase key",
		Long: "Print the promotional offer signature StoreKit wants (signature, nonce, timestamp, key id),\n" +
			"as Apple's libraries make it. --jws prints the newer promotional offer V2 signature instead.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.req.ProductID == "" || o.req.OfferID == "" {
				return usageError{fmt.Errorf("--product and --offer are required")}
			}
			tools, err := o.tools()
			if err != nil {
				return err
			}
			o.req.App = o.app
			sig, err := tools.SignOffer(o.req)
			if err != nil {
				return appleUsage(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "keyIdentifier: %s\n", sig.KeyID)
			if !o.req.JWS {
				fmt.Fprintf(out, "nonce: %s\ntimestamp: %d\n", sig.Nonce, sig.Timestamp)
			}
			fmt.Fprintf(out, "signature: %s\n", sig.Signature)
			return nil
		},
	}
	o.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&o.req.ProductID, "product", "", "product ID (required)")
	f.StringVar(&o.req.OfferID, "offer", "", "promotional offer ID (required)")
	f.StringVar(&o.req.AppAccountToken, "app-account-token", "", "the appAccountToken the purchase will carry (original signature)")
	f.BoolVar(&o.req.JWS, "jws", false, "sign a promotional offer V2 JWS instead")
	f.StringVar(&o.req.TransactionID, "transaction-id", "", "with --jws: a transaction of the customer (recommended)")
	return cmd
}
