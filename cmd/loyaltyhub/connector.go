package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/loyaltyhub/loyaltyhub/plugins/conformance"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

// connectorCmd holds `connector serve NAME`: the hub starts each built-in
// connector as a child process of its own binary with it, so built-in and
// vendor connectors sit behind the same process boundary.
func connectorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "connector", Short: "Built-in connectors", Hidden: true}
	cmd.AddCommand(&cobra.Command{
		Use:   "serve NAME",
		Short: "Serve a built-in connector over the plugin protocol (the hub runs this itself)",
		Args:  cobra.ExactArgs(1),
		// The command's context ends on SIGTERM or SIGINT (main's
		// NotifyContext), which also stops the connector.
		RunE: func(cmd *cobra.Command, args []string) error {
			return host.ServeRegisteredContext(cmd.Context(), args[0])
		},
	})
	return cmd
}

func pluginCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Work with connector plugins"}
	var (
		fixture, sum string
		args, env    []string
		timeout      time.Duration
	)
	test := &cobra.Command{
		Use:   "test PATH-TO-BINARY",
		Short: "Run the conformance kit against a connector plugin",
		Long: `Starts the plugin as the hub would (go-plugin handshake, protocol version, checksum,
mTLS) and runs the conformance checks: describe, bad config, per-record write semantics,
idempotent re-writes, read paging and cursors, cancellation, large batches, crash and restart.
Checks that need data take it from --fixture (see plugins/examples/geooffers/conformance.json).
Prints a pass/fail report with reasons; exits non-zero when any check fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			opts := conformance.Options{SHA256: sum, Args: args, Env: env, CallTimeout: timeout}
			if fixture != "" {
				f, err := conformance.LoadFixture(fixture)
				if err != nil {
					return err
				}
				opts.Fixture = f
			}
			report := conformance.Run(cmd.Context(), a[0], opts)
			report.WriteText(cmd.OutOrStdout())
			if report.Failed() {
				return fmt.Errorf("%s failed %d of the conformance checks", a[0], report.Count(conformance.Fail))
			}
			return nil
		},
	}
	test.Flags().StringVar(&fixture, "fixture", "", "fixture file with the config and records the data checks use")
	test.Flags().StringVar(&sum, "sha256", "", "pin the binary's SHA-256 (default: the file as it is)")
	test.Flags().StringArrayVar(&args, "arg", nil, "argument for the plugin process (repeatable)")
	test.Flags().StringArrayVar(&env, "env", nil, "KEY=value for the plugin's environment (repeatable)")
	test.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "bound on each call")
	cmd.AddCommand(test)
	return cmd
}
