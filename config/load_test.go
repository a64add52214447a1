package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/config"
)

type loadCase struct {
	name  string
	yaml  string
	files map[string]string
	env   map[string]string
	opts  func(t *testing.T) []config.Option
	want  []string
}

var loadCases = []loadCase{
	{name: "unknown top-level key suggests the closest", yaml: "lgo: {level: info}\n" + base,
		want: []string{
			`hub.yaml:1:1: lgo: unknown key "lgo"; did you mean "log"? valid keys: data_dir, log, http, bus, store, progress, replica, sources, connectors, syncs`,
		},
	},
	{name: "unknown nested key suggests the closest", yaml: "http:\n  lisen: 127.0.0.1:9000\n" + base,
		want: []string{
			`hub.yaml:2:3: http.lisen: unknown key "lisen"; did you mean "listen"? valid keys: listen, max_body_bytes, max_batch_events, shutdown_timeout, admin_token, admin_tokens, redact_fields, read_header_timeout, read_timeout, write_timeout, idle_timeout, max_header_bytes, max_concurrent_ingress`,
		},
	},
	{name: "unknown key far from all lists the valid keys", yaml: "http:\n  port: 9000\n" + base,
		want: []string{
			`hub.yaml:2:3: http.port: unknown key "port"; valid keys: listen, max_body_bytes, max_batch_events, shutdown_timeout, admin_token, admin_tokens, redact_fields, read_header_timeout, read_timeout, write_timeout, idle_timeout, max_header_bytes, max_concurrent_ingress`,
		},
	},
	{name: "duplicate key", yaml: "log: {level: info}\nlog: {level: debug}\n" + base,
		want: []string{
			`hub.yaml:2:1: log: duplicate key "log"; it is first set at line 1`,
		},
	},
	{name: "enums", yaml: "log: {level: verbose, format: txt}\nstore: {driver: mysql}\n" + base,
		want: []string{
			`hub.yaml:1:14: log.level: unknown level "verbose"; valid: debug, info, warn, error`,
			`hub.yaml:1:31: log.format: unknown format "txt"; did you mean "text"? valid: text, json`,
			`hub.yaml:2:17: store.driver: unknown driver "mysql"; valid: sqlite, postgres`,
		},
	},
	{name: "integers, ranges and units", yaml: "http:\n  max_body_bytes: 1MB\n  max_batch_events: 0\n" + base,
		want: []string{
			`hub.yaml:2:19: http.max_body_bytes: must be an integer (bytes); got "1MB"`,
			`hub.yaml:3:21: http.max_batch_events: 0 is out of range; valid: 1 to 100000 events`,
		},
	},
	{name: "durations and ranges", yaml: "http:\n  shutdown_timeout: 30\nprogress:\n  interval: 10ms\n" + base,
		want: []string{
			`hub.yaml:2:21: http.shutdown_timeout: must be a duration such as 500ms, 30s, 5m or 1h; got "30"`,
			`hub.yaml:4:13: progress.interval: 10ms is out of range; valid: 0 (disables), or 100ms to 1h`,
		},
	},
	{name: "progress interval 0 disables", yaml: "progress: {interval: 0}\n" + base,
		want: nil,
	},
	{name: "a key with no value", yaml: "http:\n  listen:\n" + base,
		want: []string{
			`hub.yaml:2:10: http.listen: has no value; give one, or remove the key for the default 127.0.0.1:8080`,
		},
	},
	{name: "listen address", yaml: "http: {listen: \"8080\"}\n" + base,
		want: []string{
			`hub.yaml:1:16: http.listen: "8080" is not host:port; e.g. 127.0.0.1:8080, or :8080 for every interface`,
		},
	},
	{name: "listen port", yaml: "http: {listen: \"127.0.0.1:99999\"}\n" + base,
		want: []string{
			`hub.yaml:1:16: http.listen: port "99999" is not a number from 0 to 65535`,
		},
	},
	{name: "bus url scheme, password not shown", yaml: "bus:\n  url: http://hub:hunter2@nats:4222\n" + base,
		want: []string{
			`hub.yaml:2:8: bus.url: unknown URL scheme "http" in "http://hub:[redacted]@nats:4222"; valid: nats, tls, ws, wss`,
		},
	},
	{name: "bus stream and subject prefix", yaml: "bus:\n  stream: LOYALTY.HUB\n  subject_prefix: a..b\n" + base,
		want: []string{
			`hub.yaml:2:11: bus.stream: invalid stream name "LOYALTY.HUB"; letters, digits, - and _ only (no dots, spaces or wildcards), e.g. LOYALTYHUB`,
			`hub.yaml:3:19: bus.subject_prefix: invalid subject prefix "a..b"; dot-separated tokens of letters, digits, - and _ (no wildcards, no leading or trailing dot), e.g. loyaltyhub`,
		},
	},
	{name: "postgres needs a dsn", yaml: "store:\n  driver: postgres\n" + base,
		want: []string{
			`hub.yaml:1:1: store.dsn: missing; the postgres driver needs a DSN, e.g. postgres://user:${PGPASSWORD}@127.0.0.1:5432/loyaltyhub`,
		},
	},
	{name: "postgres dsn form, password not shown", yaml: "store:\n  driver: postgres\n  dsn: mysql://u:hunter2@db/x\n" + base,
		want: []string{
			`hub.yaml:3:8: store.dsn: "mysql://u:[redacted]@db/x" is not a PostgreSQL DSN; use postgres://user:password@host:5432/db or host=... user=... dbname=...`,
		},
	},
	{name: "section of the wrong kind", yaml: "http: [a, b]\n" + base,
		want: []string{
			`hub.yaml:1:7: http: must be a mapping with the keys listen, max_body_bytes, max_batch_events, shutdown_timeout, admin_token, admin_tokens, redact_fields, read_header_timeout, read_timeout, write_timeout, idle_timeout, max_header_bytes, max_concurrent_ingress, not a sequence`,
		},
	},
	{name: "invalid names", yaml: `sources:
  Ledger: {insecure: true}
  ledger: {insecure: true}
connectors:
  crm.eu:
    type: salesforce
syncs:
  m_1:
    from: ledger.member
    to: crm.eu
    object: X
    external_id: Y
    mapping: m.yaml
`,
		want: []string{
			`hub.yaml:2:3: sources.Ledger: invalid name "Ledger"; names start with a lowercase letter, then lowercase letters, digits, _ or - (^[a-z][a-z0-9_-]*$)`,
			`hub.yaml:5:3: connectors.crm.eu: invalid name "crm.eu"; names start with a lowercase letter, then lowercase letters, digits, _ or - (^[a-z][a-z0-9_-]*$)`,
		},
	},
	{name: "source keys", env: map[string]string{"EMPTY_SECRET": ""}, yaml: `sources:
  ledger:
    secrets: ["${EMPTY_SECRET}"]
  cdp: {}
  crm: {secrets: [whsec_c2hvcnQ=, "whsec_not base64!", twenty-byte-raw-key!], insecure: true}
  erp: {insecure: true, tolerance: 1s}
connectors:
  crm: {type: salesforce}
syncs: {}
`,
		want: []string{
			`hub.yaml:3:15: sources.ledger.secrets[0]: a signing key must hold at least 16 bytes (this one holds 0); make one with: echo whsec_$(head -c 32 /dev/urandom | base64)`,
			`hub.yaml:4:8: sources.cdp: needs its signing keys: secrets: ["${LEDGER_WEBHOOK_SECRET}"] (Standard Webhooks, whsec_<base64>); or declare insecure: true to accept unsigned events from anyone who can reach the hub (demos and tests only)`,
			`hub.yaml:5:19: sources.crm.secrets[0]: a signing key must hold at least 16 bytes (this one holds 5); make one with: echo whsec_$(head -c 32 /dev/urandom | base64)`,
			`hub.yaml:5:35: sources.crm.secrets[1]: a whsec_ key must be followed by standard base64: illegal base64 data at input byte 3`,
			`hub.yaml:5:89: sources.crm.insecure: a source with secrets is not insecure; remove insecure: true, or the secrets`,
			`hub.yaml:6:36: sources.erp.tolerance: 1s is out of range; valid: 10s to 1h`,
		},
	},
	{name: "sync required keys, all reported", yaml: `sources: {ledger: {insecure: true}}
connectors: {crm: {type: salesforce}}
syncs:
  m:
    mode: insert
`,
		want: []string{
			`hub.yaml:4:3: syncs.m.from: missing; from is required (e.g. from: ledger.member)`,
			`hub.yaml:4:3: syncs.m.mapping: missing; mapping is required (e.g. mapping: mappings/member.yaml)`,
			`hub.yaml:4:3: syncs.m.object: missing; object is required (e.g. object: LoyaltyProgramMember)`,
			`hub.yaml:4:3: syncs.m.to: missing; to is required (e.g. to: crm)`,
		},
	},
	{name: "unknown connector in to", yaml: `sources:
  ledger: {insecure: true}
connectors:
  crm:
    type: salesforce
syncs:
  members-to-crm:
    from: ledger.member
    to: cmr
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: m.yaml
`,
		want: []string{
			`hub.yaml:9:9: syncs.members-to-crm.to: unknown connector "cmr"; declared connectors: crm`,
		},
	},
	{name: "from forms", yaml: `sources:
  ledger: {insecure: true}
  cdp: {insecure: true}
connectors:
  crm: {type: salesforce}
syncs:
  a: {from: ledger, to: crm, object: X, mode: insert, mapping: m.yaml}
  b: {from: ledgr.member, to: crm, object: X, mode: insert, mapping: m.yaml}
  c: {from: ledger.members, to: crm, object: X, mode: insert, mapping: m.yaml}
  d: {from: cdp.segment, to: crm, object: X, mode: insert, mapping: m.yaml}
`,
		want: []string{
			`hub.yaml:7:13: syncs.a.from: "ledger" is not <source>.<entity>; e.g. ledger.member (entities: member, transaction, voucher, segment)`,
			`hub.yaml:8:13: syncs.b.from: unknown source "ledgr"; did you mean "ledger"? declared sources (webhook sources, and connectors with a read block): cdp, ledger`,
			`hub.yaml:9:13: syncs.c.from: unknown entity "members"; did you mean "member"? valid entities: member, transaction, voucher, segment`,
		},
	},
	{name: "plugins and polled connectors", yaml: `sources: {ledger: {insecure: true}}
connectors:
  crm: {type: salesforce, plugin: {path: ./x, sha256: abc}}
  geo: {type: "plugin:geooffers"}
  offers:
    type: "plugin:geooffers"
    plugin: {path: ./bin/geooffers, sha256: ABC, args: [serve], call_timeout: 5s}
    read: {objects: [vouchers], interval: 1s}
syncs:
  a: {from: offers.voucher, to: crm, object: Voucher, mode: insert, mapping: m.yaml}
  b: {from: geo.voucher, to: crm, object: Voucher, mode: insert, mapping: m.yaml}
  c: {from: ledger.member, to: offers, object: members, mode: insert, mapping: m.yaml}
`,
		want: []string{
			`hub.yaml:3:35: connectors.crm.plugin: only plugin:<name> types take a plugin block; "salesforce" is built into the hub`,
			`hub.yaml:4:15: connectors.geo.type: type "plugin:geooffers" needs a plugin block: plugin: {path: ./bin/geooffers, sha256: <sha256sum of it>}`,
			`hub.yaml:7:45: connectors.offers.plugin.sha256: "ABC" is not a SHA-256 digest: 64 lowercase hex characters, as printed by sha256sum`,
			`hub.yaml:11:13: syncs.b.from: unknown source "geo"; declared sources (webhook sources, and connectors with a read block): ledger, offers`,
		},
	},
	{name: "mode and external_id", yaml: `sources: {ledger: {insecure: true}}
connectors: {crm: {type: salesforce}}
syncs:
  a: {from: ledger.member, to: crm, object: X, mode: upsret, mapping: m.yaml}
  b: {from: ledger.member, to: crm, object: X, mapping: m.yaml}
  c: {from: ledger.member, to: crm, object: X, mode: upsert, external_id: "", mapping: m.yaml}
  d: {from: ledger.member, to: crm, object: X, mode: delete, mapping: m.yaml}
`,
		want: []string{
			`hub.yaml:4:54: syncs.a.mode: unknown mode "upsret"; did you mean "upsert"? valid: upsert, insert, update, delete`,
			`hub.yaml:5:3: syncs.b.external_id: missing; mode upsert needs the target's external id field (e.g. external_id: Ledger_Member_Id__c), or set another mode`,
			`hub.yaml:6:75: syncs.c.external_id: must not be empty when mode is upsert; name the target's external id field (e.g. external_id: Ledger_Member_Id__c)`,
		},
	},
	{name: "mapping forms", files: map[string]string{"maps/dir/x": ""}, yaml: `sources: {ledger: {insecure: true}}
connectors: {crm: {type: salesforce}}
syncs:
  a: {from: ledger.member, to: crm, object: X, mode: insert, mapping: missing.yaml}
  b: {from: ledger.member, to: crm, object: X, mode: insert, mapping: maps/dir}
  c: {from: ledger.member, to: crm, object: X, mode: insert, mapping: [a]}
  d: {from: ledger.member, to: crm, object: X, mode: insert, mapping: {}}
  e: {from: ledger.member, to: crm, object: X, mode: insert, mapping: ""}
  f:
    from: ledger.member
    to: crm
    object: X
    mode: insert
    mapping:
      fields: {MemberId: member_id}
`,
		want: []string{
			`hub.yaml:4:71: syncs.a.mapping: mapping file "missing.yaml" not found (looked for "$DIR/missing.yaml"); give a path relative to the config file's directory, or an inline mapping block`,
			`hub.yaml:5:71: syncs.b.mapping: mapping file "maps/dir" is a directory ("$DIR/maps/dir"); give a mapping file, or an inline mapping block`,
			`hub.yaml:6:71: syncs.c.mapping: must be a mapping file path or an inline mapping block, not a sequence`,
			`hub.yaml:7:71: syncs.d.mapping: the inline mapping block is empty; give its fields, or a mapping file path`,
			`hub.yaml:8:71: syncs.e.mapping: must not be empty; give a mapping file path (relative to the config file) or an inline mapping block`,
		},
	},
	{name: "batch, inflight, rate and retry", yaml: `sources: {ledger: {insecure: true}}
connectors: {crm: {type: salesforce}}
syncs:
  a:
    from: ledger.member
    to: crm
    object: X
    mode: insert
    mapping: m.yaml
    batch: {size: 0, window: 2m}
    retry: {max_attempts: 0, multiplier: 0.5}
    rate_limit: -1
  b:
    from: ledger.member
    to: crm
    object: X
    mode: insert
    mapping: m.yaml
    batch: {size: 50}
    inflight: 20
    retry: {initial_interval: 2m, max_interval: 1m}
`,
		want: []string{
			`hub.yaml:10:19: syncs.a.batch.size: 0 is out of range; valid: 1 to 10000 records`,
			`hub.yaml:10:30: syncs.a.batch.window: 2m is out of range; valid: 1ms to 1m`,
			`hub.yaml:11:27: syncs.a.retry.max_attempts: 0 is out of range; valid: 1 to 1000 attempts`,
			`hub.yaml:11:42: syncs.a.retry.multiplier: 0.5 is out of range; valid: 1 to 10`,
			`hub.yaml:12:17: syncs.a.rate_limit: -1 is out of range; valid: 0 to 10000 calls per second`,
			`hub.yaml:20:15: syncs.b.inflight: 20 is below batch.size (50), so a batch would never fill; valid: 0 (2 × batch.size), or 50 to 100000`,
			`hub.yaml:21:31: syncs.b.retry.initial_interval: initial_interval 2m is longer than max_interval 1m; valid: initial_interval <= max_interval`,
		},
	},
	{name: "connector type missing and malformed", yaml: `connectors:
  a: {}
  b: {type: Sales Force}
`,
		want: []string{
			`hub.yaml:2:3: connectors.a.type: missing; type is required (e.g. type: salesforce)`,
			`hub.yaml:3:13: connectors.b.type: invalid connector type "Sales Force"; a type is a connector name such as salesforce (^[a-z][a-z0-9_-]*$), or plugin:<name>`,
		},
	},
	{name: "unknown connector type with schemas", opts: func(t *testing.T) []config.Option {
		return []config.Option{withSalesforce(t), config.WithConnectorTypes("salesforce", "marketingcloud")}
	}, yaml: `connectors:
  crm: {type: salesfroce}
  mc: {type: marketingcloud, config: {anything: [1, 2]}}
`,
		want: []string{
			`hub.yaml:2:15: connectors.crm.type: unknown connector type "salesfroce"; did you mean "salesforce"? known types: salesforce, marketingcloud`,
		},
	},
	{name: "unknown connector type from the types list alone", opts: func(t *testing.T) []config.Option {
		return []config.Option{config.WithConnectorTypes("salesforce", "marketingcloud")}
	}, yaml: "connectors:\n  mc: {type: marketing-cloud}\n",
		want: []string{
			`hub.yaml:2:14: connectors.mc.type: unknown connector type "marketing-cloud"; did you mean "marketingcloud"? known types: salesforce, marketingcloud`,
		},
	},
	{name: "connector block checked against its schema", opts: func(t *testing.T) []config.Option {
		return []config.Option{withSalesforce(t)}
	}, env: map[string]string{"SF_TIMEOUT": "soon"}, yaml: `connectors:
  crm:
    type: salesforce
    config:
      login_url: 5
      client_secret: hunter2
      timeout_seconds: ${SF_TIMEOUT}
      timout: 3
      objects: [LoyaltyProgramMember, Account]
      auth:
        kind: jwt
  bare:
    type: salesforce
`,
		want: []string{
			`hub.yaml:4:5: connectors.crm.config.client_id: missing; the salesforce connector requires client_id`,
			`hub.yaml:5:18: connectors.crm.config.login_url: value must be a string`,
			`hub.yaml:7:24: connectors.crm.config.timeout_seconds: value must be an integer`,
			`hub.yaml:8:7: connectors.crm.config.timout: unknown key "timout"; did you mean "timeout_seconds"? valid keys for salesforce: api_version, auth, bearer, client_id, client_secret, login_url, objects, session_ref, timeout_seconds`,
			`hub.yaml:9:39: connectors.crm.config.objects[1]: value is not one of the allowed values ["LoyaltyProgramMember","TransactionJournal","Voucher"]`,
			`hub.yaml:10:7: connectors.crm.config.auth.mode: missing; the salesforce connector requires mode`,
			`hub.yaml:11:9: connectors.crm.config.auth.kind: unknown key "kind"; valid keys for salesforce: key, mode`,
			`hub.yaml:12:3: connectors.bare.config.client_id: missing; the salesforce connector requires client_id`,
			`hub.yaml:12:3: connectors.bare.config.client_secret: missing; the salesforce connector requires client_secret`,
			`hub.yaml:12:3: connectors.bare.config.login_url: missing; the salesforce connector requires login_url (Where to get tokens)`,
		},
	},
	{name: "connector block not checked without schemas", yaml: `connectors:
  crm:
    type: salesforce
    config: {whatever: [1, {x: y}], n: 1.5}
`,
		want: nil,
	},
	{name: "connector block of the wrong kind", yaml: "connectors:\n  crm: {type: salesforce, config: [a]}\n",
		want: []string{
			`hub.yaml:2:35: connectors.crm.config: must be a mapping of the connector's settings, not a sequence`,
		},
	},
	{name: "broken connector schema is the connector's bug", opts: func(t *testing.T) []config.Option {
		return []config.Option{config.WithConnectorSchemas(func(string) (json.RawMessage, bool) { return json.RawMessage(`{"type": "objekt"}`), true })}
	}, yaml: "connectors:\n  crm: {type: salesforce}\n  crm2: {type: salesforce}\n",
		want: []string{
			`hub.yaml:2:15: connectors.crm.type: connector type "salesforce" has an invalid config schema (a bug in the connector, not in this file): unsupported 'type' value "objekt"`,
		},
	},
	{name: "yaml syntax error", yaml: "http:\n  listen: 1\n\tbad: tab\n",
		want: []string{
			`hub.yaml:2: YAML syntax error: found a tab character that violates indentation`,
		},
	},
	{name: "empty file", yaml: "",
		want: []string{
			`hub.yaml:1: the file is empty; write the hub's sources, connectors and syncs (see config/example.yaml)`,
		},
	},
	{name: "two documents", yaml: base + "---\nlog: {}\n",
		want: []string{
			`hub.yaml:13:1: a second YAML document; the config is one document (remove the --- separator)`,
		},
	},
	{name: "root not a mapping", yaml: "- a\n- b\n",
		want: []string{
			`hub.yaml:1:1: the config must be a mapping of keys (data_dir, http, sources, connectors, syncs, ...), not a sequence`,
		},
	},
	{name: "anchors, aliases and merge keys", yaml: `sources: {ledger: {insecure: true}}
connectors: {crm: {type: salesforce}}
x-retry: &retry {max_attempts: 3}
syncs:
  a:
    from: ledger.member
    to: crm
    object: X
    mode: insert
    mapping: m.yaml
    retry: *retry
    batch:
      <<: {size: 10}
      window: 1s
`,
		want: nil,
	},
}

