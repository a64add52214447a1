package marketingcloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud"
	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
)

// startEmulator runs the Marketing Cloud emulator with its default data
// extensions and returns it with a connector configured against it.
func startEmulator(t *testing.T, extra string) (*emulator.Server, *marketingcloud.Connector) {
	t.Helper()
	emu, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	url, err := emu.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = emu.Close() })
	c := marketingcloud.New(nil)
	t.Cleanup(func() { _ = c.Close() })
	cfg := fmt.Sprintf(`{"auth_url":%q,"client_id":"loyaltyhub-emulator","client_secret":"emulator-secret",
		"data_extensions":{"Loyalty_Segment_Members":{"primary_keys":["SegmentId","MembershipNumber"]}}%s}`, url, extra)
	require.NoError(t, c.Configure(context.Background(), json.RawMessage(cfg)))
	return emu, c
}

func segmentRecord(segment, member string, joined bool) connectors.Record {
	return connectors.Record{Key: segment + ":" + member, Fields: map[string]any{
		"SegmentId": segment, "MembershipNumber": member, "SegmentMemberKey": segment + ":" + member,
		"Joined": joined, "Joined_At": "2026-04-01T06:00:00.000Z", "Segment_Version": int64(3),
	}}
}

func upsert(object string, recs ...connectors.Record) connectors.WriteRequest {
	return connectors.WriteRequest{Object: object, Operation: connectors.Upsert, ExternalIDField: "SegmentMemberKey", Records: recs}
}

