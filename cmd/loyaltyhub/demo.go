package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/loyaltyhub/loyaltyhub/config"
)

func logConfig(level string) config.Log { return config.Log{Level: level, Format: "text"} }

func demoCmd() *cobra.Command {
	var (
		path   string
		sf     sfFlags
		mc     mcFlags
		dc     dcFlags
		ledger ledgerFlags
		fresh  bool
	)
	cmd := &cobra.Command{
		Use:   "demo -c config/example.yaml",
		Short: "The whole flow on one machine: the Salesforce, Marketing Cloud and Data Cloud emulators, the hub and ledger traffic",
		Long: `Starts the Salesforce, Marketing Cloud and Data Cloud emulators, runs the hub with the given config
(which points its connectors at them), and plays the ledger, sending member changes with
duplicates and out-of-order deliveries, and after each round the tier segments' membership
changes. Progress lines show events received, applied, skipped and dead-lettered; every few
seconds the demo also counts what the emulators hold. Stop it with Ctrl-C.`,
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
			mcSrv, mcURL, err := mc.start()
			if err != nil {
				return err
			}
			defer mcSrv.Close()
			logger.Info("marketing cloud emulator started", "url", mcURL)
			dcSrv, dcURL, err := dc.start()
			if err != nil {
				return err
			}
			defer dcSrv.Close()
			logger.Info("data cloud emulator started", "url", dcURL)

			cfg, maps, err := loadConfig(ctx, path, logger)
			if err != nil {
				return err
			}
			if fresh {
				// The emulators start empty, so the hub's state must too: a
				// cross-reference kept from an earlier run would name records
				// the emulators no longer hold. The state stays in data_dir,
				// where the other commands (mapping preview) read it.
				if cfg.Bus.URL != "" || cfg.Store.Driver != config.DriverSQLite || cfg.Store.DSN != filepath.Join(cfg.DataDir, "state.db") {
					return errors.New("--fresh clears the embedded bus and the SQLite store in data_dir, and this config uses another bus or store: run the demo with --fresh=false")
				}
				for _, name := range []string{"nats", "state.db", "state.db-wal", "state.db-shm"} {
					if err := os.RemoveAll(filepath.Join(cfg.DataDir, name)); err != nil {
						return err
					}
				}
				logger.Info("the hub's state starts empty, like the emulators: cleared the bus and state store in data_dir (--fresh=false keeps them)", "data_dir", cfg.DataDir)
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
					for _, obj := range []string{"LoyaltyProgramMember", "Contact", "TransactionJournal"} {
						args = append(args, obj, len(srv.Records(obj)))
					}
					logger.Info("salesforce emulator holds", args...)
					joined := 0
					rows := mcSrv.Rows("Loyalty_Segment_Members")
					for _, r := range rows {
						if r["Joined"] == "True" {
							joined++
						}
					}
					logger.Info("marketing cloud emulator holds", "Loyalty_Members", len(mcSrv.Rows("Loyalty_Members")),
						"Loyalty_Segment_Members", len(rows), "joined", joined)
					logger.Info("data cloud emulator holds", "loyalty_members", len(dcSrv.Records("loyalty_members")),
						"loyalty_transactions", len(dcSrv.Records("loyalty_transactions")))
				}
			}()
			return <-hubErr
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "config/example.yaml", "config file")
	cmd.Flags().BoolVar(&fresh, "fresh", true, "clear the hub's bus and state store in data_dir first, as the emulators start empty")
	sf.register(cmd, "127.0.0.1:8081")
	mc.register(cmd, "mc-", "127.0.0.1:8082")
	dc.register(cmd, "dc-", "127.0.0.1:8083")
	ledger.register(cmd)
	ledger.loop = true
	cmd.Flags().Lookup("loop").DefValue = "true"
	// Shorter rounds: the tier segments change after each.
	ledger.events = 1000
	cmd.Flags().Lookup("events").DefValue = "1000"
	return cmd
}