func TestLoadProblems(t *testing.T) {
	for _, tc := range loadCases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := inDir(t, tc.yaml, tc.files)
			var opts []config.Option
			if tc.opts != nil {
				opts = tc.opts(t)
			}
			_, err := config.Load(path, opts...)
			got := problems(t, err)
			wd, _ := os.Getwd()
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], wd, "$DIR")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

// Anchors, aliases, merge keys and top-level x- keys work as YAML says.
func TestAnchorsAndMerge(t *testing.T) {
	var yml string
	for _, tc := range loadCases {
		if tc.name == "anchors, aliases and merge keys" {
			yml = tc.yaml
		}
	}
	cfg, err := config.Load(inDir(t, yml, nil))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Syncs["a"]
	if s.Retry.MaxAttempts != 3 || s.Retry.InitialInterval != 500*time.Millisecond {
		t.Errorf("retry from an alias: %+v", s.Retry)
	}
	if s.Batch.Size != 10 || s.Batch.Window != time.Second {
		t.Errorf("batch from a merge key: %+v", s.Batch)
	}
}

// Null sections and entries take their defaults.
func TestNullsTakeDefaults(t *testing.T) {
	cfg, err := config.Load(inDir(t, "log:\nhttp:\nsources:\n  ledger: {insecure: true}\nconnectors:\n  crm: {type: salesforce, config: }\nsyncs:\n", nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "info" || cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Sources["ledger"] == nil || cfg.Sources["ledger"].Name != "ledger" {
		t.Errorf("defaults: %+v %+v %+v", cfg.Log, cfg.HTTP, cfg.Sources)
	}
	if string(cfg.Connectors["crm"].Config) != "{}" || cfg.Syncs == nil || len(cfg.Syncs) != 0 {
		t.Errorf("null config block %q, syncs %v", cfg.Connectors["crm"].Config, cfg.Syncs)
	}
}

// Load returns a plain error, not Errors, for a file it cannot read.
func TestUnreadableFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var errs config.Errors
	if err == nil || errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestLoadAllReturnsWhatItCouldRead(t *testing.T) {
	path := inDir(t, `bogus: 1
sources:
  ledger: {insecure: true}
connectors:
  crm:
    type: salesforce
syncs:
  good:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: m.yaml
  missing:
    from: ledger.member
    to: crm
    object: Contact
    external_id: Ledger_Member_Id__c
    mapping: nope.yaml
`, nil)
	cfg, err := config.LoadAll(path)
	got := problems(t, err)
	if len(got) != 2 || !strings.Contains(got[0], "bogus") || !strings.Contains(got[1], "nope.yaml") {
		t.Fatalf("problems = %q, want the unknown key and the missing mapping file", got)
	}
	if cfg == nil {
		t.Fatal("LoadAll returned no config")
	}
	if cfg.Syncs["good"].Mapping.File == "" {
		t.Error("the good sync's mapping is kept")
	}
	if cfg.Syncs["missing"].Mapping != (config.MappingRef{}) {
		t.Errorf("the missing mapping is cleared, got %+v", cfg.Syncs["missing"].Mapping)
	}
	// Load itself returns no config with the same errors.
	cfg, err = config.Load(path)
	if cfg != nil || len(problems(t, err)) != 2 {
		t.Fatalf("Load = %v, %v", cfg, err)
	}
	// Not YAML: no config at all.
	path = inDir(t, "a: [\n", nil)
	if cfg, err := config.LoadAll(path); cfg != nil || err == nil {
		t.Fatalf("LoadAll of a broken file = %v, %v", cfg, err)
	}
}

// A file whose aliases multiply (billion laughs) is refused at once, naming
// the alias, instead of taking ten times longer per level.
func TestAliasBombIsRefusedFast(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("sources: {ledger: {insecure: true}}\nconnectors:\n  crm: {type: salesforce, config: {objects: *a9}}\nsyncs: {}\n")
	start := time.Now()
	_, err := config.Load(inDir(t, b.String(), nil))
	if err == nil {
		t.Fatal("an alias bomb loaded")
	}
	if time.Since(start) > time.Second {
		t.Errorf("refusing it took %s", time.Since(start))
	}
	if !strings.Contains(err.Error(), "alias") || !strings.Contains(err.Error(), "hub.yaml:") {
		t.Errorf("the problem names no alias or no line: %v", err)
	}
	// A loop: an alias inside the value it names.
	_, err = config.Load(inDir(t, "connectors: {crm: {type: salesforce, config: &a {b: *a}}}\n", nil))
	if err == nil || !strings.Contains(err.Error(), "alias") {
		t.Errorf("an alias loop: %v", err)
	}
}
