package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/config"
)

// refsHub uses references in fields of every kind: strings, integers,
// durations, a connector block and an inline mapping.
const refsHub = `bus:
  stream: ${STREAM}
  subject_prefix: ${PREFIX:-lh.test}
http:
  listen: ${HOST:-127.0.0.1}:${PORT}
  max_body_bytes: ${MAX_BODY}
  shutdown_timeout: ${GRACE:-45s}
sources:
  ledger:
    secrets: ["${file:secrets/ledger}"]
  cdp:
    secrets: ["${file:` + "%ABS%" + `}"]
connectors:
  crm:
    type: salesforce
    config:
      login_url: ${SF_URL:-https://login.salesforce.com}
      client_id: ${SF_CLIENT_ID}
      client_secret: ${file:secrets/sf}
      timeout_seconds: ${SF_TIMEOUT}
      api_version: v60.0
syncs:
  m:
    from: ledger.member
    to: crm
    object: ${OBJECT}
    mode: insert
    mapping:
      fields:
        ProgramId: ${PROGRAM_ID}
        Price: "costs $${PRICE}, $$ and $ stay"
        Both: ${A}-${B}
`

func TestReferencesExpand(t *testing.T) {
	for k, v := range map[string]string{
		"STREAM": "HUB_TEST", "PREFIX": "", "PORT": "9090", "MAX_BODY": "2048",
		"SF_CLIENT_ID": "client-1", "SF_TIMEOUT": "45", "OBJECT": "LoyaltyProgramMember",
		"PROGRAM_ID": "0lp000", "A": "left", "B": "right",
	} {
		t.Setenv(k, v)
	}
	abs := filepath.Join(t.TempDir(), "cdp-secret")
	if err := os.WriteFile(abs, []byte("cdp-key-0123456789\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := inDir(t, strings.Replace(refsHub, "%ABS%", abs, 1), map[string]string{
		"secrets/ledger": "ledger-key-0123456789\n",
		"secrets/sf":     "sf-secret\n",
	})

	cfg, err := config.Load(path, withSalesforce(t))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"bus.stream from ${STREAM}", cfg.Bus.Stream, "HUB_TEST"},
		{"${PREFIX:-default} with PREFIX empty takes the default", cfg.Bus.SubjectPrefix, "lh.test"},
		{"two references in one value", cfg.HTTP.Listen, "127.0.0.1:9090"},
		{"integer field from a reference", cfg.HTTP.MaxBodyBytes, int64(2048)},
		{"duration default", cfg.HTTP.ShutdownTimeout, 45 * time.Second},
		{"file secret, relative to the config file, newline trimmed", cfg.Sources["ledger"].Secrets[0].Value(), "ledger-key-0123456789"},
		{"file secret, absolute, CRLF and blank lines trimmed", cfg.Sources["cdp"].Secrets[0].Value(), "cdp-key-0123456789"},
		{"sync object from a reference", cfg.Syncs["m"].Object, "LoyaltyProgramMember"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}

	var block map[string]any
	if err := json.Unmarshal(cfg.Connectors["crm"].Config, &block); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"login_url":       "https://login.salesforce.com",
		"client_id":       "client-1",
		"client_secret":   "sf-secret",
		"timeout_seconds": float64(45), // a number: the schema says integer
		"api_version":     "v60.0",
	}
	if !jsonEqual(block, want) {
		t.Errorf("connector block:\n got %v\nwant %v", block, want)
	}

	var fields struct {
		Fields map[string]string `yaml:"fields"`
	}
	if err := cfg.Syncs["m"].Mapping.Node.Decode(&fields); err != nil {
		t.Fatal(err)
	}
	wantFields := map[string]string{"ProgramId": "0lp000", "Price": "costs ${PRICE}, $$ and $ stay", "Both": "left-right"}
	for k, v := range wantFields {
		if fields.Fields[k] != v {
			t.Errorf("inline mapping %s: got %q, want %q", k, fields.Fields[k], v)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Without a schema, a reference stays a string in the connector block.
func TestReferencesStayStringsWithoutSchema(t *testing.T) {
	t.Setenv("TMO", "45")
	path := inDir(t, "connectors:\n  crm:\n    type: salesforce\n    config:\n      timeout_seconds: ${TMO}\n      literal: 45\n      ${NOT_A_KEY_REF}: keys are not expanded\n", nil)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(cfg.Connectors["crm"].Config), `{"${NOT_A_KEY_REF}":"keys are not expanded","literal":45,"timeout_seconds":"45"}`; got != want {
		t.Errorf("block: got %s, want %s", got, want)
	}
}

func TestReferenceProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{
			name: "unset variable without default names file, line and variable",
			yaml: "sources:\n  ledger:\n    secrets: [\"${LEDGER_WEBHOOK_SECRET}\"]\n",
			want: []string{`hub.yaml:3:15: sources.ledger.secrets[0]: environment variable LEDGER_WEBHOOK_SECRET is not set; set it, or give a default with ${LEDGER_WEBHOOK_SECRET:-default}`},
		},
		{
			name: "every failing reference is reported, the connector block too",
			yaml: "bus:\n  stream: ${NO_STREAM}\nconnectors:\n  crm:\n    type: salesforce\n    config:\n      nested: [{key: \"${NO_KEY}\"}]\n",
			want: []string{
				`hub.yaml:2:11: bus.stream: environment variable NO_STREAM is not set; set it, or give a default with ${NO_STREAM:-default}`,
				`hub.yaml:7:22: connectors.crm.config.nested[0].key: environment variable NO_KEY is not set; set it, or give a default with ${NO_KEY:-default}`,
			},
		},
		{
			name: "missing secret file",
			yaml: "sources:\n  ledger:\n    secrets: [\"${file:secrets/nope}\"]\n",
			want: []string{`hub.yaml:3:15: sources.ledger.secrets[0]: cannot read secret file "$DIR/secrets/nope": no such file or directory; ${file:PATH} needs a readable file (a relative PATH is relative to the config file)`},
		},
		{
			name: "empty file reference",
			yaml: "sources:\n  ledger:\n    secrets: [\"${file:}\"]\n",
			want: []string{`hub.yaml:3:15: sources.ledger.secrets[0]: empty ${file:} reference; write ${file:/path/to/secret}`},
		},
		{
			name: "unterminated reference",
			yaml: "bus:\n  stream: ${STREAM\n",
			want: []string{`hub.yaml:2:11: bus.stream: unterminated ${ reference; close it with }, or write $${ for a literal ${`},
		},
		{
			name: "invalid variable name",
			yaml: "bus:\n  stream: ${1STREAM}\n",
			want: []string{`hub.yaml:2:11: bus.stream: invalid reference name "1STREAM"; write ${NAME}, ${NAME:-default} or ${file:/path/to/secret} (NAME: letters, digits and _, not starting with a digit), or $${ for a literal ${`},
		},
		{
			name: "a bad value from a reference is not shown",
			env:  map[string]string{"MODE": "upsret", "MAXB": "hunter2"},
			yaml: "http:\n  max_body_bytes: ${MAXB}\n" + strings.Replace(base, "    mapping: m.yaml\n", "    mapping: m.yaml\n    mode: ${MODE}\n", 1),
			want: []string{
				`hub.yaml:2:19: http.max_body_bytes: must be an integer (bytes)`,
				`hub.yaml:15:11: syncs.m.mode: unknown mode (value from a ${...} reference, not shown); valid: upsert, insert, update, delete`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := inDir(t, tc.yaml, nil)
			_, err := config.Load(path)
			got := problems(t, err)
			wd, _ := os.Getwd()
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], wd, "$DIR")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a value from a reference leaked into the message: %v", err)
			}
		})
	}
}

// yamlNode keeps the yaml import for Node decoding in this file.
var _ = yaml.Node{}
