package main

// `loyaltyhub mapping test` and `loyaltyhub mapping preview`: the example
// mappings' tests run here, so `make test` runs them; preview runs against
// the Salesforce emulator through the real connector process.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

func TestMappingTestRunsTheExampleConfigsTests(t *testing.T) {
	out, err := runCLI(t, "mapping", "test", "-c", "../../config/example.yaml")
	require.NoError(t, err, out)
	assert.Contains(t, out, "config/mappings/member-to-lpm.test.yaml (member-to-lpm.yaml, sync members-to-crm)")
	assert.Contains(t, out, "config/mappings/member-to-contact.test.yaml (member-to-contact.yaml, sync members-to-contacts)")
	assert.Contains(t, out, "config/mappings/segment-to-de.test.yaml (segment-to-de.yaml, sync segments-to-mc)")
	assert.Contains(t, out, "config/mappings/member-to-de.test.yaml (member-to-de.yaml, sync members-to-mc)")
	assert.Contains(t, out, "config/mappings/member-to-dc.test.yaml (member-to-dc.yaml, sync members-to-cdp)")
	assert.Contains(t, out, "config/mappings/transaction-to-journal.test.yaml (transaction-to-journal.yaml, sync transactions-to-crm)")
	assert.Contains(t, out, "config/mappings/transaction-to-dc.test.yaml (transaction-to-dc.yaml, sync transactions-to-cdp)")
	assert.Contains(t, out, "PASS active gold member")
	assert.NotContains(t, out, "FAIL")
	assert.NotContains(t, out, "no tests", "every sync of the example config has tests")
	assert.Regexp(t, `\n[1-9][0-9]* passed, 0 failed \(7 test file\(s\)\)\n`, out)
}

// Every example mapping, including the ones the example config does not use
// (vouchers), has a test file, and it passes.
func TestMappingTestRunsEveryExampleMappingsTests(t *testing.T) {
	maps, err := filepath.Glob("../../config/mappings/*.yaml")
	require.NoError(t, err)
	var tests []string
	for _, m := range maps {
		if strings.HasSuffix(m, ".test.yaml") {
			tests = append(tests, m)
		}
	}
	require.Len(t, tests, len(maps)/2, "every example mapping has a .test.yaml: %v", maps)
	require.GreaterOrEqual(t, len(tests), 5)

	out, err := runCLI(t, append([]string{"mapping", "test"}, tests...)...)
	require.NoError(t, err, out)
	for _, name := range []string{"member-to-lpm", "member-to-contact", "voucher-to-crm", "transaction-to-journal", "segment-to-de"} {
		assert.Contains(t, out, name+".test.yaml ("+name+".yaml)")
	}
	assert.NotContains(t, out, "FAIL")
	assert.Contains(t, out, fmt.Sprintf(" passed, 0 failed (%d test file(s))", len(tests)))
}

// writeFiles writes name → content files into a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	return dir
}

const statusMapping = `fields:
  Ext__c: {from: id, required: true}
  MemberStatus: {from: status, map: {active: Active, suspended: Inactive}}
`

func TestMappingTestFailingCaseExitsNonZeroWithADiff(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"status.yaml": statusMapping,
		// A wrong expectation, as a mapping change would cause.
		"status.test.yaml": `cases:
  - name: active member
    data: {id: M1, status: active}
    want: {Ext__c: M1, MemberStatus: Active}
  - name: suspended member
    data: {id: M2, status: suspended}
    want: {Ext__c: M2, MemberStatus: Active, Tier__c: Gold}
`,
		// A second test file for the same mapping, found by its mapping: key.
		"status-edge.test.yaml": `mapping: status.yaml
cases:
  - name: unknown status
    data: {id: M3, status: gone}
    error: 'value "gone" is not in the map'
`,
		// The inline mapping's tests: CONFIG.SYNC.test.yaml beside the config.
		"hub.inline.test.yaml": `cases:
  - name: inline
    data: {id: M4}
    want: {Key__c: M4}
`,
		"hub.yaml": `sources: {ledger: {insecure: true}}
connectors:
  crm: {type: salesforce, config: {client_id: x, client_secret: y}}
syncs:
  file:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ext__c
    mapping: status.yaml
  inline:
    from: ledger.member
    to: crm
    object: Contact
    external_id: Key__c
    mapping:
      fields:
        Key__c: {from: id, required: true}
  untested:
    from: ledger.member
    to: crm
    object: Account
    external_id: Key__c
    mapping:
      fields:
        Key__c: id
`,
	})
	out, err := runCLI(t, "mapping", "test", "-c", filepath.Join(dir, "hub.yaml"))
	require.ErrorIs(t, err, errTestsFailed, out)
	testFile := filepath.Join(dir, "status.test.yaml")
	assert.Contains(t, out, testFile+" (status.yaml, sync file)\n  PASS active member\n  FAIL suspended member ("+testFile+":5)\n"+
		"      MemberStatus: want \"Active\", got \"Inactive\"\n      Tier__c: missing (want \"Gold\")\n")
	assert.Contains(t, out, filepath.Join(dir, "status-edge.test.yaml")+" (status.yaml, sync file)\n  PASS unknown status\n")
	assert.Contains(t, out, filepath.Join(dir, "hub.inline.test.yaml")+" (inline mapping, sync inline)\n  PASS inline\n")
	assert.Contains(t, out, "sync untested: no tests for its inline mapping (write them in "+filepath.Join(dir, "hub.untested.test.yaml")+")")
	assert.Contains(t, out, "3 passed, 1 failed (3 test file(s))")

	// --sync runs one sync's tests only.
	out, err = runCLI(t, "mapping", "test", "-c", filepath.Join(dir, "hub.yaml"), "--sync", "inline")
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 passed, 0 failed (1 test file(s))")

	// A test file that cannot be read as tests fails too, with its problems.
	bad := filepath.Join(dir, "broken.test.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("mapping: status.yaml\ncases:\n  - name: x\n    data: {id: M1}\n    wnat: {}\n"), 0o600))
	out, err = runCLI(t, "mapping", "test", bad)
	require.ErrorIs(t, err, errTestsFailed, out)
	assert.Contains(t, out, "BROKEN")
	assert.Contains(t, out, bad+":5:5: cases[0].wnat")
}

