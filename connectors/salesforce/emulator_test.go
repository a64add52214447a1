package salesforce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

// These tests run the connector against the Salesforce emulator on a
// loopback port: the real go-salesforce login, the real wire format.

const (
	memberObj = "LoyaltyProgramMember"
	memberExt = "Ledger_Member_Id__c"
)

func startEmulator(t *testing.T, mutate func(*emulator.Config)) *emulator.Server {
	t.Helper()
	cfg := emulator.DefaultConfig()
	cfg.FaultSeed = 7
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	if _, err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("emulator.Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// syncBuffer is a log sink safe for the connector's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// connect configures a connector for srv with the client-credentials flow;
// settings override the config fields.
func connect(t *testing.T, srv *emulator.Server, settings map[string]any) (*salesforce.Connector, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	c := salesforce.New(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := c.Configure(context.Background(), settingsJSON(srv, settings)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, logs
}

// configure is connect that returns Configure's error.
func configure(srv *emulator.Server, settings map[string]any) (*salesforce.Connector, error) {
	c := salesforce.New(nil)
	return c, c.Configure(context.Background(), settingsJSON(srv, settings))
}

// settingsJSON is a config block for srv with settings on top.
func settingsJSON(srv *emulator.Server, settings map[string]any) json.RawMessage {
	cfg := map[string]any{
		"login_url":     srv.URL(),
		"client_id":     emulator.DefaultClientID,
		"client_secret": emulator.DefaultClientSecret,
		"timeout":       "10s",
	}
	for k, v := range settings {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	return raw
}

func member(key string, points float64, tier string) connectors.Record {
	return connectors.Record{Key: key, Fields: map[string]any{
		"MembershipNumber":  "MN-" + key,
		"ProgramId":         emulator.DefaultProgramID,
		"EnrollmentDate":    "2025-01-02",
		"Points_Balance__c": points,
		"Tier__c":           tier,
	}}
}

func contact(key string) connectors.Record {
	return connectors.Record{Key: key, Fields: map[string]any{"LastName": "Member " + key, "Loyalty_Tier__c": "Gold"}}
}

func write(t *testing.T, c *salesforce.Connector, req connectors.WriteRequest) connectors.WriteResponse {
	t.Helper()
	resp, err := c.Write(context.Background(), req)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(resp.Results) != len(req.Records) {
		t.Fatalf("Write returned %d results for %d records", len(resp.Results), len(req.Records))
	}
	return resp
}

func wantApplied(t *testing.T, resp connectors.WriteResponse, i int) string {
	t.Helper()
	r := resp.Results[i]
	if r.Status != connectors.StatusApplied || r.TargetID == "" {
		t.Fatalf("record %d: %+v, want applied with a target id", i, r)
	}
	return r.TargetID
}

func TestEmulatorUpsertCreatesThenUpdates(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)

	req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt,
		Records: []connectors.Record{member("M-1", 10, "Bronze"), member("M-2", 20, "Silver"), member("M-3", 30, "Gold")}}
	first := write(t, c, req)
	if first.Calls != 1 {
		t.Errorf("first upsert took %d calls, want 1", first.Calls)
	}
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = wantApplied(t, first, i)
		got, ok := srv.Get(memberObj, ids[i])
		if !ok || got[memberExt] != req.Records[i].Key {
			t.Errorf("record %d in the org = %v, want %s = %s", i, got, memberExt, req.Records[i].Key)
		}
	}

	req.Records = []connectors.Record{member("M-1", 11, "Gold"), member("M-2", 21, "Gold"), member("M-3", 31, "Platinum")}
	for _, r := range req.Records {
		delete(r.Fields, "ProgramId") // create-only in Salesforce
	}
	second := write(t, c, req)
	for i := range ids {
		if id := wantApplied(t, second, i); id != ids[i] {
			t.Errorf("record %d: update gave id %s, create gave %s: want the same record", i, id, ids[i])
		}
		got, _ := srv.Get(memberObj, ids[i])
		if got["Points_Balance__c"] != req.Records[i].Fields["Points_Balance__c"] || got["Tier__c"] != req.Records[i].Fields["Tier__c"] {
			t.Errorf("record %d after update = %v, want points %v tier %v", i, got, req.Records[i].Fields["Points_Balance__c"], req.Records[i].Fields["Tier__c"])
		}
	}
	if n := len(srv.Records(memberObj)); n != 3 {
		t.Errorf("org holds %d members, want 3", n)
	}

	// A field left out of an upsert is left alone (maps send no zero values).
	req.Records = []connectors.Record{{Key: "M-1", Fields: map[string]any{"Tier__c": "Silver"}}}
	write(t, c, req)
	got, _ := srv.Get(memberObj, ids[0])
	if got["Points_Balance__c"] != 11.0 || got["Tier__c"] != "Silver" {
		t.Errorf("after a partial upsert: %v, want points 11 kept and tier Silver", got)
	}

	if u, ok := c.APIUsage(); !ok || u.Used < 3 || u.Limit != emulator.DefaultDailyAPILimit {
		t.Errorf("APIUsage = %+v, %v; want at least 3 of %d", u, ok, emulator.DefaultDailyAPILimit)
	}
}

func TestEmulator450RecordsTake3Calls(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	recs := make([]connectors.Record, 450)
	for i := range recs {
		recs[i] = contact(fmt.Sprintf("C-%03d", i))
	}
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	if resp.Calls != 3 {
		t.Errorf("Calls = %d, want 3", resp.Calls)
	}
	if n := srv.Stats().Calls["collections.upsert"]; n != 3 {
		t.Errorf("emulator served %d collection upserts, want 3", n)
	}
	seen := map[string]bool{}
	for i := range recs {
		seen[wantApplied(t, resp, i)] = true
	}
	if len(seen) != 450 || len(srv.Records("Contact")) != 450 {
		t.Errorf("%d distinct ids, %d contacts in the org; want 450", len(seen), len(srv.Records("Contact")))
	}

	// batch_size splits differently.
	c2, _ := connect(t, srv, map[string]any{"batch_size": 100})
	resp = write(t, c2, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	if resp.Calls != 5 {
		t.Errorf("batch_size 100: Calls = %d, want 5", resp.Calls)
	}
}

func TestEmulatorPermanentErrorsBesideApplied(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	recs := []connectors.Record{
		contact("ok-1"),
		{Key: "picklist", Fields: map[string]any{"LastName": "P", "Loyalty_Tier__c": "Diamond"}},
		{Key: "unknown-field", Fields: map[string]any{"LastName": "U", "Nope__c": "x"}},
		contact("ok-2"),
		{Key: "no-last-name", Fields: map[string]any{"FirstName": "N"}},
		{Key: "too-long", Fields: map[string]any{"LastName": strings.Repeat("x", 81)}},
		contact("ok-3"),
	}
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})

	for _, i := range []int{0, 3, 6} {
		id := wantApplied(t, resp, i)
		if got, ok := srv.Get("Contact", id); !ok || got[memberExt] != recs[i].Key {
			t.Errorf("record %d not in the org: %v", i, got)
		}
	}
	want := map[int]struct{ code, inMsg string }{
		1: {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Diamond"},
		2: {"INVALID_FIELD", "Nope__c"},
		4: {"REQUIRED_FIELD_MISSING", "LastName"},
		5: {"STRING_TOO_LONG", "LastName"},
	}
	for i, w := range want {
		r := resp.Results[i]
		if r.Status != connectors.StatusPermanent || r.Code != w.code || !strings.Contains(r.Message, w.code) || !strings.Contains(r.Message, w.inMsg) {
			t.Errorf("record %d (%s): %+v, want permanent %s naming %s", i, recs[i].Key, r, w.code, w.inMsg)
		}
	}
	// The unknown field makes Salesforce reject the whole call; the connector
	// sends the others again without the culprit: 2 calls.
	if resp.Calls != 2 {
		t.Errorf("Calls = %d, want 2 (rejected call + the rest)", resp.Calls)
	}
	if n := len(srv.Records("Contact")); n != 3 {
		t.Errorf("org holds %d contacts, want 3", n)
	}
}

func TestEmulatorWrongTypeIsolatedByHalving(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	recs := make([]connectors.Record, 16)
	for i := range recs {
		recs[i] = contact(fmt.Sprintf("T-%02d", i))
		recs[i].Fields["Loyalty_Points__c"] = float64(i)
	}
	recs[5].Fields["Loyalty_Points__c"] = []any{"not", "a", "number"}
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	for i := range recs {
		r := resp.Results[i]
		if i == 5 {
			if r.Status != connectors.StatusPermanent || r.Code != "JSON_PARSER_ERROR" {
				t.Errorf("record 5: %+v, want permanent JSON_PARSER_ERROR", r)
			}
			continue
		}
		wantApplied(t, resp, i)
	}
	// 1 rejected call, then halves: 16 → 8+8 → 4+4 → 2+2 → 1+1 = 1 + 2*4.
	if resp.Calls != 9 {
		t.Errorf("Calls = %d, want 9", resp.Calls)
	}
	if n := len(srv.Records("Contact")); n != 15 {
		t.Errorf("org holds %d contacts, want 15", n)
	}
}

func TestEmulatorWholeRequestRejectedForAll(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	for _, tt := range []struct {
		name, object, ext, code string
	}{
		{"unknown object", "Nope__c", "Ext__c", "NOT_FOUND"},
		{"not an external id", "Contact", "LastName", "INVALID_FIELD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := write(t, c, connectors.WriteRequest{Object: tt.object, Operation: connectors.Upsert, ExternalIDField: tt.ext,
				Records: []connectors.Record{contact("a"), contact("b")}})
			for i, r := range resp.Results {
				if r.Status != connectors.StatusPermanent || r.Code != tt.code {
					t.Errorf("record %d: %+v, want permanent %s", i, r, tt.code)
				}
			}
			if resp.Calls != 1 {
				t.Errorf("Calls = %d, want 1", resp.Calls)
			}
		})
	}
}

