package config_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/config"
	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// fakeConnector describes itself with a config schema, as built-ins do.
type fakeConnector struct{}

func (fakeConnector) Describe(context.Context) (connectors.Description, error) {
	return connectors.Description{Name: "configtest-fake", MaxBatch: 10, ConfigSchema: json.RawMessage(
		`{"type":"object","required":["endpoint"],"additionalProperties":false,"properties":{"endpoint":{"type":"string"},"retries":{"type":"integer"}}}`)}, nil
}
func (fakeConnector) Configure(context.Context, json.RawMessage) error { return nil }
func (fakeConnector) Check(context.Context) error                      { return nil }
func (fakeConnector) Close() error                                     { return nil }

func init() {
	connectors.Register(connectors.Spec{Name: "configtest-fake", New: func(*slog.Logger) connectors.Connector { return fakeConnector{} }})
}

func TestWithRegistry(t *testing.T) {
	t.Setenv("RETRIES", "3")
	good := inDir(t, "connectors:\n  a:\n    type: configtest-fake\n    config:\n      endpoint: https://x\n      retries: ${RETRIES}\n", nil)
	cfg, err := config.Load(good, config.WithRegistry(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.Connectors["a"].Config); got != `{"endpoint":"https://x","retries":3}` {
		t.Errorf("block: %s", got)
	}

	bad := inDir(t, "connectors:\n  a:\n    type: configtest-fak\n  b:\n    type: configtest-fake\n    config: {retries: x}\n", nil)
	_, err = config.Load(bad, config.WithRegistry(context.Background()))
	got := problems(t, err)
	want := []string{
		`hub.yaml:3:11: connectors.a.type: unknown connector type "configtest-fak"; known types: ` + strings.Join(connectors.Names(), ", "),
		`hub.yaml:6:5: connectors.b.config.endpoint: missing; the configtest-fake connector requires endpoint`,
		`hub.yaml:6:23: connectors.b.config.retries: value must be an integer`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
