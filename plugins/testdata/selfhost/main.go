// Command selfhost plays the hub binary for the built-in path: run as
// `selfhost connector serve fake` it serves the registered fake connector;
// run plainly it starts itself that way through host.BuiltinConfig, writes
// the records given as JSON on its arguments, and prints the results. Run as
// `selfhost hold DIR` it starts the connector configured with dir DIR,
// prints {"pid":..., "hub_pid":...} and waits to be killed, playing a hub
// that dies under its connectors.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
)

func main() {
	connectors.Register(connectors.Spec{Name: "fake", New: func(l *slog.Logger) connectors.Connector { return fakeconn.New(l) }})
	if len(os.Args) == 4 && os.Args[1] == "connector" && os.Args[2] == "serve" {
		if err := host.ServeRegistered(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "hold" {
		if err := hold(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "selfhost:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "selfhost:", err)
		os.Exit(1)
	}
}

func run(keys []string) error {
	ctx := context.Background()
	cfg, err := host.BuiltinConfig("fake")
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := host.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Configure(ctx, json.RawMessage(`{}`)); err != nil {
		return err
	}
	req := connectors.WriteRequest{Object: "Thing", Operation: connectors.Upsert, ExternalIDField: "Key__c"}
	for _, k := range keys {
		req.Records = append(req.Records, connectors.Record{Key: k, Fields: map[string]any{"n": int64(len(k))}})
	}
	resp, err := p.Write(ctx, req)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"pid": p.PID(), "hub_pid": os.Getpid(), "results": resp.Results})
}

func hold(dir string) error {
	ctx := context.Background()
	cfg, err := host.BuiltinConfig("fake")
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := host.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.Close()
	raw, err := json.Marshal(map[string]string{"dir": dir})
	if err != nil {
		return err
	}
	if err := p.Configure(ctx, raw); err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"pid": p.PID(), "hub_pid": os.Getpid()}); err != nil {
		return err
	}
	select {} // until killed
}