func TestEmulatorRecordLockIsRetryable(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	if _, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultRecordLockRow, Count: 1, Objects: []string{"Contact"}}); err != nil {
		t.Fatal(err)
	}
	recs := []connectors.Record{contact("L-1"), contact("L-2"), contact("L-3")}
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	locked := 0
	for i, r := range resp.Results {
		switch r.Status {
		case connectors.StatusRetryable:
			locked++
			if r.Code != "UNABLE_TO_LOCK_ROW" || !strings.Contains(r.Message, "UNABLE_TO_LOCK_ROW") {
				t.Errorf("record %d: %+v, want code UNABLE_TO_LOCK_ROW", i, r)
			}
		case connectors.StatusApplied:
		default:
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if locked != 1 || len(srv.Records("Contact")) != 2 {
		t.Errorf("%d locked records, %d contacts in the org; want 1 and 2", locked, len(srv.Records("Contact")))
	}
}

func TestEmulatorWholeRequestTransient(t *testing.T) {
	tests := []struct {
		name       string
		fault      emulator.FaultKind
		code       string
		retryAfter time.Duration
	}{
		{"503", emulator.FaultUnavailable, "SERVER_UNAVAILABLE", 0},
		{"429 with Retry-After", emulator.FaultTooManyRequests, "REQUEST_LIMIT_EXCEEDED", time.Second},
		{"403 daily limit", emulator.FaultRequestLimit, "REQUEST_LIMIT_EXCEEDED", 0},
		{"400 lock", emulator.FaultLockRow, "UNABLE_TO_LOCK_ROW", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startEmulator(t, nil)
			c, _ := connect(t, srv, nil)
			if err := c.Check(context.Background()); err != nil { // log in first
				t.Fatal(err)
			}
			if _, err := srv.AddFault(emulator.Fault{Kind: tt.fault, Count: 1}); err != nil {
				t.Fatal(err)
			}
			req := connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt,
				Records: []connectors.Record{contact("W-1"), contact("W-2")}}
			resp, err := c.Write(context.Background(), req)
			if err == nil {
				t.Fatalf("Write = %+v, nil error; want a transient error", resp)
			}
			var ae *salesforce.APIError
			if connectors.KindOf(err) != connectors.Transient || !errorsAs(err, &ae) || ae.Code != tt.code {
				t.Errorf("error %v: kind %v; want transient with code %s", err, connectors.KindOf(err), tt.code)
			}
			if got := connectors.RetryAfterOf(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %s, want %s", got, tt.retryAfter)
			}
			if resp.Calls != 1 || len(resp.Results) != 0 {
				t.Errorf("response = %+v, want 1 call and no results", resp)
			}
			if n := len(srv.Records("Contact")); n != 0 {
				t.Errorf("org holds %d contacts after a failed call", n)
			}
			// The fault fired once: the retry goes through.
			resp = write(t, c, req)
			wantApplied(t, resp, 0)
			wantApplied(t, resp, 1)
		})
	}
}