func TestMappingTestInput(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"event.json": `{"specversion":"1.0","id":"evt-1","source":"urn:ledger","type":"loyalty.member.upserted",
			"subject":"M-000001","time":"2026-01-05T10:00:00Z","data":{"id":"M-000001","version":3,"email":"ada@example.com",
			"tier":"gold","status":"active","points_balance":120,"first_name":"Ada","last_name":"Lovelace","enrolled_at":"2026-01-01T00:00:00Z"}}`,
		"data.json":    `{"id":"M-000001","version":3,"email":"ada@example.com","tier":"gold","status":"active","points_balance":120,"enrolled_at":"2026-01-01T00:00:00Z"}`,
		"bad.json":     `{"id":"M-000002","version":1,"status":"active","tier":"diamond","enrolled_at":"2026-01-01T00:00:00Z"}`,
		"segment.json": `{"specversion":"1.0","id":"evt-s","source":"urn:ledger","type":"loyalty.segment.membership.changed","subject":"S1","time":"2026-04-01T06:00:00Z","data":{"segment_id":"S1","version":4,"added":["M1","M2"],"removed":["M3"]}}`,
		"hub.yaml": fmt.Sprintf(`sources: {ledger: {insecure: true}}
connectors:
  crm: {type: salesforce, config: {client_id: x, client_secret: y}}
syncs:
  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: %s
  segments:
    from: ledger.segment
    to: crm
    object: Segment_Member__c
    external_id: SegmentMemberKey
    mapping: %s
`, exampleMapping(t, "member-to-lpm.yaml"), exampleMapping(t, "segment-to-de.yaml")),
	})
	cfg := filepath.Join(dir, "hub.yaml")
	want := `{
  "Ledger_Member_Id__c": "M-000001",
  "MembershipNumber": "M-000001",
  "ProgramId": "0lpEm0000000001IAA",
  "MemberType": "Individual",
  "MemberStatus": "Active",
  "Tier__c": "Gold",
  "Points_Balance__c": 120,
  "EnrollmentDate": "2026-01-01",
  "Email__c": "ada@example.com",
  "Ledger_Version__c": 3
}
`
	for _, in := range []string{"event.json", "data.json"} {
		out, err := runCLI(t, "mapping", "test", "-c", cfg, "--sync", "members-to-crm", "--input", filepath.Join(dir, in))
		require.NoError(t, err, out)
		assert.Equal(t, want, out, in)
	}

	out, err := runCLI(t, "mapping", "test", "-c", cfg, "--sync", "members-to-crm", "--input", filepath.Join(dir, "bad.json"))
	require.ErrorIs(t, err, errMappingFailed)
	js, _, _ := strings.Cut(out, "\n}\n")
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(js+"}"), &rec), out)
	assert.Equal(t, "Tier__c", rec["field"])
	assert.Contains(t, rec["error"], `value "diamond" is not in the map`)

	out, err = runCLI(t, "mapping", "test", "-c", cfg, "--sync", "segments", "--input", filepath.Join(dir, "segment.json"))
	require.NoError(t, err, out)
	var recs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &recs), out)
	require.Len(t, recs, 3)
	assert.Equal(t, map[string]any{"key": "S1:M1", "SegmentId": "S1", "MembershipNumber": "M1", "SegmentMemberKey": "S1:M1",
		"Joined": true, "Joined_At": "2026-04-01T06:00:00.000Z", "Segment_Version": float64(4)}, recs[0])
	assert.Equal(t, "S1:M2", recs[1]["key"])
	assert.Equal(t, map[string]any{"key": "S1:M3", "delete": true}, recs[2])

	_, err = runCLI(t, "mapping", "test", "-c", cfg, "--input", filepath.Join(dir, "data.json"))
	assert.ErrorContains(t, err, "--sync is required: the config has 2 syncs: members-to-crm, segments")
	_, err = runCLI(t, "mapping", "test", "-c", cfg, "--sync", "segments", "--input", filepath.Join(dir, "event.json"))
	assert.ErrorContains(t, err, "a member event (loyalty.member.upserted), but sync segments reads segment events")
}

