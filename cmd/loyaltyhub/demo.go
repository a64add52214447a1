package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/loyaltyhub/loyaltyhub/config"
)

func logConfig(level string) config.Log { return config.Log{Level: level, Format: "text"} }

func demoCmd() *cobra.Command {
	var (
		path   string
		sf     sfFlags
		ledger ledgerFlags
	)
	cmd := &cobra.Command{
		Use:   "demo -c config/example.yaml",
		Short: "The whole flow on one machine: the Salesforce emulator, the hub and ledger traffic",
		Long: `Starts the Salesforce emulator, runs the hub with the given config (which points its
salesforce connector at the emulator), and plays the ledger, sending member changes with
duplicates and out-of-order deliveries. Progress lines show events received, applied, skipped
and dead-lettered; every few seconds the demo also counts what the emulator holds.
Stop it with Ctrl-C.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			logger := newLogger(os.Stderr, logConfig("info"))

			srv, url, err := sf.start(nil)
			if err != nil {
				return err
			}
			defer srv.Close()
			logger.Info("salesforce emulator started", "url", url)

			cfg, maps, err := loadConfig(ctx, path, logger)
			if err != nil {
				return err
			}
			a, err := newApp(ctx, cfg, maps, newLogger(os.Stderr, cfg.Log))
			if err != nil {
				return err
			}
			hubErr := make(chan error, 1)
			go func() { hubErr <- a.run(ctx) }()

			go func() {
				// Give the hub a moment to listen, then play the ledger.
				time.Sleep(500 * time.Millisecond)
				if err := ledger.send(ctx, logger.With("component", "ledger-emulator")); err != nil && !errors.Is(err, context.Canceled) {
					logger.Error("ledger traffic stopped", "err", err)
				}
			}()
			go func() {
				t := time.NewTicker(5 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					args := []any{}
					for _, obj := range []string{"LoyaltyProgramMember", "Contact"} {
						args = append(args, obj, len(srv.Records(obj)))
					}
					logger.Info("salesforce emulator holds", args...)
				}
			}()
			return <-hubErr
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "config/example.yaml", "config file")
	sf.register(cmd, "127.0.0.1:8081")
	ledger.register(cmd)
	ledger.loop = true
	cmd.Flags().Lookup("loop").DefValue = "true"
	return cmd
}