// A call failing as a whole after earlier calls of the batch were applied
// leaves the rest retryable, with the wait asked for.
func TestEmulatorFailurePartWay(t *testing.T) {
	var srv *emulator.Server
	var once sync.Once
	srv = startEmulator(t, func(cfg *emulator.Config) {
		cfg.OnWrite = func(object, id string, fields map[string]any) {
			if object == "Contact" {
				once.Do(func() { _, _ = srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 1}) })
			}
		}
	})
	c, _ := connect(t, srv, map[string]any{"batch_size": 2})
	recs := []connectors.Record{contact("P-1"), contact("P-2"), contact("P-3"), contact("P-4"), contact("P-5")}
	resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: recs})
	wantApplied(t, resp, 0)
	wantApplied(t, resp, 1)
	for i := 2; i < 5; i++ {
		r := resp.Results[i]
		if r.Status != connectors.StatusRetryable || r.RetryAfter != time.Second || r.Code != "REQUEST_LIMIT_EXCEEDED" {
			t.Errorf("record %d: %+v, want retryable after 1s", i, r)
		}
	}
	if resp.Calls != 2 {
		t.Errorf("Calls = %d, want 2", resp.Calls)
	}
}

func TestEmulatorBadCredentialsAreAuth(t *testing.T) {
	srv := startEmulator(t, nil)
	for _, tt := range []struct {
		name     string
		settings map[string]any
	}{
		{"wrong client secret", map[string]any{"client_secret": "nope"}},
		{"wrong client id", map[string]any{"client_id": "nope"}},
		{"wrong password", map[string]any{"auth": "password", "username": emulator.DefaultUsername, "password": "wrong"}},
		{"wrong user", map[string]any{"auth": "password", "username": "who@example.com", "password": emulator.DefaultPassword}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := connect(t, srv, tt.settings)
			err := c.Check(context.Background())
			if connectors.KindOf(err) != connectors.Auth {
				t.Errorf("Check: %v (kind %v), want auth", err, connectors.KindOf(err))
			}
			_, err = c.Write(context.Background(), connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: []connectors.Record{contact("x")}})
			if connectors.KindOf(err) != connectors.Auth {
				t.Errorf("Write: %v (kind %v), want auth", err, connectors.KindOf(err))
			}
		})
	}

	// A token endpoint that fails with 503 is transient, not auth.
	if _, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultUnavailable, Operations: []string{"auth"}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	c, _ := connect(t, srv, nil)
	if err := c.Check(context.Background()); connectors.KindOf(err) != connectors.Transient {
		t.Errorf("Check with the token endpoint down: %v (kind %v), want transient", err, connectors.KindOf(err))
	}
	if err := c.Check(context.Background()); err != nil {
		t.Errorf("Check once the token endpoint is back: %v", err)
	}
}

