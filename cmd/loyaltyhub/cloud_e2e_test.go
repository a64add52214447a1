package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud"
	dcemu "github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud"
	mcemu "github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
	"github.com/loyaltyhub/loyaltyhub/plugins/conformance"
)

// TestEndToEndSegmentsToMarketingCloud runs the hub process with the example
// config's segment sync against the Marketing Cloud emulator: three rounds
// of tier segment changes, sent with a duplicate and an out-of-order
// delivery, while the emulator throttles and fails some calls. The data
// extension must end with one row per membership ever seen, Joined true
// exactly for the current members, each row written by the newest change
// that touched it.
func TestEndToEndSegmentsToMarketingCloud(t *testing.T) {
	emu, err := mcemu.New(mcemu.DefaultConfig())
	require.NoError(t, err)
	_, err = emu.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = emu.Close() })
	_, err = emu.AddFault(mcemu.Fault{Kind: mcemu.FaultTooManyRequests, Count: 3, Operations: []string{"rowset.upsert"}})
	require.NoError(t, err)
	_, err = emu.AddFault(mcemu.Fault{Kind: mcemu.FaultServerError, Count: 2, Operations: []string{"rowset.upsert"}})
	require.NoError(t, err)

	mapping, err := filepath.Abs("../../config/mappings/segment-to-de.yaml")
	require.NoError(t, err)
	h := newBareHub(t)
	h.writeConfig(fmt.Sprintf(`data_dir: %s
http: {listen: %q}
progress: {interval: 1s}
sources:
  ledger: {insecure: true}
connectors:
  mc:
    type: marketingcloud
    config:
      auth_url: %q
      client_id: %s
      client_secret: %s
      batch_size: 40
      data_extensions:
        Loyalty_Segment_Members: {primary_keys: [SegmentId, MembershipNumber]}
syncs:
  segments-to-mc:
    from: ledger.segment
    to: mc
    object: Loyalty_Segment_Members
    external_id: SegmentMemberKey
    removals: write
    mapping: %q
    batch: {size: 200, window: 50ms}
    retry: {max_attempts: 20, initial_interval: 50ms, max_interval: 1s}
`, filepath.Join(h.dir, "data"), h.addr, emu.URL(), mcemu.DefaultConfig().ClientID, mcemu.DefaultConfig().ClientSecret, mapping))
	h.start()

	// Three rounds of member changes; after each, the tier segments.
	var segs ledgeremu.Segments
	var changes []ledgeremu.SegmentEvent
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for round := range 3 {
		plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 120, Events: 400, Seed: uint64(round + 1)})
		changes = append(changes, segs.Update(plan.Newest, start.Add(time.Duration(round)*time.Hour))...)
	}
	require.Len(t, changes, 12, "four tier segments change in each of three rounds")

	// What the data extension must hold: per membership, the newest change
	// touching it.
	type want struct {
		joined  bool
		version int64
	}
	expected := map[string]want{}
	for _, c := range changes {
		for _, m := range c.Data.Added {
			expected[c.Subject+":"+m] = want{true, c.Data.Version}
		}
		for _, m := range c.Data.Removed {
			expected[c.Subject+":"+m] = want{false, c.Data.Version}
		}
	}

	// Deliveries: the first round's gold change twice (a redelivery, same
	// id) and once more published again under a new id (the same version:
	// skipped as a duplicate), and the last round before the second (out
	// of order: the second round's changes still apply to the memberships
	// the third round did not touch).
	again := changes[2]
	again.ID += "-republished"
	deliveries := append([]ledgeremu.SegmentEvent{}, changes[:4]...)
	deliveries = append(deliveries, changes[2], again)
	deliveries = append(deliveries, changes[8:]...)
	deliveries = append(deliveries, changes[4:8]...)
	sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 3}
	require.NoError(t, sender.SendSegments(context.Background(), deliveries))

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rows := emu.Rows("Loyalty_Segment_Members")
		require.Equal(c, len(expected), len(rows), "rows")
		for _, r := range rows {
			key := r["SegmentId"] + ":" + r["MembershipNumber"]
			w, ok := expected[key]
			require.True(c, ok, "unexpected row %s", key)
			require.Equal(c, map[bool]string{true: "True", false: "False"}[w.joined], r["Joined"], "row %s", key)
			require.Equal(c, strconv.FormatInt(w.version, 10), r["Segment_Version"], "row %s", key)
		}
	}, 60*time.Second, 100*time.Millisecond, "the data extension holds every membership, newest change first")

	// Every distinct event ends applied or skipped, none dead-lettered.
	var counts store.Counts
	require.Eventually(t, func() bool {
		counts = checkSegmentOutcomes(t, h.dir)
		return counts.Applied+counts.Skipped+counts.Dead == 13
	}, 30*time.Second, 100*time.Millisecond, "outcomes of 13 distinct events")
	assert.Equal(t, store.Counts{Applied: 12, Skipped: 1}, counts, "the republished change is a duplicate")
	calls := emu.Calls()
	assert.Greater(t, calls["rowset.upsert"], 5, "the faults were met and retried: %v", calls)
}

// checkSegmentOutcomes reads the segment sync's outcome counts from the
// hub's SQLite state store.
func checkSegmentOutcomes(t *testing.T, dir string) store.Counts {
	return checkSyncOutcomes(t, dir, "segments-to-mc")
}

// checkSyncOutcomes reads a sync's outcome counts from the hub's SQLite
// state store.
func checkSyncOutcomes(t *testing.T, dir, sync string) store.Counts {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "data", "state.db"), nil)
	require.NoError(t, err)
	defer st.Close()
	c, err := st.Counts(context.Background(), sync)
	require.NoError(t, err)
	return c
}

