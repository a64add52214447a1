package salesforce_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

// A batch at the bulk threshold is one Bulk API 2.0 job: every record lands,
// each result has its record's Id, and the calls are a handful, not one per
// 200 records.
func TestBulkUpsertWritesALargeBatchAsOneJob(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": 1000})
	recs := make([]connectors.Record, 2500)
	for i := range recs {
		recs[i] = member(fmt.Sprintf("M-%04d", i), float64(i), "Gold")
	}
	req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs}
	resp := write(t, c, req)
	ids := map[string]bool{}
	for i := range recs {
		id := wantApplied(t, resp, i)
		ids[id] = true
		got, ok := srv.Get(memberObj, id)
		require.True(t, ok)
		require.Equal(t, recs[i].Key, got[memberExt], "record %d got the Id of another record", i)
		require.Equal(t, float64(i), got["Points_Balance__c"])
	}
	assert.Len(t, ids, 2500)
	assert.Len(t, srv.Records(memberObj), 2500)
	// Create, upload, close, a few polls, two result reads: sObject
	// Collections would take 13 calls.
	t.Logf("2,500 records in %d calls", resp.Calls)
	assert.Less(t, resp.Calls, 20)
	assert.Zero(t, srv.Stats().Calls["collections.upsert"], "no sObject Collections call")
	assert.Len(t, srv.BulkJobs(), 1)

	// Again, as updates of the records the hub knows: create-only fields
	// (ProgramId) are left out, a null clears a field.
	for i := range recs {
		recs[i] = member(fmt.Sprintf("M-%04d", i), float64(i+1), "Silver")
		recs[i].TargetID = resp.Results[i].TargetID
	}
	recs[7].Fields["Tier__c"] = nil
	second := write(t, c, req)
	for i := range recs {
		require.Equal(t, resp.Results[i].TargetID, wantApplied(t, second, i))
	}
	got, _ := srv.Get(memberObj, resp.Results[3].TargetID)
	assert.Equal(t, 4.0, got["Points_Balance__c"])
	assert.Equal(t, "Silver", got["Tier__c"])
	got, _ = srv.Get(memberObj, resp.Results[7].TargetID)
	assert.Nil(t, got["Tier__c"], "#N/A cleared the field")
	assert.Len(t, srv.Records(memberObj), 2500)
}

// Records Salesforce refuses in the job get their own results, classified
// like collection results; the others are written.
func TestBulkPerRecordFailures(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": 10})
	recs := make([]connectors.Record, 20)
	for i := range recs {
		recs[i] = member(fmt.Sprintf("M-%02d", i), float64(i), "Gold")
	}
	recs[4].Fields["Tier__c"] = "Diamond"         // not in the restricted picklist
	delete(recs[9].Fields, "ProgramId")           // required on create
	recs[12].Fields["Points_Balance__c"] = "many" // not a number
	resp := write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	for i, r := range resp.Results {
		switch i {
		case 4, 9, 12:
			assert.Equal(t, connectors.StatusPermanent, r.Status, "record %d: %+v", i, r)
			assert.NotEmpty(t, r.Code, "record %d", i)
		default:
			wantApplied(t, resp, i)
		}
	}
	assert.Equal(t, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", resp.Results[4].Code)
	assert.Equal(t, "REQUIRED_FIELD_MISSING", resp.Results[9].Code)
	assert.Len(t, srv.Records(memberObj), 17)
}

// A key twice in the batch: the first goes in the job, the second after it
// through sObject Collections, so the newer values win.
func TestBulkRepeatedKeyWrittenAfterTheJob(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": 5})
	recs := []connectors.Record{
		member("M-1", 1, "Bronze"), member("M-2", 2, "Bronze"), member("M-3", 3, "Bronze"),
		member("M-1", 10, "Gold"), member("M-4", 4, "Bronze"), member("M-5", 5, "Bronze"),
	}
	resp := write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	first, again := wantApplied(t, resp, 0), wantApplied(t, resp, 3)
	assert.Equal(t, first, again)
	got, _ := srv.Get(memberObj, first)
	assert.Equal(t, 10.0, got["Points_Balance__c"])
	assert.Equal(t, "Gold", got["Tier__c"])
	// The repeat went through sObject Collections (twice: the record now
	// exists, so its create-only ProgramId is refused and sent again without).
	assert.Equal(t, 2, srv.Stats().Calls["collections.upsert"])
	assert.Len(t, srv.BulkJobs(), 1)
}

// Below the threshold, and with bulk_threshold -1, batches go through
// sObject Collections.
func TestBulkThreshold(t *testing.T) {
	srv := startEmulator(t, nil)
	recs := make([]connectors.Record, 400)
	for i := range recs {
		recs[i] = contact(fmt.Sprintf("C-%03d", i))
	}
	req := connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs}
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": -1})
	assert.Equal(t, 2, write(t, c, req).Calls)
	c, _ = connect(t, srv, map[string]any{"bulk_threshold": 401})
	assert.Equal(t, 2, write(t, c, req).Calls)
	assert.Empty(t, srv.BulkJobs())
}