func TestEmulatorPasswordFlow(t *testing.T) {
	for _, token := range []string{"", "T0ken"} {
		t.Run("security token "+token, func(t *testing.T) {
			srv := startEmulator(t, func(cfg *emulator.Config) { cfg.SecurityToken = token })
			c, _ := connect(t, srv, map[string]any{"auth": "password", "username": emulator.DefaultUsername,
				"password": emulator.DefaultPassword, "security_token": token})
			if err := c.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			resp := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: []connectors.Record{contact("pw")}})
			wantApplied(t, resp, 0)
		})
	}
}

func TestEmulatorSessionExpiryLogsInAgain(t *testing.T) {
	srv := startEmulator(t, nil)
	c, logs := connect(t, srv, nil)
	req := connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert, ExternalIDField: memberExt, Records: []connectors.Record{contact("S-1")}}
	write(t, c, req)
	if n := srv.Stats().TokensIssued; n != 1 {
		t.Fatalf("%d tokens issued, want 1", n)
	}
	srv.ExpireSessions()
	resp := write(t, c, req)
	wantApplied(t, resp, 0)
	if resp.Calls != 2 {
		t.Errorf("Calls = %d, want 2 (401, then the replay)", resp.Calls)
	}
	if n := srv.Stats().TokensIssued; n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}
	if !strings.Contains(logs.String(), "session expired") {
		t.Errorf("no log of the re-login:\n%s", logs)
	}
	// The new session is kept.
	resp = write(t, c, req)
	if resp.Calls != 1 || srv.Stats().TokensIssued != 2 {
		t.Errorf("after re-login: %d calls, %d tokens; want 1 and 2", resp.Calls, srv.Stats().TokensIssued)
	}
}

