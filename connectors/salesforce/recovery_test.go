package salesforce_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

// These tests check that no failure of a side call, and no record the
// target lost, turns into a permanent result by accident.

// members returns n members keyed <prefix>-000…, as the member-to-lpm
// mapping writes them (ProgramId included: a mapping sets it for the records
// it creates).
func members(prefix string, n int, points float64) []connectors.Record {
	recs := make([]connectors.Record, n)
	for i := range recs {
		recs[i] = member(fmt.Sprintf("%s-%03d", prefix, i), points+float64(i), "Gold")
	}
	return recs
}

// withTargets sets each record's TargetID to ids[i].
func withTargets(recs []connectors.Record, ids []string) []connectors.Record {
	for i := range recs {
		recs[i].TargetID = ids[i]
	}
	return recs
}

func appliedIDs(t *testing.T, resp connectors.WriteResponse) []string {
	t.Helper()
	ids := make([]string, len(resp.Results))
	for i := range resp.Results {
		ids[i] = wantApplied(t, resp, i)
	}
	return ids
}

// A describe refused with a 429 or a 503 must not make the connector send
// create-only fields on updates (which Salesforce refuses, permanently):
// the records whose shape depends on the describe are retryable, with the
// describe's error and its Retry-After, and once the describe answers again
// (it is not cached as "no create-only fields") they apply.
func TestDescribeFailureLeavesRecordsRetryable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      emulator.FaultKind
		code       string
		retryAfter time.Duration
		targets    bool // the hub knows the target ids (cross-reference)
		bulk       bool
	}{
		{"429, target ids known", emulator.FaultTooManyRequests, "REQUEST_LIMIT_EXCEEDED", time.Second, true, false},
		{"429, target ids unknown", emulator.FaultTooManyRequests, "REQUEST_LIMIT_EXCEEDED", time.Second, false, false},
		{"503, target ids known", emulator.FaultUnavailable, "SERVER_UNAVAILABLE", 0, true, false},
		{"503, target ids unknown", emulator.FaultUnavailable, "SERVER_UNAVAILABLE", 0, false, false},
		{"429, bulk, target ids known", emulator.FaultTooManyRequests, "REQUEST_LIMIT_EXCEEDED", time.Second, true, true},
		{"503, bulk, target ids unknown", emulator.FaultUnavailable, "SERVER_UNAVAILABLE", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startEmulator(t, nil)
			settings := map[string]any{"bulk_threshold": -1}
			if tc.bulk {
				settings["bulk_threshold"] = 10
			}
			c, _ := connect(t, srv, settings)
			req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: members("M", 20, 0)}
			ids := appliedIDs(t, write(t, c, req))

			faultID, err := srv.AddFault(emulator.Fault{Kind: tc.fault, Operations: []string{"describe"}})
			require.NoError(t, err)
			req.Records = members("M", 20, 100)
			if tc.targets {
				withTargets(req.Records, ids)
			}
			resp, err := c.Write(t.Context(), req)
			if err == nil {
				require.Len(t, resp.Results, 20)
				for i, r := range resp.Results {
					require.Equal(t, connectors.StatusRetryable, r.Status, "record %d: %+v", i, r)
					assert.Equal(t, tc.code, r.Code, "record %d", i)
					assert.Contains(t, r.Message, "describe", "record %d: the message names the describe that failed", i)
					assert.Contains(t, r.Message, tc.code, "record %d: the message keeps the describe's error", i)
					assert.Equal(t, tc.retryAfter, r.RetryAfter, "record %d", i)
				}
			} else {
				assert.NotEqual(t, connectors.Permanent, connectors.KindOf(err), "Write: %v", err)
				assert.Equal(t, tc.retryAfter, connectors.RetryAfterOf(err))
			}
			for i, id := range ids {
				got, _ := srv.Get(memberObj, id)
				require.Equal(t, float64(i), got["Points_Balance__c"], "record %d changed although its write was not applied", i)
			}

			describes := srv.Stats().Calls["describe"]
			require.True(t, srv.RemoveFault(faultID), "the fault fired and stays until removed")
			again := write(t, c, req)
			for i, id := range appliedIDs(t, again) {
				require.Equal(t, ids[i], id, "record %d", i)
				got, _ := srv.Get(memberObj, id)
				assert.Equal(t, 100+float64(i), got["Points_Balance__c"], "record %d", i)
				assert.Equal(t, emulator.DefaultProgramID, got["ProgramId"], "record %d", i)
			}
			assert.Greater(t, srv.Stats().Calls["describe"], describes, "the next write describes again")
			assert.Len(t, srv.Records(memberObj), 20)
		})
	}
}

