package emulator_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfig(t *testing.T) {
	cfg := emulator.DefaultConfig()
	assert.Equal(t, "admin@loyaltyhub.example", cfg.Username)
	assert.Equal(t, "emulator", cfg.Password)
	assert.Equal(t, "", cfg.SecurityToken)
	assert.Equal(t, "loyaltyhub-emulator", cfg.ClientID)
	assert.Equal(t, "emulator-secret", cfg.ClientSecret)
	assert.Equal(t, 2000, cfg.QueryPageSize)

	fields := emulator.LoyaltyhubFields()
	byName := func(obj string) map[string]emulator.CustomField {
		out := map[string]emulator.CustomField{}
		for _, f := range fields[obj] {
			out[f.Name] = f
		}
		return out
	}
	lpm := byName("LoyaltyProgramMember")
	assert.Equal(t, emulator.CustomField{Name: "Ledger_Member_Id__c", Label: "Ledger Member Id", Type: "text", Length: 64, ExternalID: true, Unique: true}, lpm["Ledger_Member_Id__c"])
	assert.Equal(t, []string{"Bronze", "Silver", "Gold", "Platinum"}, lpm["Tier__c"].Picklist)
	assert.Equal(t, 18, lpm["Ledger_Version__c"].Precision)
	assert.Equal(t, "email", lpm["Email__c"].Type)
	assert.Contains(t, byName("Contact"), "Loyalty_Points__c")
	assert.True(t, byName("Contact")["Ledger_Member_Id__c"].ExternalID)
	assert.Contains(t, byName("TransactionJournal"), "Ledger_Version__c")
	assert.True(t, byName("Voucher")["Ledger_Voucher_Id__c"].Unique)

	// the shipped file is the embedded one
	disk, err := emulator.LoadFields("loyaltyhub-fields.yaml")
	require.NoError(t, err)
	assert.Equal(t, fields, disk)
	assert.Equal(t, emulator.LoyaltyhubFieldsYAML(), mustRead(t, "loyaltyhub-fields.yaml"))

	// the default program is seeded with its documented id
	srv, err := emulator.New(cfg)
	require.NoError(t, err)
	rec, ok := srv.Get("LoyaltyProgram", emulator.DefaultProgramID)
	require.True(t, ok)
	assert.Equal(t, emulator.DefaultProgramName, rec["Name"])
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestParseFieldsErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key", "Contact:\n  - name: A__c\n    type: text\n    size: 3\n", []string{"line 4", "size"}},
		{"bad type", "Contact:\n  - name: A__c\n    type: txt\n", []string{"f.yaml:2", "Contact field 1 (A__c)", `type "txt"`, "picklist"}},
		{"standard-style name", "Contact:\n  - name: Shoe\n    type: text\n", []string{"ending in __c", "Shoe"}},
		{"picklist without values", "Contact:\n  - name: Tier__c\n    type: picklist\n", []string{"at least one value"}},
		{"unknown object", "Lead:\n  - name: A__c\n    type: text\n", []string{"f.yaml:1", `object "Lead"`, "LoyaltyProgramMember"}},
		{"external id on a checkbox", "Contact:\n  - name: Flag__c\n    type: checkbox\n    externalId: true\n", []string{"externalId", "checkbox"}},
		{"text too long", "Contact:\n  - name: Long__c\n    type: text\n    length: 300\n", []string{"length 300", "longtextarea"}},
		{"duplicate", "Contact:\n  - name: A__c\n    type: text\n  - name: a__c\n    type: text\n", []string{"f.yaml:4", "declared twice"}},
		{"scale over precision", "Contact:\n  - name: N__c\n    type: number\n    precision: 4\n    scale: 6\n", []string{"scale 6"}},
		{"lookup to nowhere", "Contact:\n  - name: L__c\n    type: lookup\n    referenceTo: Nowhere__c\n", []string{"referenceTo", "Nowhere__c"}},
		{"bad default", "Contact:\n  - name: T__c\n    type: picklist\n    picklist: [A]\n    default: B\n", []string{"default B", "restricted picklist"}},
		{"not a map", "- a\n- b\n", []string{"f.yaml", "map of object API name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := emulator.ParseFields("f.yaml", []byte(tt.doc))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	// several problems are reported at once
	_, err := emulator.ParseFields("f.yaml", []byte("Contact:\n  - name: X\n    type: text\n  - name: Y__c\n    type: nope\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "f.yaml:2")
	assert.Contains(t, err.Error(), "f.yaml:4")
}

func TestCustomFieldsFromJSONFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fields.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
	  "Contact": [{"name": "Segment__c", "type": "multipicklist", "picklist": ["VIP", "Churn Risk"]},
	              {"name": "Score__c", "type": "int", "required": true, "default": 0},
	              {"name": "Home_Store__c", "type": "lookup", "referenceTo": "Store__c"}],
	  "Store__c": [{"name": "Code__c", "type": "text", "length": 10, "externalId": true, "unique": true, "caseSensitive": true}]
	}`), 0o600))
	fields, err := emulator.LoadFields(path)
	require.NoError(t, err)
	srv, base := start(t, func(c *emulator.Config) { c.Fields = fields })
	tok := token(t, base)

	store, err := srv.Insert("Store__c", map[string]any{"Name": "Downtown", "Code__c": "DT"})
	require.NoError(t, err)
	_, err = srv.Insert("Store__c", map[string]any{"Name": "Other", "Code__c": "dt"})
	require.NoError(t, err, "a case-sensitive unique field accepts another case")

	r := do(t, "POST", base+v+"/sobjects/Contact", tok, map[string]any{"LastName": "X", "Segment__c": "VIP;Churn Risk", "Home_Store__c": store})
	require.Equal(t, 201, r.status, string(r.body))
	id := r.json(t).(map[string]any)["id"].(string)
	rec, _ := srv.Get("Contact", id)
	assert.Equal(t, 0.0, rec["Score__c"], "defaulted on create")
	r = do(t, "PATCH", base+v+"/sobjects/Contact/"+id, tok, map[string]any{"Segment__c": "VIP;Gold"})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", r.errs(t)[0]["errorCode"])
	r = do(t, "GET", base+v+"/query?q=SELECT+Name,+Home_Store__r.Code__c+FROM+Contact", tok, nil)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Contains(t, string(r.body), `"Home_Store__r":{"attributes":{"type":"Store__c"`)

	_, err = emulator.New(emulator.Config{Seed: map[string][]map[string]any{"Contact": {{"FirstName": "NoLast"}}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "REQUIRED_FIELD_MISSING")
	_, err = emulator.New(emulator.Config{APIVersion: "v63", QueryPageSize: 5000})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "APIVersion")
	assert.Contains(t, err.Error(), "QueryPageSize")
}

// Close right after Start, many times: the serving goroutine must not see
// the server Close cleared (it panicked on a nil *http.Server).
func TestCloseRightAfterStart(t *testing.T) {
	for i := range 50 {
		srv, err := emulator.New(emulator.Config{})
		require.NoError(t, err)
		_, err = srv.Start("127.0.0.1:0")
		require.NoError(t, err, "start %d", i)
		require.NoError(t, srv.Close(), "close %d", i)
	}
}
