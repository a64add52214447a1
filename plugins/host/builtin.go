package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

// ServeBuiltin serves a built-in connector over the plugin protocol from
// inside the hub's own binary: `loyaltyhub connector serve NAME` calls it.
// Like sdk.Serve, it returns after closing c when the host stops the plugin,
// when the process gets SIGTERM or SIGINT, or when the hub dies.
func ServeBuiltin(c connectors.Connector) { ServeBuiltinContext(context.Background(), c) }

// ServeBuiltinContext is ServeBuiltin that also stops when ctx is done.
func ServeBuiltinContext(ctx context.Context, c connectors.Connector) {
	wire.Serve(ctx, c, BuiltinLogger())
}

// BuiltinLogger is the logger to give a built-in connector served with
// ServeBuiltin: its lines reach the hub's log under the connector's name.
func BuiltinLogger() *slog.Logger { return wire.PluginLogger(slog.LevelDebug) }

// ServeRegistered looks name up in the connectors registry, builds the
// connector with BuiltinLogger and serves it with ServeBuiltin.
func ServeRegistered(name string) error { return ServeRegisteredContext(context.Background(), name) }

// ServeRegisteredContext is ServeRegistered that also stops when ctx is done.
func ServeRegisteredContext(ctx context.Context, name string) error {
	spec, ok := connectors.Lookup(name)
	if !ok {
		return fmt.Errorf("no built-in connector %q; built-in connectors: %s", name, strings.Join(connectors.Names(), ", "))
	}
	ServeBuiltinContext(ctx, spec.New(BuiltinLogger()))
	return nil
}

// BuiltinConfig returns the Config that runs the built-in connector name as
// a child of the running binary (`os.Args[0] connector serve NAME`, through
// os.Executable), with the binary's own SHA-256 pinned.
func BuiltinConfig(name string) (Config, error) {
	exe, err := os.Executable()
	if err != nil {
		return Config{}, fmt.Errorf("finding the hub's own executable: %w", err)
	}
	return builtinConfig(exe, name)
}

func builtinConfig(exe, name string) (Config, error) {
	sum, err := FileSHA256(exe)
	if err != nil {
		return Config{}, fmt.Errorf("checksumming the hub's own executable: %w", err)
	}
	return Config{Name: name, Path: exe, Args: []string{"connector", "serve", name}, SHA256: sum}, nil
}