// When the cross-reference names records the target lost (deleted, or the
// org refreshed), an upsert that left out their create-only fields is
// refused with REQUIRED_FIELD_MISSING: the connector writes them again
// with all their fields, in the same Write, and reports the new ids.
func TestLostTargetRecordsAreCreatedAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		lose  int  // how many of the n records the target loses
		reset bool // lose them all by resetting the org, else delete them
		bulk  bool
		jobs  int // Bulk API 2.0 jobs the updates take
	}{
		{"collections, deleted", 5, 5, false, false, 0},
		{"collections, some deleted", 6, 3, false, false, 0},
		{"collections, org reset", 5, 5, true, false, 0},
		// At or above bulk_threshold (20): the records to create again
		// are a second job when they are 20 or more, else a collections call.
		{"bulk, deleted", 30, 30, false, true, 2},
		{"bulk, some deleted", 30, 12, false, true, 1},
		{"bulk, org reset", 30, 30, true, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startEmulator(t, nil)
			threshold := -1
			if tc.bulk {
				threshold = 20
			}
			c, _ := connect(t, srv, map[string]any{"bulk_threshold": threshold})
			req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: members("M", tc.n, 0)}
			ids := appliedIDs(t, write(t, c, req))

			if tc.reset {
				require.NoError(t, srv.Reset())
			} else {
				del := make([]connectors.Record, tc.lose)
				for i := range del {
					del[i] = connectors.Record{Key: req.Records[i].Key, TargetID: ids[i]}
				}
				appliedIDs(t, write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Delete, ExternalIDField: memberExt, Records: del}))
			}
			require.Len(t, srv.Records(memberObj), tc.n-tc.lose)
			jobs := len(srv.BulkJobs())

			// Updates of the same keys, with the ids the cross-reference holds.
			req.Records = withTargets(members("M", tc.n, 100), ids)
			resp := write(t, c, req)
			for i, id := range appliedIDs(t, resp) {
				got, ok := srv.Get(memberObj, id)
				require.True(t, ok, "record %d: %s is not in the org", i, id)
				assert.Equal(t, req.Records[i].Key, got[memberExt], "record %d", i)
				assert.Equal(t, emulator.DefaultProgramID, got["ProgramId"], "record %d", i)
				assert.Equal(t, 100+float64(i), got["Points_Balance__c"], "record %d", i)
				if i >= tc.lose {
					assert.Equal(t, ids[i], id, "record %d was not lost: updated in place", i)
				} else if !tc.reset {
					assert.NotEqual(t, ids[i], id, "record %d was deleted: created again", i)
				}
			}
			assert.Len(t, srv.Records(memberObj), tc.n)
			assert.Equal(t, tc.jobs, len(srv.BulkJobs())-jobs, "Bulk API 2.0 jobs")
			t.Logf("%d records, %d lost: %d calls", tc.n, tc.lose, resp.Calls)

			// The new ids work as target ids in turn.
			req.Records = withTargets(members("M", tc.n, 200), appliedIDs(t, resp))
			third := write(t, c, req)
			assert.Equal(t, resp.Results[0].TargetID, wantApplied(t, third, 0))
		})
	}
}