func TestEmulatorInsertUpdateDelete(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)

	recs := []connectors.Record{contact("D-1"), contact("D-2"), contact("D-3"), contact("D-4")}
	for _, r := range recs {
		r.Fields[memberExt] = r.Key // an insert does not fill the external id from Key
	}
	ins := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: recs})
	ids := make([]string, 4)
	for i := range ids {
		ids[i] = wantApplied(t, ins, i)
	}

	upd := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Update, Records: []connectors.Record{
		{Key: "D-1", TargetID: ids[0], Fields: map[string]any{"Loyalty_Tier__c": "Platinum"}},
		{Key: "D-2", Fields: map[string]any{"Loyalty_Tier__c": "Platinum"}}, // no target id
	}})
	if id := wantApplied(t, upd, 0); id != ids[0] {
		t.Errorf("update gave id %s, want %s", id, ids[0])
	}
	if got, _ := srv.Get("Contact", ids[0]); got["Loyalty_Tier__c"] != "Platinum" || got["LastName"] != "Member D-1" {
		t.Errorf("after update: %v", got)
	}
	if r := upd.Results[1]; r.Status != connectors.StatusPermanent || r.Code != salesforce.CodeMissingTargetID {
		t.Errorf("update without target id: %+v", r)
	}

	del := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Delete, ExternalIDField: memberExt, Records: []connectors.Record{
		{Key: "D-1", TargetID: ids[0]}, // by id
		{Key: "D-2"},                   // by external id
		{Key: "gone"},                  // no such record: already gone
		{Key: "d-3"},                   // external ids compare case-insensitively
	}})
	for i, want := range []string{ids[0], ids[1]} {
		if id := wantApplied(t, del, i); id != want {
			t.Errorf("delete %d: id %s, want %s", i, id, want)
		}
	}
	if r := del.Results[2]; r.Status != connectors.StatusApplied || !strings.Contains(r.Message, "already gone") {
		t.Errorf("delete of a missing record: %+v, want applied (already gone)", r)
	}
	if id := wantApplied(t, del, 3); id != ids[2] {
		t.Errorf("delete by d-3: id %s, want %s", id, ids[2])
	}
	if del.Calls != 2 {
		t.Errorf("delete Calls = %d, want 2 (query + delete)", del.Calls)
	}
	left := srv.Records("Contact")
	if len(left) != 1 || left[0]["Id"] != ids[3] {
		t.Errorf("org holds %v, want only %s", left, ids[3])
	}

	// Deleting again (a redelivery) is applied: the records are already gone.
	again := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Delete, ExternalIDField: memberExt, Records: []connectors.Record{
		{Key: "D-1", TargetID: ids[0]}, {Key: "D-2"},
	}})
	for i, r := range again.Results {
		if r.Status != connectors.StatusApplied {
			t.Errorf("second delete %d: %+v, want applied", i, r)
		}
	}

	// A malformed id is permanent, the others are still deleted.
	bad := write(t, c, connectors.WriteRequest{Object: "Contact", Operation: connectors.Delete, Records: []connectors.Record{
		{Key: "x", TargetID: "not-an-id"}, {Key: "D-4", TargetID: ids[3]}, {Key: "no-ext-field"},
	}})
	if r := bad.Results[0]; r.Status != connectors.StatusPermanent || r.Code != "MALFORMED_ID" {
		t.Errorf("malformed id: %+v", r)
	}
	wantApplied(t, bad, 1)
	if r := bad.Results[2]; r.Status != connectors.StatusPermanent || r.Code != salesforce.CodeMissingExternalID {
		t.Errorf("delete without id or external id field: %+v", r)
	}
	if n := len(srv.Records("Contact")); n != 0 {
		t.Errorf("org holds %d contacts, want 0", n)
	}
}

