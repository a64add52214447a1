package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/config"
)

// base is a valid tail that snippets about the other sections prepend to.
const base = `sources:
  ledger: {insecure: true}
connectors:
  crm:
    type: salesforce
syncs:
  m:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: m.yaml
`

// inDir writes hub.yaml (and m.yaml, a mapping file, plus extra files) into
// a fresh directory, makes it the working directory and returns "hub.yaml",
// so that messages start with "hub.yaml:".
func inDir(t *testing.T, hub string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"hub.yaml": hub, "m.yaml": "fields: {MembershipNumber: member_id}\n"}
	for k, v := range extra {
		files[k] = v
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return "hub.yaml"
}

// problems returns the lines of a Load error, failing unless it is a
// config.Errors.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error is %T, not config.Errors: %v", err, err)
	}
	if got := len(strings.Split(err.Error(), "\n")); got != len(errs) {
		t.Fatalf("Error() has %d lines for %d problems", got, len(errs))
	}
	return strings.Split(err.Error(), "\n")
}

// salesforceSchema is a connector config schema in the shape connectors
// describe theirs (OpenAPI 3 schema object).
func salesforceSchema(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir(t), "salesforce.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testdata is the absolute path of testdata/, taken before tests chdir.
var testdata string

func testdataDir(t *testing.T) string {
	t.Helper()
	return testdata
}

func TestMain(m *testing.M) {
	abs, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	testdata = abs
	os.Exit(m.Run())
}

// withSalesforce is WithConnectorSchemas knowing the salesforce type and
// marketingcloud (no schema).
func withSalesforce(t *testing.T) config.Option {
	schema := salesforceSchema(t)
	return config.WithConnectorSchemas(func(typ string) (json.RawMessage, bool) {
		switch typ {
		case "salesforce":
			return schema, true
		case "marketingcloud":
			return nil, true
		}
		return nil, false
	})
}