// A record that lost its target and also lacks a required field the mapping
// does not set is refused for that field, once: the connector writes it again
// with its create-only fields, no more.
func TestLostTargetRecordStillMissingAFieldIsPermanent(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		t.Run(fmt.Sprintf("bulk=%v", bulk), func(t *testing.T) {
			srv := startEmulator(t, nil)
			threshold := -1
			if bulk {
				threshold = 3
			}
			c, _ := connect(t, srv, map[string]any{"bulk_threshold": threshold})
			req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: members("M", 3, 0)}
			ids := appliedIDs(t, write(t, c, req))
			require.NoError(t, srv.Reset())

			req.Records = withTargets(members("M", 3, 10), ids)
			delete(req.Records[1].Fields, "EnrollmentDate") // required on create
			resp := write(t, c, req)
			wantApplied(t, resp, 0)
			wantApplied(t, resp, 2)
			r := resp.Results[1]
			assert.Equal(t, connectors.StatusPermanent, r.Status, "%+v", r)
			assert.Equal(t, "REQUIRED_FIELD_MISSING", r.Code)
			assert.Contains(t, r.Message, "EnrollmentDate")
			assert.NotContains(t, r.Message, "ProgramId", "the second try had ProgramId")
			assert.LessOrEqual(t, resp.Calls, 12)
		})
	}
}

// Mode update names the record by its Id and carries no fields to create it
// from: a target record that no longer exists is a permanent failure that
// says so, in both write paths.
func TestUpdateOfLostTargetIsAClearPermanentError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bulk  bool
		reset bool // the org is reset (no record left), else two records are deleted
		code  string
	}{
		{"collections, deleted", false, false, "ENTITY_IS_DELETED"},
		{"collections, org reset", false, true, "INVALID_CROSS_REFERENCE_KEY"},
		{"bulk, deleted", true, false, "ENTITY_IS_DELETED"},
		{"bulk, org reset", true, true, "INVALID_CROSS_REFERENCE_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startEmulator(t, nil)
			threshold := -1
			if tc.bulk {
				threshold = 4
			}
			c, _ := connect(t, srv, map[string]any{"bulk_threshold": threshold})
			ids := appliedIDs(t, write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt,
				Records: []connectors.Record{contact("U-1"), contact("U-2"), contact("U-3"), contact("U-4")}}))
			lost, kept := []int{0, 2}, []int{1, 3}
			if tc.reset {
				require.NoError(t, srv.Reset())
				lost, kept = []int{0, 1, 2, 3}, nil
			} else {
				appliedIDs(t, write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Delete,
					Records: []connectors.Record{{Key: "U-1", TargetID: ids[0]}, {Key: "U-3", TargetID: ids[2]}}}))
			}

			upd := make([]connectors.Record, 4)
			for i := range upd {
				upd[i] = connectors.Record{Key: fmt.Sprintf("U-%d", i+1), TargetID: ids[i], Fields: map[string]any{"Loyalty_Tier__c": "Platinum"}}
			}
			resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Update, Records: upd})
			for _, i := range kept {
				assert.Equal(t, ids[i], wantApplied(t, resp, i))
			}
			for _, i := range lost {
				r := resp.Results[i]
				require.Equal(t, connectors.StatusPermanent, r.Status, "record %d: %+v", i, r)
				assert.Equal(t, tc.code, r.Code, "record %d", i)
				assert.Contains(t, r.Message, "the target record "+ids[i], "record %d", i)
				assert.Contains(t, r.Message, "no longer exists", "record %d", i)
				assert.True(t, strings.Contains(r.Message, "upsert") && strings.Contains(r.Message, "backfill"), "record %d: the message says what to do: %s", i, r.Message)
			}
		})
	}
}

// A connector closed while a write is in flight (the hub shutting down)
// is no fault of the records: what is not written is retryable, and so is
// a write that comes after Close.
func TestClosedConnectorLeavesRecordsRetryable(t *testing.T) {
	var (
		srv  *emulator.Server
		c    *salesforce.Connector
		once sync.Once
	)
	srv = startEmulator(t, func(cfg *emulator.Config) {
		cfg.OnWrite = func(object, id string, fields map[string]any) {
			once.Do(func() {
				srv.ExpireSessions() // the next call logs in again,
				_ = c.Close()        // on a closed connector (the call in flight is answered)
			})
		}
	})
	c, _ = connect(t, srv, map[string]any{"batch_size": 1})
	req := connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt,
		Records: []connectors.Record{contact("X-1"), contact("X-2"), contact("X-3")}}
	resp := write(t, c, req)
	wantApplied(t, resp, 0)
	for i := 1; i < 3; i++ {
		assert.Equal(t, connectors.StatusRetryable, resp.Results[i].Status, "record %d: %+v", i, resp.Results[i])
	}
	_, err := c.Write(t.Context(), req)
	require.Error(t, err)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err), "Write after Close: %v", err)
}