// TestMarketingCloudConnectorConformance runs the plugin conformance kit
// against the built-in Marketing Cloud connector, served as the hub serves
// it (`loyaltyhub connector serve marketingcloud`), with the emulator behind.
func TestMarketingCloudConnectorConformance(t *testing.T) {
	emu, err := mcemu.New(mcemu.DefaultConfig())
	require.NoError(t, err)
	url, err := emu.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = emu.Close() })
	t.Setenv("MC_AUTH_URL", url)
	t.Setenv("MC_CLIENT_ID", mcemu.DefaultConfig().ClientID)
	t.Setenv("MC_CLIENT_SECRET", mcemu.DefaultConfig().ClientSecret)
	fx, err := conformance.LoadFixture("../../connectors/marketingcloud/conformance.json")
	require.NoError(t, err)

	rep := conformance.Run(context.Background(), hubBinary, conformance.Options{
		Args: []string{"connector", "serve", "marketingcloud"}, Fixture: fx, CallTimeout: 30 * time.Second})
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Log("\n" + out.String())
	assert.False(t, rep.Failed())
	assert.Zero(t, rep.Count(conformance.Fail))
	// The writes reached the emulator: the good rows and the large batch.
	assert.Len(t, emu.Rows("Loyalty_Segment_Members"), 3)
	assert.Len(t, emu.Rows("Loyalty_Members"), 2+marketingcloud.MaxBatch)
}

// TestDataCloudConnectorConformance runs the plugin conformance kit against
// the built-in Data Cloud connector, served as the hub serves it.
func TestDataCloudConnectorConformance(t *testing.T) {
	emu, err := dcemu.New(dcemu.DefaultConfig())
	require.NoError(t, err)
	url, err := emu.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = emu.Close() })
	t.Setenv("DC_LOGIN_URL", url)
	t.Setenv("DC_CLIENT_ID", dcemu.DefaultClientID)
	t.Setenv("DC_CLIENT_SECRET", dcemu.DefaultClientSecret)
	fx, err := conformance.LoadFixture("../../connectors/datacloud/conformance.json")
	require.NoError(t, err)

	rep := conformance.Run(context.Background(), hubBinary, conformance.Options{
		Args: []string{"connector", "serve", "datacloud"}, Fixture: fx, CallTimeout: 30 * time.Second})
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Log("\n" + out.String())
	assert.False(t, rep.Failed())
	emu.Flush()
	assert.Len(t, emu.Records("loyalty_members"), 2+datacloud.MaxBatch)
	assert.Len(t, emu.Records("loyalty_transactions"), 1)
}

// TestEndToEndTransactionsWaitForTheirMember: transactions that arrive
// before their member are retried until the member's LoyaltyProgramMember
// is written, then linked to it through the cross-reference; nothing is
// dead-lettered.
func TestEndToEndTransactionsWaitForTheirMember(t *testing.T) {
	o := startOrg(t)
	lpmMapping, err := filepath.Abs("../../config/mappings/member-to-lpm.yaml")
	require.NoError(t, err)
	txMapping, err := filepath.Abs("../../config/mappings/transaction-to-journal.yaml")
	require.NoError(t, err)
	h := newBareHub(t)
	h.writeConfig(fmt.Sprintf(`data_dir: %s
http: {listen: %q}
sources:
  ledger: {insecure: true}
connectors:
  crm:
    type: salesforce
    config: {login_url: %q, client_id: %s, client_secret: %s}
syncs:
  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: %q
  transactions-to-crm:
    from: ledger.transaction
    to: crm
    object: TransactionJournal
    external_id: ExternalTransactionNumber
    mapping: %q
    retry: {max_attempts: 1000, initial_interval: 50ms, max_interval: 500ms}
`, filepath.Join(h.dir, "data"), h.addr, o.URL(), sfemu.DefaultClientID, sfemu.DefaultClientSecret, lpmMapping, txMapping))
	h.start()

	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 50, Events: 50, Seed: 3})
	members := make([]string, 0, len(plan.Newest))
	for id := range plan.Newest {
		members = append(members, id)
	}
	txns := ledgeremu.NewTransactions(members, 120, 0, 3, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 50}
	require.NoError(t, sender.SendTransactions(context.Background(), txns)) // before any member
	time.Sleep(500 * time.Millisecond)
	assert.Empty(t, o.Records("TransactionJournal"), "no member yet: the transactions wait")
	require.NoError(t, sender.Send(context.Background(), plan.Deliveries, nil))

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.Len(c, o.Records("TransactionJournal"), len(txns))
	}, 60*time.Second, 100*time.Millisecond)
	lpmOf := map[string]string{} // ledger member id → LoyaltyProgramMember Id
	for _, r := range o.Records(lpm) {
		lpmOf[r[extID].(string)] = r["Id"].(string)
	}
	byNumber := map[string]map[string]any{}
	for _, r := range o.Records("TransactionJournal") {
		byNumber[r["ExternalTransactionNumber"].(string)] = r
	}
	for _, tx := range txns {
		r := byNumber[tx.Data.ID]
		require.NotNil(t, r, tx.Data.ID)
		assert.Equal(t, lpmOf[tx.Data.MemberID], r["MemberId"], "transaction %s is linked to its member's record", tx.Data.ID)
	}
	c := checkSyncOutcomes(t, h.dir, "transactions-to-crm")
	assert.Equal(t, store.Counts{Applied: int64(len(txns))}, c)
}