func statuses(rs []connectors.Result) []connectors.Status {
	out := make([]connectors.Status, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}

func TestWriteUpsertsRowsByCompositeKey(t *testing.T) {
	emu, c := startEmulator(t, "")
	ctx := context.Background()
	require.NoError(t, c.Check(ctx))

	resp, err := c.Write(ctx, upsert("Loyalty_Segment_Members",
		segmentRecord("VIP", "M-1", true), segmentRecord("VIP", "M-2", true), segmentRecord("LAPSED", "M-1", true)))
	require.NoError(t, err)
	assert.Equal(t, []connectors.Status{connectors.StatusApplied, connectors.StatusApplied, connectors.StatusApplied}, statuses(resp.Results))
	assert.Equal(t, 1, resp.Calls)
	assert.Equal(t, "SegmentId:VIP;MembershipNumber:M-1", resp.Results[0].TargetID, "a row is known by its primary key")

	// M-1 leaves VIP: written as a row, the same primary key.
	resp, err = c.Write(ctx, upsert("Loyalty_Segment_Members", segmentRecord("VIP", "M-1", false)))
	require.NoError(t, err)
	assert.Equal(t, connectors.StatusApplied, resp.Results[0].Status)

	rows := emu.Rows("Loyalty_Segment_Members")
	require.Len(t, rows, 3, "an upsert by primary key, not a new row")
	byKey := map[string]map[string]string{}
	for _, r := range rows {
		byKey[r["SegmentId"]+":"+r["MembershipNumber"]] = r
	}
	assert.Equal(t, "False", byKey["VIP:M-1"]["Joined"])
	assert.Equal(t, "True", byKey["VIP:M-2"]["Joined"])
	assert.Equal(t, "3", byKey["LAPSED:M-1"]["Segment_Version"])
	assert.Equal(t, 1, emu.Calls()["auth"], "one token for every call")
}

func TestWriteSplitsIntoRowsetCalls(t *testing.T) {
	emu, c := startEmulator(t, `,"batch_size":20`)
	var recs []connectors.Record
	for i := range 45 {
		recs = append(recs, segmentRecord("VIP", fmt.Sprintf("M-%03d", i), true))
	}
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", recs...))
	require.NoError(t, err)
	assert.Equal(t, 3, resp.Calls, "45 rows, 20 a call")
	assert.Len(t, emu.Rows("Loyalty_Segment_Members"), 45)
	assert.Equal(t, 3, emu.Calls()["rowset.upsert"])
}

// A rowset is all or nothing: the connector halves a refused call until the
// bad row is alone, so the others are written and the bad one refused with
// Marketing Cloud's message.
func TestWriteIsolatesTheBadRow(t *testing.T) {
	emu, c := startEmulator(t, "")
	var recs []connectors.Record
	for i := range 8 {
		recs = append(recs, segmentRecord("VIP", fmt.Sprintf("M-%d", i), true))
	}
	recs[5].Fields["Segment_Version"] = "three" // not a Number
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", recs...))
	require.NoError(t, err)
	for i, r := range resp.Results {
		if i == 5 {
			assert.Equal(t, connectors.StatusPermanent, r.Status)
			assert.Contains(t, r.Message, "Segment_Version")
			continue
		}
		assert.Equal(t, connectors.StatusApplied, r.Status, "record %d: %s", i, r.Message)
	}
	assert.Len(t, emu.Rows("Loyalty_Segment_Members"), 7)
	assert.Equal(t, 7, resp.Calls, "1 refused call of 8, then 4+4, 2+2, 1+1")
}

func TestWriteRefusesRecordsItCannotRow(t *testing.T) {
	emu, c := startEmulator(t, "")
	noKey := segmentRecord("VIP", "M-1", true)
	delete(noKey.Fields, "MembershipNumber")
	nested := segmentRecord("VIP", "M-2", true)
	nested.Fields["Program__r"] = map[string]any{"Ext_Id__c": "P-1"}
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", noKey, nested, segmentRecord("VIP", "M-3", true)))
	require.NoError(t, err)
	assert.Equal(t, []connectors.Status{connectors.StatusPermanent, connectors.StatusPermanent, connectors.StatusApplied}, statuses(resp.Results))
	assert.Contains(t, resp.Results[0].Message, "primary key column MembershipNumber of data extension Loyalty_Segment_Members has no value: map MembershipNumber")
	assert.Contains(t, resp.Results[1].Message, "column Program__r: data extension columns hold text, numbers, booleans and dates, not an object")
	assert.Len(t, emu.Rows("Loyalty_Segment_Members"), 1)
}

// A data extension not listed in the config has the sync's external id as
// its primary key; a record without that field gives Record.Key.
func TestWriteDefaultPrimaryKeyIsTheExternalID(t *testing.T) {
	emu, c := startEmulator(t, "")
	resp, err := c.Write(context.Background(), connectors.WriteRequest{Object: "Loyalty_Members", Operation: connectors.Upsert,
		ExternalIDField: "MembershipNumber", Records: []connectors.Record{
			{Key: "M-1", Fields: map[string]any{"Email": "ann@example.com", "Tier": "Gold", "PointsBalance": 1200.5}},
			{Key: "M-2", Fields: map[string]any{"MembershipNumber": "M-2", "Tier": "Silver"}},
		}})
	require.NoError(t, err)
	assert.Equal(t, []connectors.Status{connectors.StatusApplied, connectors.StatusApplied}, statuses(resp.Results))
	assert.Equal(t, "MembershipNumber:M-1", resp.Results[0].TargetID)
	rows := emu.Rows("Loyalty_Members")
	require.Len(t, rows, 2)
	assert.Equal(t, "M-1", rows[0]["MembershipNumber"])
	assert.Equal(t, "Gold", rows[0]["Tier"])
	assert.Equal(t, "Silver", rows[1]["Tier"])
}

func TestWriteRenewsAnExpiredToken(t *testing.T) {
	emu, c := startEmulator(t, "")
	ctx := context.Background()
	_, err := c.Write(ctx, upsert("Loyalty_Segment_Members", segmentRecord("VIP", "M-1", true)))
	require.NoError(t, err)
	emu.ExpireTokens()
	resp, err := c.Write(ctx, upsert("Loyalty_Segment_Members", segmentRecord("VIP", "M-2", true)))
	require.NoError(t, err)
	assert.Equal(t, connectors.StatusApplied, resp.Results[0].Status)
	assert.Equal(t, 2, resp.Calls, "the refused call and its replay")
	assert.Equal(t, 2, emu.Calls()["auth"])
}

func TestWriteRetriesWhenThrottled(t *testing.T) {
	emu, c := startEmulator(t, "")
	_, err := emu.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 1})
	require.NoError(t, err)
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", segmentRecord("VIP", "M-1", true), segmentRecord("VIP", "M-2", true)))
	require.NoError(t, err)
	for _, r := range resp.Results {
		assert.Equal(t, connectors.StatusRetryable, r.Status)
		assert.Equal(t, time.Second, r.RetryAfter)
		assert.Equal(t, "50100", r.Code)
	}
	assert.Empty(t, emu.Rows("Loyalty_Segment_Members"))
}

func TestWriteFailsWholeOnServerError(t *testing.T) {
	emu, c := startEmulator(t, "")
	_, err := emu.AddFault(emulator.Fault{Kind: emulator.FaultServerError, Count: 1})
	require.NoError(t, err)
	_, err = c.Write(context.Background(), upsert("Loyalty_Segment_Members", segmentRecord("VIP", "M-1", true)))
	require.Error(t, err)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err))
}