func TestEmulatorDescribeObject(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	s, err := c.DescribeObject(context.Background(), memberObj)
	if err != nil {
		t.Fatalf("DescribeObject: %v", err)
	}
	fields := map[string]connectors.FieldSchema{}
	for _, f := range s.Fields {
		fields[f.Name] = f
	}
	if s.Name != memberObj {
		t.Errorf("Name = %q", s.Name)
	}
	ext := fields[memberExt]
	if !ext.ExternalID || !ext.Unique || ext.Type != "string" || ext.Length != 64 || ext.Required || !ext.Nillable {
		t.Errorf("%s = %+v", memberExt, ext)
	}
	if f := fields["Tier__c"]; f.Type != "picklist" || strings.Join(f.Picklist, ",") != "Bronze,Silver,Gold,Platinum" {
		t.Errorf("Tier__c = %+v", f)
	}
	if f := fields["ProgramId"]; f.Type != "reference" || !f.Required || f.Updateable || strings.Join(f.ReferenceTo, ",") != "LoyaltyProgram" {
		t.Errorf("ProgramId = %+v", f)
	}
	if f := fields["MemberStatus"]; f.Required { // not nillable but defaulted on create
		t.Errorf("MemberStatus = %+v: defaulted on create, so not required", f)
	}
	if f := fields["Id"]; f.Type != "id" || f.Createable || f.Required {
		t.Errorf("Id = %+v", f)
	}

	// Cached: the second describe makes no call.
	before := srv.Stats().Calls["describe"]
	if _, err := c.DescribeObject(context.Background(), memberObj); err != nil {
		t.Fatal(err)
	}
	if after := srv.Stats().Calls["describe"]; after != before {
		t.Errorf("second DescribeObject made %d calls, want 0", after-before)
	}

	_, err = c.DescribeObject(context.Background(), "Nope__c")
	if connectors.KindOf(err) != connectors.Permanent || !strings.Contains(err.Error(), "Nope__c") {
		t.Errorf("DescribeObject(Nope__c) = %v (kind %v), want permanent naming the object", err, connectors.KindOf(err))
	}
}

