package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	dcemu "github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	mcemu "github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

func emulatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local emulator of an external system (Salesforce, Marketing Cloud, Data Cloud) or ledger traffic",
	}
	cmd.AddCommand(emulatorSalesforceCmd(), emulatorMarketingCloudCmd(), emulatorDataCloudCmd(), emulatorLedgerCmd())
	return cmd
}

type sfFlags struct {
	listen, username, password, token, clientID, clientSecret, fields string
}

func (f *sfFlags) register(cmd *cobra.Command, listenDefault string) {
	cmd.Flags().StringVar(&f.listen, "listen", listenDefault, "address to listen on")
	cmd.Flags().StringVar(&f.username, "username", sfemu.DefaultUsername, "org user for the password grant")
	cmd.Flags().StringVar(&f.password, "password", sfemu.DefaultPassword, "that user's password")
	cmd.Flags().StringVar(&f.token, "security-token", "", "security token appended to the password (empty: not required)")
	cmd.Flags().StringVar(&f.clientID, "client-id", sfemu.DefaultClientID, "connected app consumer key")
	cmd.Flags().StringVar(&f.clientSecret, "client-secret", sfemu.DefaultClientSecret, "connected app consumer secret")
	cmd.Flags().StringVar(&f.fields, "fields", "", "YAML file of the org's custom fields (default: the loyaltyhub fields)")
}

func (f *sfFlags) start(logger *slog.Logger) (*sfemu.Server, string, error) {
	cfg := sfemu.DefaultConfig()
	cfg.Username, cfg.Password, cfg.SecurityToken = f.username, f.password, f.token
	cfg.ClientID, cfg.ClientSecret = f.clientID, f.clientSecret
	cfg.Logger = logger
	if f.fields != "" {
		fields, err := sfemu.LoadFields(f.fields)
		if err != nil {
			return nil, "", err
		}
		cfg.Fields = fields
	}
	srv, err := sfemu.New(cfg)
	if err != nil {
		return nil, "", err
	}
	url, err := srv.Start(f.listen)
	if err != nil {
		return nil, "", fmt.Errorf("salesforce emulator: listen %s: %w", f.listen, err)
	}
	return srv, url, nil
}

type mcFlags struct {
	listen, clientID, clientSecret string
}

// register adds the flags, their names prefixed (the demo runs two emulators).
func (f *mcFlags) register(cmd *cobra.Command, prefix, listenDefault string) {
	cmd.Flags().StringVar(&f.listen, prefix+"listen", listenDefault, "address the Marketing Cloud emulator listens on")
	cmd.Flags().StringVar(&f.clientID, prefix+"client-id", mcemu.DefaultConfig().ClientID, "installed package client id")
	cmd.Flags().StringVar(&f.clientSecret, prefix+"client-secret", mcemu.DefaultConfig().ClientSecret, "installed package client secret")
}

func (f *mcFlags) start() (*mcemu.Server, string, error) {
	cfg := mcemu.DefaultConfig()
	cfg.ClientID, cfg.ClientSecret = f.clientID, f.clientSecret
	srv, err := mcemu.New(cfg)
	if err != nil {
		return nil, "", err
	}
	url, err := srv.Start(f.listen)
	if err != nil {
		return nil, "", fmt.Errorf("marketing cloud emulator: listen %s: %w", f.listen, err)
	}
	return srv, url, nil
}

