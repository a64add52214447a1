package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/config"
)

// secretsHub holds a secret in every place one can be.
const secretsHub = `bus:
  url: nats://hub:bus-pass-1@127.0.0.1:4222,nats://hub:bus-pass-2@127.0.0.2:4222
store:
  driver: postgres
  dsn: host=db user=hub password='pg pass 3' dbname=hub
sources:
  ledger:
    secrets: ["${LEDGER_SECRET}"]
connectors:
  crm:
    type: salesforce
    config:
      login_url: https://login.salesforce.com
      client_id: visible-client-id
      client_secret: literal-secret-4
      session_ref: ${SESSION}
      bearer: writeonly-secret-6
      auth: {mode: jwt, key: "${file:keys/jwt}"}
  other:
    type: marketingcloud
    config:
      api_key: mc-key-8
      nested: {password: mc-pass-9, list: [{token: mc-token-10}], keep: visible-value}
      token_url: https://auth.example.com/visible
syncs: {}
`

var secretValues = []string{"bus-pass-1", "bus-pass-2", "pg pass 3", "literal-secret-4", "x-secret-5",
	"writeonly-secret-6", "jwt-key-7", "mc-key-8", "mc-pass-9", "mc-token-10", "ledger-secret-0"}

func loadSecrets(t *testing.T) *config.Config {
	t.Helper()
	t.Setenv("LEDGER_SECRET", "ledger-secret-0-long-enough")
	t.Setenv("SESSION", "x-secret-5")
	path := inDir(t, secretsHub, map[string]string{"keys/jwt": "jwt-key-7\n"})
	cfg, err := config.Load(path, withSalesforce(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSecretsNeverShow(t *testing.T) {
	cfg := loadSecrets(t)

	// The secrets are all there for the hub to use.
	if cfg.Sources["ledger"].Secrets[0].Value() != "ledger-secret-0-long-enough" {
		t.Errorf("source secret: got %q", cfg.Sources["ledger"].Secrets[0].Value())
	}
	clear, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	raw := string(cfg.Connectors["crm"].Config) + string(cfg.Connectors["other"].Config) +
		cfg.Bus.URL + cfg.Store.DSN + cfg.Sources["ledger"].Secrets[0].Value()
	for _, s := range secretValues {
		if !strings.Contains(raw, s) {
			t.Errorf("secret %q missing from the loaded config", s)
		}
		if !strings.Contains(string(clear), s) {
			t.Errorf("secret %q missing from YAML()", s)
		}
	}

	// And no view meant for people or logs shows one.
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("loaded", "config", cfg, "source", cfg.Sources["ledger"], "secret", cfg.Sources["ledger"].Secrets[0],
		"connector", cfg.Connectors["crm"])
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	asYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]string{
		"String":         cfg.String(),
		"Redacted.YAML":  string(must(cfg.Redacted().YAML())),
		"RedactedConfig": string(cfg.Connectors["crm"].RedactedConfig()) + string(cfg.Connectors["other"].RedactedConfig()),
		"slog JSON":      logged.String(),
		"json.Marshal":   string(asJSON),
		"yaml.Marshal":   string(asYAML),
		"fmt":            fmt.Sprintf("%v %+v %#v %s %v %+v %#v %v", cfg, cfg, cfg, cfg.Sources["ledger"].Secrets[0], cfg.Sources["ledger"], *cfg.Sources["ledger"], cfg.Sources["ledger"], cfg.Connectors["crm"]),
		"fmt connector":  fmt.Sprintf("%+v %#v", cfg.Connectors["other"], cfg.Connectors["other"]),
	}
	for name, v := range views {
		for _, s := range secretValues {
			if strings.Contains(v, s) {
				t.Errorf("%s shows secret %q:\n%s", name, s, v)
			}
		}
		if !strings.Contains(v, config.Redaction) {
			t.Errorf("%s shows no %s at all:\n%s", name, config.Redaction, v)
		}
	}

	// Redaction keeps what is not secret.
	for _, visible := range []string{"visible-client-id", "visible-value", "https://auth.example.com/visible", "127.0.0.2:4222", "user=hub"} {
		if !strings.Contains(cfg.String(), visible) {
			t.Errorf("String() hides %q, which is not a secret:\n%s", visible, cfg.String())
		}
	}
	var red map[string]any
	if err := json.Unmarshal(cfg.Connectors["crm"].RedactedConfig(), &red); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"login_url": "https://login.salesforce.com", "client_id": "visible-client-id",
		"client_secret": config.Redaction,                                       // by key name and format: password
		"session_ref":   config.Redaction,                                       // x-secret: true
		"bearer":        config.Redaction,                                       // writeOnly: true
		"auth":          map[string]any{"mode": "jwt", "key": config.Redaction}, // from ${file:}
	}
	if !jsonEqual(red, want) {
		t.Errorf("RedactedConfig:\n got %v\nwant %v", red, want)
	}
	// Redacted is a copy: the config itself keeps its secrets.
	if cfg.Redacted().Sources["ledger"].Secrets[0].Value() != config.Redaction || cfg.Sources["ledger"].Secrets[0].Value() != "ledger-secret-0-long-enough" {
		t.Error("Redacted changed the config it copies")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