// A Bulk API 2.0 job that vanishes once created (the org reset while it
// runs, an admin deleting it) answers 404 to the calls about it. That says
// nothing against the records, which may or may not be written: they are
// retryable, never permanent.
func TestBulkJobLostMidWayIsRetryable(t *testing.T) {
	for _, call := range []string{"bulk.upload", "bulk.updateJob", "bulk.getJob"} {
		t.Run(call, func(t *testing.T) {
			srv := startEmulator(t, nil)
			c, _ := connect(t, srv, map[string]any{"bulk_threshold": 5})
			// The call waits; meanwhile the org is reset: the job is gone.
			_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: time.Second, Operations: []string{call}, Count: 1})
			require.NoError(t, err)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for srv.Stats().Faults[string(emulator.FaultLatency)] == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				assert.NoError(t, srv.Reset())
			}()
			req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: members("M", 10, 0)}
			resp, err := c.Write(t.Context(), req)
			<-done
			if err != nil {
				assert.Equal(t, connectors.Transient, connectors.KindOf(err), "Write: %v", err)
			} else {
				for i, r := range resp.Results {
					assert.Equal(t, connectors.StatusRetryable, r.Status, "record %d: %+v", i, r)
				}
			}
			// The retry writes them.
			appliedIDs(t, write(t, c, req))
			assert.Len(t, srv.Records(memberObj), 10)
		})
	}
}

// A record that refers to a record the target lost (a transaction journal's
// MemberId, looked up through the cross-reference, after the org lost the
// member) is retryable: once the member is written again, the retry maps
// the new id. It is never permanent, in either write path.
func TestReferenceToALostRecordIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bulk  bool
		reset bool
	}{
		{"collections, member deleted", false, false},
		{"collections, org reset", false, true},
		{"bulk, member deleted", true, false},
		{"bulk, org reset", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startEmulator(t, nil)
			threshold := -1
			if tc.bulk {
				threshold = 3
			}
			c, _ := connect(t, srv, map[string]any{"bulk_threshold": threshold})
			mreq := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt, Records: members("M", 3, 0)}
			ids := appliedIDs(t, write(t, c, mreq))
			journal := func(key, memberID string) connectors.Record {
				return connectors.Record{Key: key, Fields: map[string]any{"ExternalTransactionNumber": key, "MemberId": memberID,
					"LoyaltyProgramId": emulator.DefaultProgramID, "ActivityDate": "2026-03-02T08:00:00.000Z", "Status": "Processed"}}
			}
			treq := connectors.WriteRequest{Object: "TransactionJournal", Operation: connectors.Upsert, ExternalIDField: "ExternalTransactionNumber",
				Records: []connectors.Record{journal("T-1", ids[0]), journal("T-2", ids[1]), journal("T-3", ids[2])}}
			appliedIDs(t, write(t, c, treq))

			if tc.reset {
				require.NoError(t, srv.Reset())
			} else {
				appliedIDs(t, write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Delete, Records: []connectors.Record{{Key: "M-000", TargetID: ids[0]}}}))
			}
			resp := write(t, c, treq)
			r := resp.Results[0]
			require.Equal(t, connectors.StatusRetryable, r.Status, "%+v", r)
			assert.Contains(t, r.Message, "MemberId")
			assert.Contains(t, r.Message, ids[0])
			if !tc.reset {
				wantApplied(t, resp, 1)
				wantApplied(t, resp, 2)
			}

			// The member is written again (a new id); the retry maps it.
			mreq.Records = withTargets(members("M", 3, 0), ids)
			newIDs := appliedIDs(t, write(t, c, mreq))
			for i := range treq.Records {
				treq.Records[i].Fields["MemberId"] = newIDs[i]
			}
			appliedIDs(t, write(t, c, treq))
		})
	}
}
