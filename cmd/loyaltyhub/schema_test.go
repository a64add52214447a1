package main

// `loyaltyhub validate` checks mappings against the Salesforce emulator's
// describe, through the real connector process (the test binary serves it).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

// startEmulator starts a Salesforce emulator and counts the writes it takes.
func startEmulator(t *testing.T) (*sfemu.Server, *atomic.Int64) {
	t.Helper()
	writes := new(atomic.Int64)
	cfg := sfemu.DefaultConfig()
	cfg.OnWrite = func(string, string, map[string]any) { writes.Add(1) }
	srv, err := sfemu.New(cfg)
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, writes
}

// exampleMapping is the absolute path of a mapping in config/mappings.
func exampleMapping(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("../../config/mappings", name))
	require.NoError(t, err)
	return p
}

// writeConfig writes a config whose crm connector is the emulator at url,
// with the syncs given as YAML (indented under syncs:).
func writeConfig(t *testing.T, url, syncs string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	body := fmt.Sprintf(`data_dir: %s
sources:
  ledger: {insecure: true}
connectors:
  crm:
    type: salesforce
    config:
      login_url: %s
      client_id: %s
      client_secret: %s
syncs:
%s`, filepath.Join(dir, "data"), url, sfemu.DefaultClientID, sfemu.DefaultClientSecret, syncs)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestValidateChecksTheExampleMappingsAgainstTheEmulator(t *testing.T) {
	srv, writes := startEmulator(t)
	cfg := writeConfig(t, srv.URL(), fmt.Sprintf(`  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: %s
  members-to-contacts:
    from: ledger.member
    to: crm
    object: Contact
    external_id: Ledger_Member_Id__c
    mapping: %s
  transactions-to-crm:
    from: ledger.transaction
    to: crm
    object: TransactionJournal
    external_id: ExternalTransactionNumber
    mapping: %s
  vouchers-to-crm:
    from: ledger.voucher
    to: crm
    object: Voucher
    external_id: Ledger_Voucher_Id__c
    mapping: %s
`, exampleMapping(t, "member-to-lpm.yaml"), exampleMapping(t, "member-to-contact.yaml"),
		exampleMapping(t, "transaction-to-journal.yaml"), exampleMapping(t, "voucher-to-crm.yaml")))

	out, err := runCLI(t, "validate", "-c", cfg)
	require.NoError(t, err, out)
	assert.Contains(t, out, "4 of 4 mapping(s) checked against the targets' schemas")
	assert.Equal(t, int64(0), writes.Load(), "validate never writes")
	assert.Positive(t, srv.Stats().Calls["describe"], "the objects were described by the emulator")
}

func TestValidateReportsSchemaProblems(t *testing.T) {
	srv, _ := startEmulator(t)
	cfg := writeConfig(t, srv.URL(), `  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping:
      fields:
        Ledger_Member_Id__c: {from: id, required: true}
        MembershipNumbr: {from: id, required: true}
        ProgramId: {value: "0lpEm0000000001IAA"}
        EnrollmentDate: {from: enrolled_at, transform: [date], required: true}
        MemberStatus: {from: status, map: {active: Active, closed: Closed}}
  status-only:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    mode: update
    mapping:
      fields:
        ProgramId: {value: "0lpEm0000000001IAA"}
        MemberStatus: {value: Inactive}
  journals:
    from: ledger.transaction
    to: crm
    object: TransactionJournals
    external_id: ExternalTransactionNumber
    mapping: {fields: {ExternalTransactionNumber: id}}
`)
	out, err := runCLI(t, "validate", "-c", cfg)
	require.Error(t, err)
	lines := problemLines(out, cfg)
	assert.Equal(t, []string{
		"hub.yaml:18:7: syncs.members-to-crm.mapping.fields: required field `MembershipNumber` of LoyaltyProgramMember is not mapped; add `MembershipNumber:` to `fields`",
		"hub.yaml:20:9: syncs.members-to-crm.mapping.fields.MembershipNumbr: unknown field `MembershipNumbr` on LoyaltyProgramMember; did you mean `MembershipNumber`?",
		"hub.yaml:23:60: syncs.members-to-crm.mapping.fields.MemberStatus: the map value for `closed` \"Closed\" is not a value of the picklist `MemberStatus`; valid values: `Active`, `Inactive`, `Custom`",
		"hub.yaml:31:9: syncs.status-only.mapping.fields.ProgramId: `ProgramId` of LoyaltyProgramMember is not updateable, so an update cannot write it; remove the field or change the sync's operation",
	}, lines[:4], out)
	require.Len(t, lines, 5, out)
	assert.True(t, strings.HasPrefix(lines[4], `hub.yaml:33:3: syncs.journals.object: crm cannot describe "TransactionJournals": `), lines[4])
	assert.Contains(t, lines[4], "does not exist")
	// ProgramId is create-only: fine for the upsert (the connector leaves it
	// out of updates), refused only for the update sync.
	assert.Equal(t, 1, strings.Count(out, "`ProgramId`"), out)
}

func TestValidateReportsAnUnreachableConnector(t *testing.T) {
	url := "http://" + freeAddr(t) // nothing listens there
	cfg := writeConfig(t, url, fmt.Sprintf(`  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: %s
`, exampleMapping(t, "member-to-lpm.yaml")))

	out, err := runCLI(t, "validate", "-c", cfg)
	require.Error(t, err)
	lines := problemLines(out, cfg)
	require.Len(t, lines, 1, out)
	assert.True(t, strings.HasPrefix(lines[0], "hub.yaml:5:3: connectors.crm: cannot check the mappings of sync members-to-crm against it: describing LoyaltyProgramMember: "), lines[0])
	assert.Contains(t, lines[0], "connection refused")
	assert.Contains(t, lines[0], "or run validate with --offline")

	out, err = runCLI(t, "validate", "--offline", "-c", cfg)
	require.NoError(t, err, out)
	assert.Contains(t, out, "offline: mappings not checked against the targets")
}

// problemLines returns the lines of out that name the config file, with its
// directory cut off.
func problemLines(out, cfg string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, cfg+":") {
			lines = append(lines, strings.TrimPrefix(l, filepath.Dir(cfg)+string(filepath.Separator)))
		}
	}
	return lines
}
