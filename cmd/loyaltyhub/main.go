// Command loyaltyhub is the hub's one binary: run the hub, validate a config,
// run the emulators. It only wires: it reads config, builds the parts and
// starts them.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/loyaltyhub/loyaltyhub/config"
	_ "github.com/loyaltyhub/loyaltyhub/connectors/datacloud"      // built-in connector
	_ "github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud" // built-in connector
	_ "github.com/loyaltyhub/loyaltyhub/connectors/salesforce"     // built-in connector
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "loyaltyhub:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "loyaltyhub",
		Short:         "Keeps a loyalty ledger consistent with CRM, CDP, marketing and vendor systems",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), validateCmd(), syncsCmd(), dlqCmd(), keysCmd(), auditCmd(), backfillCmd(), emulatorCmd(), demoCmd(), connectorCmd(), pluginCmd())
	root.AddCommand(mappingCmd())
	return root
}

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the hub: webhook ingress, bus, syncs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			boot := newLogger(os.Stderr, config.Log{Level: "info", Format: "text"})
			cfg, maps, err := loadConfig(ctx, path, boot)
			if err != nil {
				return err
			}
			logger := newLogger(os.Stderr, cfg.Log)
			a, err := newApp(ctx, cfg, maps, logger)
			if err != nil {
				return err
			}
			return a.run(ctx)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "loyaltyhub.yaml", "config file")
	return cmd
}

func validateCmd() *cobra.Command {
	var (
		path    string
		offline bool
	)
	cmd := &cobra.Command{
		Use:   "validate -c FILE",
		Short: "Check a config (connectors' settings, mappings), then its mappings against the targets' schemas",
		Long: `Check a config without running the hub: the file, every connector's settings against
its schema, every mapping compiled. Then, unless --offline, start each connector a sync writes
to, describe each sync's target object and check the mapping against it: every field exists, may
be written by the sync's mode, gets a value of a fitting type and valid picklist values, and
every required field is mapped. A connector that cannot be reached is a problem.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(io.Discard, config.Log{Level: "error"})
			cfg, maps, err := loadConfig(cmd.Context(), path, logger)
			if err != nil {
				return fmt.Errorf("%s is not valid:\n%w", path, err)
			}
			out := cmd.OutOrStdout()
			summary := fmt.Sprintf("%d source(s), %d connector(s), %d sync(s)", len(cfg.Sources), len(cfg.Connectors), len(cfg.Syncs))
			if offline {
				fmt.Fprintf(out, "%s is valid: %s (offline: mappings not checked against the targets)\n", path, summary)
				return nil
			}
			rep := checkSchemas(cmd.Context(), cfg, maps, logger)
			for _, n := range rep.Notes {
				fmt.Fprintln(out, n)
			}
			if len(rep.Problems) > 0 {
				return fmt.Errorf("%s is not valid against its targets:\n%s", path, strings.Join(rep.Problems, "\n"))
			}
			fmt.Fprintf(out, "%s is valid: %s; %d of %d mapping(s) checked against the targets' schemas\n",
				path, summary, rep.Checked, len(cfg.Syncs))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "loyaltyhub.yaml", "config file")
	cmd.Flags().BoolVar(&offline, "offline", false, "skip the checks against the targets (start no connector)")
	return cmd
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