func emulatorMarketingCloudCmd() *cobra.Command {
	var f mcFlags
	cmd := &cobra.Command{
		Use:   "marketingcloud",
		Short: "Run the Marketing Cloud REST emulator (OAuth2 token, data extension rowsets, async rows)",
		Long: `Runs a local server that speaks the Marketing Cloud REST API's wire format (auth and REST
hosts in one): POST /v2/token, data extension rows through /hub/v1/dataevents and
/data/v1/async, with the Loyalty_Segment_Members and Loyalty_Members data extensions.
Point a connector's auth_url at the printed address. GET /__emulator/dataextensions lists
the data extensions and their rows.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, url, err := f.start()
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "marketing cloud emulator listening on %s (client id %s)\n", url, f.clientID)
			<-cmd.Context().Done()
			return nil
		},
	}
	f.register(cmd, "", "127.0.0.1:8082")
	return cmd
}

type dcFlags struct {
	listen, clientID, clientSecret, source string
}

// register adds the flags, their names prefixed (the demo runs several emulators).
func (f *dcFlags) register(cmd *cobra.Command, prefix, listenDefault string) {
	cmd.Flags().StringVar(&f.listen, prefix+"listen", listenDefault, "address the Data Cloud emulator listens on")
	cmd.Flags().StringVar(&f.clientID, prefix+"client-id", dcemu.DefaultClientID, "connected app consumer key")
	cmd.Flags().StringVar(&f.clientSecret, prefix+"client-secret", dcemu.DefaultClientSecret, "connected app consumer secret")
	cmd.Flags().StringVar(&f.source, prefix+"source", dcemu.DefaultSourceName, "the Ingestion API connector's name")
}

func (f *dcFlags) start() (*dcemu.Server, string, error) {
	cfg := dcemu.DefaultConfig()
	cfg.ClientID, cfg.ClientSecret, cfg.SourceName = f.clientID, f.clientSecret, f.source
	srv, err := dcemu.New(cfg)
	if err != nil {
		return nil, "", err
	}
	url, err := srv.Start(f.listen)
	if err != nil {
		return nil, "", fmt.Errorf("data cloud emulator: listen %s: %w", f.listen, err)
	}
	return srv, url, nil
}

func emulatorDataCloudCmd() *cobra.Command {
	var f dcFlags
	cmd := &cobra.Command{
		Use:   "datacloud",
		Short: "Run the Data Cloud emulator (org login, token exchange, Ingestion API streaming)",
		Long: `Runs a local server that plays a Salesforce org with Data Cloud: the org's OAuth token,
its exchange for a Data Cloud token (/services/a360/token) and the Ingestion API's streaming
endpoints (/api/v1/ingest/sources/{source}/{object}), with the loyalty_members and
loyalty_transactions objects. Point a connector's login_url at the printed address.
GET /__emulator/objects/{object}/records lists what was ingested.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, url, err := f.start()
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "data cloud emulator listening on %s (client id %s, source %s)\n", url, f.clientID, f.source)
			<-cmd.Context().Done()
			return nil
		},
	}
	f.register(cmd, "", "127.0.0.1:8083")
	return cmd
}

