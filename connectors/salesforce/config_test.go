package salesforce_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := salesforce.ParseConfig(json.RawMessage(`{"client_id":"id","client_secret":"secret"}`))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := salesforce.Config{
		LoginURL:     "https://login.salesforce.com",
		Auth:         "client_credentials",
		ClientID:     "id",
		ClientSecret: "secret",
		APIVersion:   "v63.0",
		BatchSize:    200,
		Timeout:      "30s",
	}
	cfg2 := want
	if cfg.LoginURL != cfg2.LoginURL || cfg.Auth != cfg2.Auth || cfg.APIVersion != cfg2.APIVersion ||
		cfg.BatchSize != cfg2.BatchSize || cfg.Timeout != cfg2.Timeout {
		t.Errorf("defaults = %+v, want %+v", cfg, want)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings, all present
	}{
		{"password without username", `{"auth":"password","client_id":"a","client_secret":"b","password":"pw"}`,
			[]string{`auth is "password" but username is empty: set username`}},
		{"every problem at once",
			`{"login_url":"ftp://x","auth":"password","api_version":"63","batch_size":201,"timeout":"soon"}`,
			[]string{
				"login_url \"ftp://x\" is not an absolute http(s) URL",
				`auth is "password" but username is empty: set username`,
				`auth is "password" but password is empty: set password`,
				"client_id is empty",
				"client_secret is empty",
				`api_version "63" is not of the form vNN.N`,
				"batch_size 201 is out of range: set 1..200",
				`timeout "soon" is not a duration`,
			}},
		{"unknown auth", `{"auth":"jwt","client_id":"a","client_secret":"b"}`, []string{`auth "jwt" is not supported: set it to "client_credentials" or "password"`}},
		{"client credentials with password", `{"client_id":"a","client_secret":"b","username":"u","password":"p"}`,
			[]string{`auth is "client_credentials" but username is set`, `but password is set`}},
		{"negative batch", `{"client_id":"a","client_secret":"b","batch_size":-1}`, []string{"batch_size -1 is out of range"}},
		{"timeout too long", `{"client_id":"a","client_secret":"b","timeout":"11m"}`, []string{`timeout "11m" is out of range`}},
		{"unknown field", `{"client_id":"a","client_secret":"b","batchsize":5}`, []string{`unknown field "batchsize"`, "batch_size"}},
		{"wrong type", `{"client_id":"a","client_secret":"b","batch_size":"200"}`, []string{"field batch_size is a JSON string but must be a whole number"}},
		{"not an object", `[1]`, []string{"not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := salesforce.ParseConfig(json.RawMessage(tt.in))
			if err == nil {
				t.Fatalf("ParseConfig(%s) = nil error", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigureIsPermanentAndDoesNoIO(t *testing.T) {
	c := salesforce.New(nil)
	err := c.Configure(context.Background(), json.RawMessage(`{"auth":"password"}`))
	if connectors.KindOf(err) != connectors.Permanent {
		t.Fatalf("Configure(bad) kind = %v (%v), want permanent", connectors.KindOf(err), err)
	}
	// A valid config pointing at a closed port must configure without I/O.
	start := time.Now()
	err = c.Configure(context.Background(), json.RawMessage(`{"login_url":"http://127.0.0.1:1","client_id":"a","client_secret":"b","timeout":"2s"}`))
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Configure took %s: it must not do I/O", time.Since(start))
	}
	// The first Check logs in, and the refused connection is transient.
	err = c.Check(context.Background())
	if connectors.KindOf(err) != connectors.Transient {
		t.Errorf("Check against a closed port: kind %v (%v), want transient", connectors.KindOf(err), err)
	}
}

func TestWriteBeforeConfigure(t *testing.T) {
	c := salesforce.New(nil)
	_, err := c.Write(context.Background(), connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: []connectors.Record{{Key: "a"}}})
	if connectors.KindOf(err) != connectors.Permanent || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Write before Configure = %v (kind %v), want permanent 'not configured'", err, connectors.KindOf(err))
	}
}

func TestWriteRequestValidation(t *testing.T) {
	c := salesforce.New(nil)
	if err := c.Configure(context.Background(), json.RawMessage(`{"login_url":"http://127.0.0.1:1","client_id":"a","client_secret":"b"}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  connectors.WriteRequest
		want string
	}{
		{"upsert without external id field", connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, Records: []connectors.Record{{Key: "a"}}}, "external_id_field is empty"},
		{"bad object", connectors.WriteRequest{Object: "Contact/../x", Operation: connectors.Insert}, "is not an sObject API name"},
		{"bad operation", connectors.WriteRequest{Object: "Contact", Operation: "merge"}, `operation "merge"`},
		{"bad external id field", connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: "a b"}, "is not a field API name"},
		{"too many", connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: make([]connectors.Record, salesforce.MaxBatch+1)}, "split the batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Write(context.Background(), tt.req)
			if connectors.KindOf(err) != connectors.Permanent || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write = %v (kind %v), want permanent containing %q", err, connectors.KindOf(err), tt.want)
			}
		})
	}
}

// The published schema must be a valid OpenAPI 3 schema whose defaults and
// examples Configure accepts, with the secrets marked.
func TestConfigSchema(t *testing.T) {
	d, err := salesforce.New(nil).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "salesforce" || d.MaxBatch != salesforce.MaxBatch {
		t.Errorf("Describe = %+v", d)
	}
	var schema openapi3.Schema
	if err := json.Unmarshal(d.ConfigSchema, &schema); err != nil {
		t.Fatalf("ConfigSchema is not a schema: %v", err)
	}
	if err := schema.Validate(context.Background()); err != nil {
		t.Fatalf("ConfigSchema is not a valid OpenAPI 3 schema: %v", err)
	}
	defaults := map[string]any{}
	examples := map[string]any{}
	secrets := map[string]bool{}
	for name, ref := range schema.Properties {
		p := ref.Value
		if p.Description == "" {
			t.Errorf("property %s has no description", name)
		}
		if p.Example == nil {
			t.Errorf("property %s has no example", name)
		}
		if p.Default != nil {
			defaults[name] = p.Default
		} else if !containsString(schema.Required, name) {
			t.Errorf("optional property %s has no default", name)
		}
		examples[name] = p.Example
		if v, ok := p.Extensions["x-secret"]; ok && v == true {
			secrets[name] = true
		}
	}
	for _, s := range []string{"client_secret", "password", "security_token"} {
		if !secrets[s] {
			t.Errorf("%s is not marked x-secret", s)
		}
	}
	if len(secrets) != 3 {
		t.Errorf("secrets = %v, want exactly client_secret, password, security_token", secrets)
	}

	// The schema's defaults are Configure's defaults.
	defaults["client_id"], defaults["client_secret"] = "id", "secret"
	raw, _ := json.Marshal(defaults)
	if err := schema.VisitJSON(jsonValue(t, raw)); err != nil {
		t.Errorf("defaults do not satisfy the schema: %v", err)
	}
	cfg, err := salesforce.ParseConfig(raw)
	if err != nil {
		t.Fatalf("ParseConfig(schema defaults): %v", err)
	}
	empty, _ := salesforce.ParseConfig(json.RawMessage(`{"client_id":"id","client_secret":"secret"}`))
	if cfg.LoginURL != empty.LoginURL || cfg.Auth != empty.Auth || cfg.APIVersion != empty.APIVersion || cfg.BatchSize != empty.BatchSize || cfg.Timeout != empty.Timeout {
		t.Errorf("schema defaults %+v differ from Configure defaults %+v", cfg, empty)
	}

	// The examples, made consistent (password flow), satisfy both.
	raw, _ = json.Marshal(examples)
	if err := schema.VisitJSON(jsonValue(t, raw)); err != nil {
		t.Errorf("examples do not satisfy the schema: %v", err)
	}
	examples["auth"] = "password"
	raw, _ = json.Marshal(examples)
	if _, err := salesforce.ParseConfig(raw); err != nil {
		t.Errorf("ParseConfig(examples): %v", err)
	}

	// The schema refuses what Configure refuses, where it can express it.
	for _, bad := range []string{
		`{"client_id":"a","client_secret":"b","batch_size":0}`,
		`{"client_id":"a","client_secret":"b","batch_size":201}`,
		`{"client_id":"a","client_secret":"b","auth":"jwt"}`,
		`{"client_id":"a","client_secret":"b","api_version":"63.0"}`,
		`{"client_id":"a","client_secret":"b","nope":1}`,
		`{"client_secret":"b"}`,
	} {
		if err := schema.VisitJSON(jsonValue(t, []byte(bad))); err == nil {
			t.Errorf("schema accepts %s", bad)
		}
	}
}

func jsonValue(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRegistered(t *testing.T) {
	spec, ok := connectors.Lookup("salesforce")
	if !ok {
		t.Fatal(`"salesforce" is not registered`)
	}
	c := spec.New(nil)
	if _, ok := c.(*salesforce.Connector); !ok {
		t.Fatalf("registered constructor returns %T", c)
	}
	if _, ok := c.(connectors.Writer); !ok {
		t.Error("not a connectors.Writer")
	}
	if _, ok := c.(connectors.SchemaDescriber); !ok {
		t.Error("not a connectors.SchemaDescriber")
	}
}