func TestEmulatorCheckAndUsageWarning(t *testing.T) {
	srv := startEmulator(t, nil)
	c, logs := connect(t, srv, nil)
	if _, ok := c.APIUsage(); ok {
		t.Error("APIUsage known before any call")
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	u, ok := c.APIUsage()
	if !ok || u.Limit != emulator.DefaultDailyAPILimit || u.Used < 1 || u.Used > 5 {
		t.Errorf("APIUsage after Check = %+v, %v", u, ok)
	}
	if strings.Contains(logs.String(), "API usage above") {
		t.Errorf("usage warning at low usage:\n%s", logs)
	}

	srv.SetAPIUsage(95_000)
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, _ = c.APIUsage()
	if u.Used < 95_000 || u.Fraction() <= 0.9 {
		t.Errorf("APIUsage = %+v, want above 95000", u)
	}
	if !strings.Contains(logs.String(), "API usage above 90%") {
		t.Errorf("no usage warning above 90%%:\n%s", logs)
	}
	warnings := strings.Count(logs.String(), "API usage above 90%")
	if err := c.Check(context.Background()); err != nil { // same percent: no new warning
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "API usage above 90%"); n != warnings {
		t.Errorf("%d warnings after a call within the same percent, want %d", n, warnings)
	}

	// Past the limit, calls are refused with 403 REQUEST_LIMIT_EXCEEDED: transient.
	srv.SetAPIUsage(emulator.DefaultDailyAPILimit)
	err := c.Check(context.Background())
	if connectors.KindOf(err) != connectors.Transient || !strings.Contains(err.Error(), "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("Check past the limit: %v (kind %v)", err, connectors.KindOf(err))
	}
}

func TestEmulatorSameKeyTwiceInABatch(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	older, newer := member("K-1", 10, "Bronze"), member("k-1", 20, "Silver") // same key, other case
	delete(newer.Fields, "ProgramId")
	resp := write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt,
		Records: []connectors.Record{older, member("K-2", 5, "Gold"), newer}})
	id := wantApplied(t, resp, 0)
	wantApplied(t, resp, 1)
	if id2 := wantApplied(t, resp, 2); id2 != id {
		t.Errorf("the same key gave ids %s and %s", id, id2)
	}
	if resp.Calls != 2 {
		t.Errorf("Calls = %d, want 2 (the repeated key waits for a second call)", resp.Calls)
	}
	if got, _ := srv.Get(memberObj, id); got["Points_Balance__c"] != 20.0 || got["Tier__c"] != "Silver" {
		t.Errorf("member after two versions in one batch: %v, want the later one", got)
	}
}

func TestEmulatorConcurrentWritesReloginOnce(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.ExpireSessions()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Write(context.Background(), connectors.WriteRequest{Object: "Contact", Operation: connectors.Upsert,
				ExternalIDField: memberExt, Records: []connectors.Record{contact(fmt.Sprintf("G-%d", g))}})
			if err == nil && resp.Results[0].Status != connectors.StatusApplied {
				err = fmt.Errorf("goroutine %d: %+v", g, resp.Results[0])
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.Stats().TokensIssued; n != 2 {
		t.Errorf("%d tokens issued, want 2 (the first login and one re-login)", n)
	}
	if n := len(srv.Records("Contact")); n != 8 {
		t.Errorf("org holds %d contacts, want 8", n)
	}
}

func TestEmulatorReloginFailure(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.ExpireSessions()
	if _, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultUnavailable, Operations: []string{"auth"}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	req := connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: []connectors.Record{contact("R-1")}}
	if _, err := c.Write(context.Background(), req); connectors.KindOf(err) != connectors.Transient {
		t.Errorf("Write while the token endpoint is down: %v (kind %v), want transient", err, connectors.KindOf(err))
	}
	wantApplied(t, write(t, c, req), 0)
}

func TestEmulatorTimeouts(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, map[string]any{"timeout": "300ms"})
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := connectors.WriteRequest{Object: "Contact", Operation: connectors.Insert, Records: []connectors.Record{contact("T-1")}}

	// The configured timeout bounds a slow call.
	if _, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 2 * time.Second, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Write(context.Background(), req)
	if connectors.KindOf(err) != connectors.Transient || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("slow call: %v (kind %v) after %s; want transient within the 300ms timeout", err, connectors.KindOf(err), time.Since(start))
	}

	// So does the caller's context.
	c2, _ := connect(t, srv, nil)
	if err := c2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 2 * time.Second, Count: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c2.Write(ctx, req)
	if connectors.KindOf(err) != connectors.Transient || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("cancelled call: %v (kind %v) after %s; want transient at once", err, connectors.KindOf(err), time.Since(start))
	}

	// And the login, which go-salesforce makes without a timeout.
	if _, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 1500 * time.Millisecond, Operations: []string{"auth"}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	c3, _ := connect(t, srv, map[string]any{"timeout": "300ms"})
	start = time.Now()
	err = c3.Check(context.Background())
	if connectors.KindOf(err) != connectors.Transient || time.Since(start) > time.Second {
		t.Errorf("slow login: %v (kind %v) after %s; want transient within the timeout", err, connectors.KindOf(err), time.Since(start))
	}
}