func TestWriteRefusesDeletesAndInserts(t *testing.T) {
	_, c := startEmulator(t, "")
	req := upsert("Loyalty_Segment_Members", connectors.Record{Key: "VIP:M-1"})
	req.Operation = connectors.Delete
	_, err := c.Write(context.Background(), req)
	require.Error(t, err)
	assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "set `removals: write` on the sync")
	req.Operation = connectors.Insert
	_, err = c.Write(context.Background(), req)
	assert.ErrorContains(t, err, "operation insert is not supported: data extension rows are upserted by primary key; set the sync's mode to upsert")
}

func TestCheckNamesBadCredentials(t *testing.T) {
	emu, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	url, err := emu.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = emu.Close() })
	c := marketingcloud.New(nil)
	require.NoError(t, c.Configure(context.Background(), json.RawMessage(fmt.Sprintf(`{"auth_url":%q,"client_id":"loyaltyhub-emulator","client_secret":"wrong"}`, url))))
	err = c.Check(context.Background())
	require.Error(t, err)
	assert.Equal(t, connectors.Auth, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "check client_id, client_secret and account_id")
}

func TestWriteBeforeConfigure(t *testing.T) {
	_, err := marketingcloud.New(nil).Write(context.Background(), upsert("X"))
	assert.ErrorContains(t, err, "connector is not configured")
}

// A cause common to every row (a column the data extension lacks) does not
// cost two calls a row: past the isolation budget, the rows of a refused
// call are refused together, with Marketing Cloud's message.
func TestWriteBoundsTheCallsSpentIsolating(t *testing.T) {
	emu, c := startEmulator(t, "")
	var recs []connectors.Record
	for i := range 50 {
		r := segmentRecord("VIP", fmt.Sprintf("M-%02d", i), true)
		r.Fields["Favourite_Colour"] = "blue"
		recs = append(recs, r)
	}
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", recs...))
	require.NoError(t, err)
	for i, r := range resp.Results {
		require.Equal(t, connectors.StatusPermanent, r.Status, "record %d", i)
		require.Contains(t, r.Message, "Favourite_Colour", "record %d", i)
	}
	assert.LessOrEqual(t, resp.Calls, 25, "one call, then at most 24 spent isolating")
	assert.Empty(t, emu.Rows("Loyalty_Segment_Members"))
}

// A batch at the async threshold is one asynchronous request: every row
// lands, a few status reads, no rowset call.
func TestWriteLargeBatchThroughTheAsyncAPI(t *testing.T) {
	emu, c := startEmulator(t, `,"async_threshold":1000`)
	var recs []connectors.Record
	for i := range 1500 {
		recs = append(recs, segmentRecord("VIP", fmt.Sprintf("M-%04d", i), i%2 == 0))
	}
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", recs...))
	require.NoError(t, err)
	for i, r := range resp.Results {
		require.Equal(t, connectors.StatusApplied, r.Status, "record %d: %+v", i, r)
	}
	assert.Equal(t, "SegmentId:VIP;MembershipNumber:M-0007", resp.Results[7].TargetID)
	assert.Len(t, emu.Rows("Loyalty_Segment_Members"), 1500)
	calls := emu.Calls()
	assert.Equal(t, 1, calls["async.upsert"])
	assert.Zero(t, calls["rowset.upsert"])
	assert.Less(t, resp.Calls, 12, "one request and a few status reads: the rowset API would take 30 calls")
}

// When the asynchronous request reports errors, the batch goes again
// through the rowset API, which isolates the bad row.
func TestWriteAsyncErrorsFallBackToRowsets(t *testing.T) {
	emu, c := startEmulator(t, `,"async_threshold":100`)
	var recs []connectors.Record
	for i := range 150 {
		recs = append(recs, segmentRecord("VIP", fmt.Sprintf("M-%03d", i), true))
	}
	recs[42].Fields["Segment_Version"] = "forty-two"
	resp, err := c.Write(context.Background(), upsert("Loyalty_Segment_Members", recs...))
	require.NoError(t, err)
	for i, r := range resp.Results {
		if i == 42 {
			assert.Equal(t, connectors.StatusPermanent, r.Status)
			assert.Contains(t, r.Message, "Segment_Version")
			continue
		}
		require.Equal(t, connectors.StatusApplied, r.Status, "record %d: %+v", i, r)
	}
	assert.Len(t, emu.Rows("Loyalty_Segment_Members"), 149)
	assert.Equal(t, 1, emu.Calls()["async.upsert"])
	assert.Greater(t, emu.Calls()["rowset.upsert"], 3)
}