func TestBulkConfigErrors(t *testing.T) {
	srv := startEmulator(t, nil)
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"bulk_threshold": 10001}, "bulk_threshold 10001 is out of range"},
		{map[string]any{"bulk_threshold": -2}, "bulk_threshold -2 is out of range"},
		{map[string]any{"bulk_timeout": "soon"}, `bulk_timeout "soon" is not a duration`},
		{map[string]any{"bulk_timeout": "48h"}, `bulk_timeout "48h" is out of range`},
	} {
		c, err := configure(srv, tc.settings)
		if c != nil {
			_ = c.Close()
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// A value with a line break in it (CRLF, as a form posts it) is read back
// from the job's results as LF: the results still match their records.
func TestBulkValuesWithLineBreaksMatchTheirResults(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": 3})
	recs := []connectors.Record{contact("B-1"), contact("B-2"), contact("B-3"), contact("B-4")}
	recs[0].Fields["Description"] = "12 rue de Rivoli\r\n75001 Paris"
	recs[1].Fields["Description"] = "two\r\r\nbreaks\n"
	recs[2].Fields["Description"] = "lone\rcr"
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	for i := range recs {
		wantApplied(t, resp, i)
	}
	require.Len(t, srv.BulkJobs(), 1)
	got, _ := srv.Get("Contact", resp.Results[0].TargetID)
	assert.Equal(t, "12 rue de Rivoli\n75001 Paris", got["Description"])
}

// A job Salesforce fails part-way for a passing cause (a batch not processed
// after its retries): the records it wrote are applied, by their results;
// the others are retryable, never permanent.
func TestBulkJobFailedPartWayIsRetryable(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": 250})
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultBulkJobFailed, Count: 1})
	require.NoError(t, err)
	recs := make([]connectors.Record, 300)
	for i := range recs {
		recs[i] = member(fmt.Sprintf("M-%04d", i), float64(i), "Gold")
	}
	req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs}
	resp := write(t, c, req)
	applied, retryable := 0, 0
	for i, r := range resp.Results {
		switch r.Status {
		case connectors.StatusApplied:
			applied++
			got, ok := srv.Get(memberObj, r.TargetID)
			require.True(t, ok, "record %d", i)
			require.Equal(t, recs[i].Key, got[memberExt])
		case connectors.StatusRetryable:
			retryable++
			assert.Contains(t, r.Message, "InternalServerError", "record %d", i)
		default:
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	assert.Equal(t, 200, applied, "the rows the job wrote before it failed")
	assert.Equal(t, 100, retryable)
	wantAll(t, write(t, c, req)) // the retry
	assert.Len(t, srv.Records(memberObj), 300)
}

// A job refused as a whole for a column one record names (a field that does
// not exist) is the fault of the records that name it: they are permanent,
// the others are written, as sObject Collections isolate such a record.
func TestBulkJobRefusedForOneRecordsColumn(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"bulk_threshold": 10})
	recs := make([]connectors.Record, 20)
	for i := range recs {
		recs[i] = contact(fmt.Sprintf("C-%02d", i))
	}
	recs[5].Fields["Nope__c"] = "x"
	recs[9].Fields["nope__C"] = "y"
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	for i, r := range resp.Results {
		if i == 5 || i == 9 {
			assert.Equal(t, connectors.StatusPermanent, r.Status, "record %d: %+v", i, r)
			assert.Equal(t, "INVALID_FIELD", r.Code, "record %d", i)
			assert.Contains(t, strings.ToLower(r.Message), "nope__c", "record %d", i)
			continue
		}
		wantApplied(t, resp, i)
	}
	assert.Len(t, srv.Records("Contact"), 18)

	// Every record names it: all permanent, nothing written.
	for i := range recs {
		recs[i] = contact(fmt.Sprintf("D-%02d", i))
		recs[i].Fields["Nope__c"] = "x"
	}
	resp = write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	for i, r := range resp.Results {
		assert.Equal(t, connectors.StatusPermanent, r.Status, "record %d: %+v", i, r)
	}
	assert.Len(t, srv.Records("Contact"), 18)
}

func wantAll(t *testing.T, resp connectors.WriteResponse) []string {
	t.Helper()
	ids := make([]string, len(resp.Results))
	for i := range resp.Results {
		ids[i] = wantApplied(t, resp, i)
	}
	return ids
}
