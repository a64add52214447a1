package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/config"
	"github.com/loyaltyhub/loyaltyhub/connectors"
)

func loadFull(t *testing.T) *config.Config {
	t.Helper()
	t.Setenv("LEDGER_WEBHOOK_SECRET", "whsec-full-0123456789")
	t.Setenv("SF_CLIENT_ID", "client-full")
	t.Setenv("SF_TIMEOUT", "45")
	cfg, err := config.Load(filepath.Join(testdataDir(t), "full.yaml"), withSalesforce(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestFullConfig(t *testing.T) {
	cfg := loadFull(t)
	td := testdataDir(t)
	if cfg.Path != filepath.Join(td, "full.yaml") {
		t.Errorf("Path: got %q", cfg.Path)
	}
	if cfg.DataDir != filepath.Join(td, "data") || cfg.Store.DSN != filepath.Join(td, "data", "state.db") {
		t.Errorf("data_dir %q and sqlite dsn %q: want them under %s", cfg.DataDir, cfg.Store.DSN, td)
	}
	wantTop := config.Config{
		DataDir: cfg.DataDir,
		Log:     config.Log{Level: "info", Format: "text"},
		HTTP: config.HTTP{Listen: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, MaxBatchEvents: 1000, ShutdownTimeout: 30 * time.Second,
			AdminToken: "legacy-admin-token", AdminTokens: cfg.HTTP.AdminTokens, RedactFields: cfg.HTTP.RedactFields,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: 65536, MaxConcurrentIngress: 64},
		Bus:      config.Bus{URL: "", Stream: "LOYALTYHUB", SubjectPrefix: "loyaltyhub", AckWait: 30 * time.Second, MaxAge: 168 * time.Hour, MaxBytes: 4 << 30},
		Store:    config.Store{Driver: "sqlite", DSN: cfg.Store.DSN},
		Progress: config.Progress{Interval: 5 * time.Second},
		Replica:  config.Replica{LeaseTTL: 15 * time.Second},
	}
	got := *cfg
	got.Sources, got.Connectors, got.Syncs, got.Path = nil, nil, nil, ""
	if !reflect.DeepEqual(got, wantTop) {
		t.Errorf("top-level settings:\n got %+v\nwant %+v", got, wantTop)
	}

	if s := cfg.Sources["ledger"]; s.Name != "ledger" || len(s.Secrets) != 2 || s.Secrets[0].Value() != "whsec-full-0123456789" ||
		s.Tolerance != 5*time.Minute || s.Insecure || s.Pos.String() != fmt.Sprintf("%s:%d:3", filepath.Join(td, "full.yaml"), lineOf(t, `^  ledger:`)) {
		t.Errorf("source ledger: %+v at %s", s, s.Pos)
	}
	if s := cfg.Sources["cdp"]; len(s.Secrets) != 0 || !s.Insecure {
		t.Errorf("source cdp: %+v, want insecure without secrets", s)
	}
	if c := cfg.Connectors["crm"]; c.Name != "crm" || c.Type != "salesforce" || c.Pos.Line != lineOf(t, `^  crm:`) ||
		c.Breaker != (config.Breaker{Failures: 5, OpenFor: 10 * time.Second}) {
		t.Errorf("connector crm: %v at %s", c, c.Pos)
	}

	m := cfg.Syncs["members-to-crm"]
	wantM := config.Sync{
		Name: "members-to-crm", From: "ledger.member", Source: "ledger", Entity: "member",
		To: "crm", Object: "LoyaltyProgramMember", Mode: connectors.Upsert, Removals: "delete", ExternalID: "Ledger_Member_Id__c",
		Mapping: config.MappingRef{
			File:       filepath.Join(td, "mappings", "member-to-lpm.yaml"),
			SourceFile: filepath.Join(td, "full.yaml"),
			Pos:        config.Position{File: filepath.Join(td, "full.yaml"), Line: lineOf(t, `^    mapping: mappings/member-to-lpm.yaml`), Column: 14},
		},
		Batch:     config.Batch{Size: 200, Window: 200 * time.Millisecond},
		Retry:     config.Retry{MaxAttempts: 10, InitialInterval: 500 * time.Millisecond, MaxInterval: time.Minute, Multiplier: 2},
		RateLimit: 0,
		Inflight:  400, // 0 in the file: 2 × batch.size
		Pos:       config.Position{File: filepath.Join(td, "full.yaml"), Line: lineOf(t, `^  members-to-crm:`), Column: 3},
	}
	if !reflect.DeepEqual(*m, wantM) {
		t.Errorf("sync members-to-crm:\n got %+v\nwant %+v", *m, wantM)
	}
	tx := cfg.Syncs["transactions-to-crm"]
	if tx.Mode != connectors.Insert || tx.ExternalID != "" || tx.Batch != (config.Batch{Size: 100, Window: 200 * time.Millisecond}) ||
		tx.RateLimit != 2.5 || tx.Inflight != 300 || tx.Retry.MaxAttempts != 10 {
		t.Errorf("sync transactions-to-crm: %+v", *tx)
	}
	if !tx.Mapping.Inline() || tx.Mapping.File != "" || tx.Mapping.Node.Kind != yaml.MappingNode || tx.Mapping.Node.Line != lineOf(t, `^    mapping:\s*(#|$)`)+1 {
		t.Errorf("inline mapping: %+v", tx.Mapping)
	}
	if names := syncNames(cfg.SyncList()); names != "members-to-crm,transactions-to-crm" {
		t.Errorf("SyncList: %s", names)
	}
}

func syncNames(ss []*config.Sync) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

// A loaded config written back with YAML loads to the same config.
func TestRoundTrip(t *testing.T) {
	first := loadFull(t)
	out, err := first.YAML()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "again.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := config.Load(path, withSalesforce(t))
	if err != nil {
		t.Fatalf("loading what YAML wrote: %v\n%s", err, out)
	}
	again, err := second.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Errorf("YAML differs after a round trip:\n%s\n---\n%s", out, again)
	}
	a, b := normalize(t, first), normalize(t, second)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("config differs after a round trip:\n%#v\n%#v", a, b)
	}
	// The $${ escape survives: the inline mapping still says ${PRICE}.
	var fields struct{ Fields map[string]string }
	if err := second.Syncs["transactions-to-crm"].Mapping.Node.Decode(&fields); err != nil {
		t.Fatal(err)
	}
	if fields.Fields["Note"] != "costs ${PRICE}" {
		t.Errorf("escaped reference after a round trip: %q", fields.Fields["Note"])
	}
}

type normalized struct {
	Top        config.Config
	Sources    map[string]config.Source
	Connectors map[string]string
	Syncs      map[string]config.Sync
	Mappings   map[string]string
}

// normalize drops what depends on where the file is: positions, Path.
func normalize(t *testing.T, c *config.Config) normalized {
	n := normalized{Top: *c, Sources: map[string]config.Source{}, Connectors: map[string]string{}, Syncs: map[string]config.Sync{}, Mappings: map[string]string{}}
	n.Top.Sources, n.Top.Connectors, n.Top.Syncs, n.Top.Path = nil, nil, nil, ""
	for k, s := range c.Sources {
		cp := *s
		cp.Pos = config.Position{}
		n.Sources[k] = cp
	}
	for k, conn := range c.Connectors {
		n.Connectors[k] = conn.Type + " " + string(conn.Config) + " " + string(conn.RedactedConfig())
	}
	for k, s := range c.Syncs {
		cp := *s
		cp.Pos = config.Position{}
		if cp.Mapping.Node != nil {
			b, err := yaml.Marshal(cp.Mapping.Node)
			if err != nil {
				t.Fatal(err)
			}
			n.Mappings[k] = string(b)
		}
		cp.Mapping = config.MappingRef{File: cp.Mapping.File}
		n.Syncs[k] = cp
	}
	return n
}

func TestJSONSchema(t *testing.T) {
	raw, err := config.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(config.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(config.SchemaID)
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}

	// Every key has a description.
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	checkDescriptions(t, "", tree)

	cfg := loadFull(t)
	clear := must(cfg.YAML())
	fullYAML := must(os.ReadFile(filepath.Join(testdataDir(t), "full.yaml")))
	valid := map[string][]byte{
		"testdata/full.yaml as written": fullYAML,
		"YAML() of the loaded config":   clear,
		"json.Marshal of the config":    must(json.Marshal(cfg)),
		"a minimal config":              []byte(base),
		"x- keys and a bare 0 duration": []byte("x-retry: &r {max_attempts: 3}\nprogress: {interval: 0}\n"),
		"references in typed fields":    []byte("http: {max_body_bytes: \"${MAX}\", shutdown_timeout: \"${T:-5s}\"}\nlog: {level: \"${LEVEL}\"}\n"),
	}
	for name, b := range valid {
		if err := schema.Validate(yamlToJSON(t, b)); err != nil {
			t.Errorf("%s does not validate: %v", name, err)
		}
	}
	invalid := map[string]string{
		"unknown key":        "lgo: {}\n",
		"unknown nested key": "http: {lisen: x}\n",
		"bad enum":           "log: {level: verbose}\n",
		"out of range":       "http: {max_body_bytes: 10}\n",
		"bad duration":       "progress: {interval: 5}\n",
		"bad duration text":  "progress: {interval: 5 s}\n",
		"bad name":           "sources: {Ledger: {}}\n",
		"missing required":   "syncs: {m: {from: ledger.member, to: crm, mapping: m.yaml}}\n",
		"wrong kind":         "http: [a]\n",
	}
	for name, y := range invalid {
		if err := schema.Validate(yamlToJSON(t, []byte(y))); err == nil {
			t.Errorf("%s: the schema accepts %q", name, y)
		}
	}
}

func checkDescriptions(t *testing.T, path string, node map[string]any) {
	props, _ := node["properties"].(map[string]any)
	for k, v := range props {
		p, _ := v.(map[string]any)
		if d, _ := p["description"].(string); d == "" {
			t.Errorf("schema: %s.%s has no description", path, k)
		}
		checkDescriptions(t, path+"."+k, p)
		if ap, ok := p["additionalProperties"].(map[string]any); ok {
			checkDescriptions(t, path+"."+k+".*", ap)
		}
	}
}

func yamlToJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// lineOf is the number of the first line of testdata/full.yaml that
// matches the regular expression re, so the test does not break when keys
// are added above it.
func lineOf(t *testing.T, re string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir(t), "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rx := regexp.MustCompile(re)
	for i, line := range strings.Split(string(b), "\n") {
		if rx.MatchString(line) {
			return i + 1
		}
	}
	t.Fatalf("testdata/full.yaml has no line matching %s", re)
	return 0
}