func emulatorSalesforceCmd() *cobra.Command {
	var f sfFlags
	cmd := &cobra.Command{
		Use:   "salesforce",
		Short: "Run the Salesforce REST emulator (OAuth2, sObjects, collections, composite, SOQL)",
		Long: `Runs a local server that speaks the Salesforce REST API's wire format, for development
and tests where a real org cannot be reached. Any standard Salesforce client works against it:
point its login URL at the printed address. Admin endpoints under /__emulator/ inspect records
and inject faults.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(os.Stderr, logConfig("info"))
			srv, url, err := f.start(logger)
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "salesforce emulator listening on %s (username %s, client id %s)\n", url, f.username, f.clientID)
			<-cmd.Context().Done()
			return nil
		},
	}
	f.register(cmd, "127.0.0.1:8081")
	return cmd
}

type ledgerFlags struct {
	hub, secret               string
	members, events, batch    int
	transactions              int
	rate, duplicates, reorder float64
	seed                      uint64
	loop, segments            bool
}

func (f *ledgerFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.hub, "hub", "http://127.0.0.1:8080/v1/events/ledger", "the hub's ingress URL for the ledger source")
	cmd.Flags().StringVar(&f.secret, "secret", os.Getenv("LEDGER_WEBHOOK_SECRET"), "HMAC key to sign requests (default $LEDGER_WEBHOOK_SECRET)")
	cmd.Flags().IntVar(&f.members, "members", 200, "distinct members")
	cmd.Flags().IntVar(&f.events, "events", 2000, "member changes per round")
	cmd.Flags().IntVar(&f.batch, "batch", 50, "events per request")
	cmd.Flags().Float64Var(&f.rate, "rate", 100, "events per second (0: as fast as the hub takes them)")
	cmd.Flags().Float64Var(&f.duplicates, "duplicates", 0.1, "share of events sent twice")
	cmd.Flags().Float64Var(&f.reorder, "reorder", 0.1, "share of events sent after a newer version")
	cmd.Flags().Uint64Var(&f.seed, "seed", 1, "random seed")
	cmd.Flags().BoolVar(&f.loop, "loop", false, "keep sending new rounds until stopped")
	cmd.Flags().BoolVar(&f.segments, "segments", true, "after each round, send the tier segments' membership changes (tier-gold, ...)")
	cmd.Flags().IntVar(&f.transactions, "transactions", 100, "after each round, send this many purchase transactions of its members")
}

// send runs rounds of ledger traffic at the configured rate.
func (f *ledgerFlags) send(ctx context.Context, logger *slog.Logger) error {
	start := time.Now()
	var segments ledgeremu.Segments
	for round := 0; ; round++ {
		plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: f.members, Events: f.events,
			DuplicateRate: f.duplicates, ReorderRate: f.reorder, Seed: f.seed + uint64(round),
			Start: start.Add(time.Duration(round) * time.Hour)})
		// Later rounds continue every member's version sequence.
		if round > 0 {
			for i := range plan.Deliveries {
				plan.Deliveries[i].Data.Version += int64(round * f.events)
				plan.Deliveries[i].ID = fmt.Sprintf("%s-r%d", plan.Deliveries[i].ID, round)
			}
		}
		sender := &ledgeremu.Sender{URL: f.hub, Secret: f.secret, BatchSize: f.batch}
		var last time.Time
		err := sender.Send(ctx, plan.Deliveries, func(sent int) {
			if f.rate > 0 {
				time.Sleep(time.Duration(float64(f.batch) / f.rate * float64(time.Second)))
			}
			if time.Since(last) > 5*time.Second || sent == len(plan.Deliveries) {
				last = time.Now()
				logger.Info("ledger traffic", "round", round+1, "sent", sent, "of", len(plan.Deliveries),
					"members", f.members, "duplicates", plan.Duplicates, "out_of_order", plan.Reordered)
			}
		})
		if err == nil && f.segments {
			changes := segments.Update(plan.Newest, start.Add(time.Duration(round+1)*time.Hour))
			if err = sender.SendSegments(ctx, changes); err == nil {
				args := []any{"round", round + 1}
				for _, c := range changes {
					args = append(args, c.Subject, fmt.Sprintf("+%d -%d", len(c.Data.Added), len(c.Data.Removed)))
				}
				logger.Info("ledger segment changes", args...)
			}
		}
		if err == nil && f.transactions > 0 {
			members := make([]string, 0, len(plan.Newest))
			for id := range plan.Newest {
				members = append(members, id)
			}
			txns := ledgeremu.NewTransactions(members, f.transactions, round*f.transactions, f.seed+uint64(round),
				start.Add(time.Duration(round)*time.Hour))
			if err = sender.SendTransactions(ctx, txns); err == nil {
				logger.Info("ledger transactions", "round", round+1, "sent", len(txns))
			}
		}
		if err != nil || !f.loop {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		default:
		}
	}
}

func emulatorLedgerCmd() *cobra.Command {
	var f ledgerFlags
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Play the core ledger: send member change events to the hub's webhook ingress",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.send(cmd.Context(), newLogger(os.Stderr, logConfig("info")))
		},
	}
	f.register(cmd)
	return cmd
}
