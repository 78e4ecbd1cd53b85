package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/asnrelay/asnrelay/relay"
)

// maxDecodeInput bounds what decode reads: a body is at most a few hundred KiB.
const maxDecodeInput = 4 << 20

type decodeOptions struct {
	rootCerts []string
	noVerify  bool
}

func newDecodeCommand() *cobra.Command {
	var o decodeOptions
	cmd := &cobra.Command{
		Use:   "decode [file|-]",
		Short: "Verify and print a notification body or a JWS, offline",
		Long: "Read a notification request body ({\"signedPayload\": ...}) or a bare JWS (notification,\n" +
			"transaction, renewal info) from a file or stdin, verify it against Apple Root CA - G3 and any\n" +
			"--root-cert, and print it decoded (nested JWS decoded too). Exit 1 when it does not verify.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("decode takes at most one file")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			in, name := cmd.InOrStdin(), "stdin"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in, name = f, args[0]
			}
			data, err := io.ReadAll(io.LimitReader(in, maxDecodeInput+1))
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if len(data) > maxDecodeInput {
				return fmt.Errorf("%s is larger than %d MiB", name, maxDecodeInput>>20)
			}
			d, err := relay.Decode(data, relay.DecodeOptions{RootCertFiles: o.rootCerts, NoVerify: o.noVerify})
			if err != nil {
				return fmt.Errorf("not verified: %w", err)
			}
			if o.noVerify {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s decoded WITHOUT verifying its signature; do not trust it\n", d.Kind)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "verified: %s signed by a trusted chain\n", d.Kind)
			}
			_, err = cmd.OutOrStdout().Write(d.JSON)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&o.rootCerts, "root-cert", nil, "also trust this root certificate (PEM or DER); repeatable")
	cmd.Flags().BoolVar(&o.noVerify, "no-verify", false, "decode without verifying (says so loudly)")
	return cmd
}