type previewJSON struct {
	From    string `json:"from"`
	EventID string `json:"event_id"`
	Version *int64 `json:"version"`
	Guard   *struct {
		Version int64  `json:"version"`
		State   string `json:"state"`
		EventID string `json:"event_id"`
	} `json:"guard"`
	Why      string `json:"why"`
	Action   string `json:"action"`
	Found    *bool  `json:"found"`
	TargetID string `json:"target_id"`
	Error    string `json:"error"`
	Fields   []struct {
		Field   string `json:"field"`
		Current any    `json:"current"`
		Mapped  any    `json:"mapped"`
		Changed *bool  `json:"changed"`
		Note    string `json:"note"`
	} `json:"fields"`
}

func TestMappingPreviewAgainstTheEmulator(t *testing.T) {
	srv, writes := startEmulator(t)
	cfg := writeConfig(t, srv.URL(), fmt.Sprintf(`  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: %s
  transactions-to-crm:
    from: ledger.transaction
    to: crm
    object: TransactionJournal
    external_id: ExternalTransactionNumber
    mapping: %s
`, exampleMapping(t, "member-to-lpm.yaml"), exampleMapping(t, "transaction-to-journal.yaml")))
	dir := filepath.Dir(cfg)
	event := filepath.Join(dir, "event.json")
	require.NoError(t, os.WriteFile(event, []byte(`{"specversion":"1.0","id":"evt-1","source":"urn:ledger",
		"type":"loyalty.member.upserted","subject":"M-000001","data":{"id":"M-000001","version":3,"email":"ada@example.com",
		"tier":"gold","status":"active","points_balance":120,"enrolled_at":"2026-01-01T00:00:00Z"}}`), 0o600))
	preview := func(args ...string) (previewJSON, string) {
		t.Helper()
		out, err := runCLI(t, append([]string{"mapping", "preview", "-c", cfg, "--json"}, args...)...)
		require.NoError(t, err, out)
		var p previewJSON
		require.NoError(t, json.Unmarshal([]byte(out), &p), out)
		return p, out
	}

	// No record yet: the upsert would create it.
	p, out := preview("--sync", "members-to-crm", "--input", event)
	assert.Equal(t, "create", p.Action, out)
	require.NotNil(t, p.Found)
	assert.False(t, *p.Found)
	require.Len(t, p.Fields, 10)
	for _, f := range p.Fields {
		assert.True(t, *f.Changed, f.Field)
	}

	// The CRM holds an older state of the member.
	id, err := srv.Insert("LoyaltyProgramMember", map[string]any{"Ledger_Member_Id__c": "M-000001", "MembershipNumber": "M-000001",
		"ProgramId": sfemu.DefaultProgramID, "MemberStatus": "Inactive", "Tier__c": "Silver", "Points_Balance__c": 80,
		"EnrollmentDate": "2026-01-01", "Email__c": "ada@example.com", "Ledger_Version__c": 2})
	require.NoError(t, err)
	before := writes.Load()
	p, out = preview("--sync", "members-to-crm", "--input", event, "--key", "M-000001")
	assert.Equal(t, "update", p.Action, out)
	assert.True(t, *p.Found)
	assert.Equal(t, id, p.TargetID)
	changed := map[string]bool{}
	for _, f := range p.Fields {
		require.NotNil(t, f.Changed, f.Field)
		changed[f.Field] = *f.Changed
		if f.Field == "ProgramId" {
			assert.Equal(t, "create-only: left out of updates", f.Note)
		}
		if f.Field == "Points_Balance__c" {
			assert.Equal(t, float64(80), f.Current)
			assert.Equal(t, float64(120), f.Mapped)
		}
	}
	assert.Equal(t, map[string]bool{"Ledger_Member_Id__c": false, "MembershipNumber": false, "ProgramId": false, "MemberType": false,
		"MemberStatus": true, "Tier__c": true, "Points_Balance__c": true, "EnrollmentDate": false, "Email__c": false,
		"Ledger_Version__c": true}, changed)
	assert.Equal(t, before, writes.Load(), "preview writes nothing")
	rec, _ := srv.Get("LoyaltyProgramMember", id)
	assert.Equal(t, "Silver", rec["Tier__c"], "the record is unchanged")

	// The table says the same for people.
	out, err = runCLI(t, "mapping", "preview", "-c", cfg, "--sync", "members-to-crm", "--input", event)
	require.NoError(t, err, out)
	assert.Contains(t, out, "the target holds the record: "+id+"\nthe sync would update the record: 4 of 10 field(s) change; nothing was written\n")
	assert.Regexp(t, `\nTier__c +"Silver" +"Gold" +yes\n`, out)
	assert.Regexp(t, `\nProgramId +"0lpEm0000000001IAA" +"0lpEm0000000001IAA" +no \(create-only: left out of updates\)\n`, out)

	// A transaction whose member lookup resolves through --xref.
	tx := filepath.Join(dir, "tx.json")
	require.NoError(t, os.WriteFile(tx, []byte(`{"id":"T-1","version":1,"member_id":"M-000001","status":"posted","amount":10,"occurred_at":"2026-03-02T09:00:00Z"}`), 0o600))
	p, out = preview("--sync", "transactions-to-crm", "--input", tx, "--key", "T-1", "--xref", "crm/LoyaltyProgramMember/M-000001="+id)
	assert.Equal(t, "create", p.Action, out)
	assert.Contains(t, out, `"mapped": "`+id+`"`)
	// Without it, the lookup cannot resolve: the sync would retry, and
	// preview says so (and exits non-zero).
	out, err = runCLI(t, "mapping", "preview", "-c", cfg, "--sync", "transactions-to-crm", "--input", tx, "--key", "T-1")
	require.ErrorIs(t, err, errMappingFailed)
	assert.Contains(t, out, "cross-reference has no entry yet")
	assert.Contains(t, out, "the sync retries the record")

	// A deleted event deletes.
	del := filepath.Join(dir, "deleted.json")
	require.NoError(t, os.WriteFile(del, []byte(`{"specversion":"1.0","id":"evt-2","source":"urn:ledger","type":"loyalty.member.deleted","subject":"M-000001","data":{"version":4}}`), 0o600))
	p, out = preview("--sync", "members-to-crm", "--input", del)
	assert.Equal(t, "delete", p.Action, out)
	assert.Equal(t, before, writes.Load(), "preview writes nothing")

	_, err = runCLI(t, "mapping", "preview", "-c", cfg, "--sync", "members-to-crm")
	assert.ErrorContains(t, err, "give --key ID (the newest event for that key in the running hub's bus) or --input EVENT.json")
	_, err = runCLI(t, "mapping", "preview", "-c", cfg, "--sync", "members-to-crm", "--input", event, "--key", "M-2")
	assert.ErrorContains(t, err, `the event is for subject "M-000001", not --key "M-2"`)
}

