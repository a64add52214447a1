package host

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

// ServeBuiltin serves a built-in connector over the plugin protocol from
// inside the hub's own binary: `loyaltyhub connector serve NAME` calls it.
// It returns when the host stops the plugin, after closing c.
func ServeBuiltin(c connectors.Connector) {
	wire.Serve(c, BuiltinLogger())
}

// BuiltinLogger is the logger to give a built-in connector served with
// ServeBuiltin: its lines reach the hub's log under the connector's name.
func BuiltinLogger() *slog.Logger { return wire.PluginLogger(slog.LevelDebug) }

// ServeRegistered looks name up in the connectors registry, builds the
// connector with BuiltinLogger and serves it with ServeBuiltin.
func ServeRegistered(name string) error {
	spec, ok := connectors.Lookup(name)
	if !ok {
		return fmt.Errorf("no built-in connector %q; built-in connectors: %s", name, strings.Join(connectors.Names(), ", "))
	}
	ServeBuiltin(spec.New(BuiltinLogger()))
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