func TestEmulatorUpsertDropsCreateOnlyFieldsOnUpdate(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	req := connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt,
		Records: []connectors.Record{member("M-1", 10, "Bronze"), member("M-2", 20, "Silver")}}
	first := write(t, c, req)
	id1, id2 := wantApplied(t, first, 0), wantApplied(t, first, 1)

	// The same mapping output again (ProgramId included, as a mapping sets it
	// for the records it creates): Salesforce refuses ProgramId on an update,
	// so the connector sends those records again without it.
	req.Records = []connectors.Record{member("M-1", 11, "Gold"), member("M-2", 21, "Gold"), member("M-3", 31, "Gold")}
	second := write(t, c, req)
	for i, want := range []string{id1, id2} {
		if id := wantApplied(t, second, i); id != want {
			t.Errorf("record %d: id %s, want %s", i, id, want)
		}
	}
	id3 := wantApplied(t, second, 2)
	if got, _ := srv.Get(memberObj, id3); got["ProgramId"] != emulator.DefaultProgramID {
		t.Errorf("created member has ProgramId %v, want %s", got["ProgramId"], emulator.DefaultProgramID)
	}
	if got, _ := srv.Get(memberObj, id1); got["Points_Balance__c"] != 11.0 {
		t.Errorf("updated member = %v, want points 11", got)
	}
	// One call, then one more for the two updates (the describe that finds
	// the create-only fields is made once per connector and not counted).
	if second.Calls != 2 {
		t.Errorf("second upsert took %d calls, want 2 (upsert, resend)", second.Calls)
	}

	// With the target ids known (from the hub's cross-reference), the
	// create-only fields are left out up front: one call.
	req.Records = []connectors.Record{member("M-1", 12, "Gold"), member("M-2", 22, "Gold")}
	req.Records[0].TargetID, req.Records[1].TargetID = id1, id2
	third := write(t, c, req)
	wantApplied(t, third, 0)
	wantApplied(t, third, 1)
	if third.Calls != 1 {
		t.Errorf("upsert with known target ids took %d calls, want 1", third.Calls)
	}
}

// Keys that Salesforce takes as one (compared as the hub folds keys,
// connectors.KeysCaseInsensitive.Fold) never share a call, in either write
// path: the later one is written after the earlier one, not refused.
func TestEmulatorKeysFoldedAsOneWaitForTheNextCall(t *testing.T) {
	for _, threshold := range []int{-1, 2} {
		t.Run(fmt.Sprintf("bulk_threshold=%d", threshold), func(t *testing.T) {
			srv := startEmulator(t, nil)
			c, _ := connect(t, srv, map[string]any{"bulk_threshold": threshold})
			older, newer := member("ς-1", 10, "Bronze"), member("Σ-1", 20, "Silver") // final and capital sigma
			delete(newer.Fields, "ProgramId")
			resp := write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt,
				Records: []connectors.Record{older, member("K-2", 5, "Gold"), newer}})
			id := wantApplied(t, resp, 0)
			wantApplied(t, resp, 1)
			if id2 := wantApplied(t, resp, 2); id2 != id {
				t.Errorf("one key gave ids %s and %s", id, id2)
			}
			if got, _ := srv.Get(memberObj, id); got["Points_Balance__c"] != 20.0 {
				t.Errorf("member after two versions in one batch: %v, want the later one", got)
			}
		})
	}
}