// A connector that implements no RecordGetter (the geooffers vendor plugin)
// cannot be previewed against, and says so.
func TestMappingPreviewOfAConnectorThatCannotReadRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the geooffers plugin")
	}
	geo, sum := buildGeoOffers(t)
	dir := writeFiles(t, map[string]string{
		"event.json": `{"specversion":"1.0","id":"evt-1","source":"urn:ledger","type":"loyalty.member.upserted","subject":"M1","data":{"id":"M1","version":1}}`,
		"hub.yaml": fmt.Sprintf(`sources: {ledger: {insecure: true}}
connectors:
  geo:
    type: plugin:geooffers
    plugin: {path: %q, sha256: %s}
    config: {base_url: "http://127.0.0.1:1", api_key: k}
syncs:
  members-to-geo:
    from: ledger.member
    to: geo
    object: members
    external_id: external_id
    mapping:
      fields:
        external_id: id
`, geo, sum),
	})
	_, err := runCLI(t, "mapping", "preview", "-c", filepath.Join(dir, "hub.yaml"), "--input", filepath.Join(dir, "event.json"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connector geo (plugin:geooffers) cannot read records")
	assert.Contains(t, err.Error(), "this connector cannot read records")
}

func TestPreviewComparesAsTheTargetStores(t *testing.T) {
	cases := []struct {
		cur, mapped any
		same        bool
	}{
		{float64(120), int64(120), true},
		{int64(120), 120.5, false},
		{float64(120), "120", true},
		{"007", "7", false},
		{"2024-05-01T10:00:00.000+0000", "2024-05-01T10:00:00.000Z", true},
		{"2024-05-01T10:00:00.000+0000", "2024-05-01T11:00:00.000Z", false},
		{"2024-05-01", "2024-05-01", true},
		{nil, nil, true},
		{nil, "x", false},
		{true, true, true},
		{"Gold", "gold", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.same, sameValue(c.cur, c.mapped), "%#v vs %#v", c.cur, c.mapped)
	}
}
