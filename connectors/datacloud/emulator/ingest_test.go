package emulator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInsertThenUpsert(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	res := do(t, "POST", base+membersPath, tok, data(member("M-2"), member("M-1", "tier", "Silver")))
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	assert.Equal(t, map[string]any{"accepted": true}, res.object(t))

	// The same primary key again replaces the whole record: fields not sent are gone.
	res = do(t, "POST", base+membersPath, tok, data(map[string]any{
		"membership_number": "M-1", "tier": "Platinum", "points_balance": 900, "email": nil, "status": "",
	}))
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)

	recs := srv.Records("loyalty_members")
	require.Len(t, recs, 2)
	assert.Equal(t, map[string]any{"membership_number": "M-1", "tier": "Platinum", "points_balance": float64(900), "email": nil, "status": ""}, recs[0])
	assert.Equal(t, member("M-2"), recs[1])
	assert.Empty(t, srv.Records("loyalty_transactions"))
	assert.Nil(t, srv.Records("nope"))
	assert.Equal(t, 2, srv.Calls()["ingest.upsert"])

	// Records returns copies.
	recs[0]["tier"] = "changed"
	assert.Equal(t, "Platinum", srv.Records("loyalty_members")[0]["tier"])
}

// Records of one request are applied in order: the last of a repeated key wins.
func TestUpsertSameKeyTwiceInOneRequest(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	txn := func(points float64) map[string]any {
		return map[string]any{"txn_id": "T-1", "membership_number": "M-1", "points": points, "amount": 25.9, "activity_ts": "2025-01-02T10:00:00Z"}
	}
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+txnsPath, tok, data(txn(10), txn(20))).status)
	recs := srv.Records("loyalty_transactions")
	require.Len(t, recs, 1)
	assert.Equal(t, float64(20), recs[0]["points"])
}

func TestProcessDelayAndFlush(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) { c.ProcessDelay = time.Hour })
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"), member("M-2"))).status)
	require.Equal(t, http.StatusAccepted, do(t, "DELETE", base+membersPath+"?ids=M-1", tok, nil).status)
	assert.Empty(t, srv.Records("loyalty_members"), "accepted, not processed yet")

	objs := do(t, "GET", base+"/__emulator/objects", "", nil).array(t)
	assert.Equal(t, float64(2), objs[0].(map[string]any)["pending"])

	srv.Flush()
	recs := srv.Records("loyalty_members")
	require.Len(t, recs, 1, "the insert, then the delete, in order")
	assert.Equal(t, "M-2", recs[0]["membership_number"])
}

func TestProcessDelayElapses(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) { c.ProcessDelay = 100 * time.Millisecond })
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status)
	assert.Empty(t, srv.Records("loyalty_members"))
	assert.Eventually(t, func() bool { return len(srv.Records("loyalty_members")) == 1 }, 2*time.Second, 10*time.Millisecond)
}

// without returns a copy of m without the keys.
func without(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// Each kind of invalid record: the request is refused whole (400), the error body names
// the record's index and the field, and nothing is stored.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		bad  any
		want string // the causing exception
	}{
		{"missing primary key", without(member("M-9"), "membership_number"), "#: required key [membership_number] not found"},
		{"null primary key", member("", "membership_number", nil), "#/membership_number: the primary key must have a value; expected type: String, found: Null"},
		{"empty primary key", member(""), "#/membership_number: the primary key must have a value, found an empty string"},
		{"unknown field", member("M-9", "colour", "red"), "#: extraneous key [colour] is not permitted"},
		{"field names are case-sensitive", without(member("M-9", "Tier", "Gold"), "tier"), "#: extraneous key [Tier] is not permitted"},
		{"number as string", member("M-9", "points_balance", "12"), "#/points_balance: expected type: Number, found: String"},
		{"string as number", member("M-9", "tier", 3), "#/tier: expected type: String, found: Number"},
		{"string as boolean", member("M-9", "status", true), "#/status: expected type: String, found: Boolean"},
		{"object value", member("M-9", "email", map[string]any{"a": 1}), "#/email: expected type: String, found: JSONObject"},
		{"array value", member("M-9", "points_balance", []any{1}), "#/points_balance: expected type: Number, found: JSONArray"},
		{"datetime without zone", member("M-9", "updated_at", "2025-01-02T10:00:00.000"), "#/updated_at: [2025-01-02T10:00:00.000] is not a valid date-time"},
		{"datetime with offset", member("M-9", "updated_at", "2025-01-02T10:00:00+02:00"), "#/updated_at: [2025-01-02T10:00:00+02:00] is not a valid date-time"},
		{"datetime microseconds", member("M-9", "updated_at", "2025-01-02T10:00:00.123456Z"), "#/updated_at: [2025-01-02T10:00:00.123456Z] is not a valid date-time"},
		{"datetime date only", member("M-9", "updated_at", "2025-01-02"), "#/updated_at: [2025-01-02] is not a valid date-time"},
		{"datetime month 13", member("M-9", "updated_at", "2025-13-02T10:00:00.000Z"), "#/updated_at: [2025-13-02T10:00:00.000Z] is not a valid date-time"},
		{"datetime as number", member("M-9", "updated_at", 1735812000), "#/updated_at: expected type: String, found: Number"},
		{"not an object", "M-9", "#: expected type: JSONObject, found: String"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := start(t, nil)
			tok := dcToken(t, base)
			res := do(t, "POST", base+membersPath, tok, data(member("M-1"), tt.bad, member("M-2")))
			require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
			body := res.object(t)
			assert.Equal(t, "Bad Request", body["error"])
			assert.Equal(t, "COMMON_ERROR_GENERIC", body["internalErrorCode"])
			assert.Equal(t, "uri="+membersPath, body["path"])
			assert.NotEmpty(t, body["timestamp"])
			assert.NotEmpty(t, body["tenantId"])
			msg := body["message"].(string)
			assert.True(t, strings.HasPrefix(msg, "Bad Request: JSON is properly formatted but has a mismatch with Schema. Record 1: "+tt.want), msg)

			report := body["details"].(map[string]any)["validationReport"].([]any)
			require.Len(t, report, 1, "%s", res.body)
			entry := report[0].(map[string]any)
			assert.Equal(t, float64(1), entry["recordIndex"])
			assert.NotEmpty(t, entry["record"])
			causes := entry["causingExceptions"].([]any)
			require.Len(t, causes, 1)
			assert.True(t, strings.HasPrefix(causes[0].(string), tt.want), causes[0])

			srv.Flush()
			assert.Empty(t, srv.Records("loyalty_members"), "nothing is stored")
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	res := do(t, "POST", base+membersPath, tok, data(
		member("M-0", "points_balance", "x", "tier", false),
		member("M-1"),
		without(member("M-2", "extra", 1), "membership_number"),
	))
	require.Equal(t, http.StatusBadRequest, res.status)
	body := res.object(t)
	assert.Contains(t, body["message"], "Record 0: #/points_balance: expected type: Number, found: String (and 3 more problems in 2 records; see details.validationReport)")
	report := body["details"].(map[string]any)["validationReport"].([]any)
	require.Len(t, report, 2)
	assert.Equal(t, float64(0), report[0].(map[string]any)["recordIndex"])
	assert.Equal(t, []any{"#/points_balance: expected type: Number, found: String", "#/tier: expected type: String, found: Boolean"}, report[0].(map[string]any)["causingExceptions"])
	assert.Equal(t, float64(2), report[1].(map[string]any)["recordIndex"])
	assert.Equal(t, []any{"#: required key [membership_number] not found", "#: extraneous key [extra] is not permitted"}, report[1].(map[string]any)["causingExceptions"])
	assert.Empty(t, srv.Records("loyalty_members"))
}

// Valid value forms: blank ("" or null) non-key fields, date-times with or without
// milliseconds, dates, booleans, partial records.
func TestValidValueForms(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) {
		c.Objects = append(c.Objects, emulator.Object{Name: "codes", Fields: []emulator.Field{
			{Name: "code", Type: emulator.FieldNumber, PrimaryKey: true},
			{Name: "valid_from", Type: emulator.FieldDate},
			{Name: "active", Type: emulator.FieldBoolean},
		}})
	})
	tok := dcToken(t, base)
	res := do(t, "POST", base+membersPath, tok, data(
		member("M-1", "updated_at", "2025-01-02T10:00:00Z"),
		member("M-2", "updated_at", "", "points_balance", "", "email", nil),
		map[string]any{"membership_number": "M-3"},
	))
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	assert.Len(t, srv.Records("loyalty_members"), 3)

	path := "/api/v1/ingest/sources/loyalty_hub/codes"
	res = do(t, "POST", base+path, tok, data(
		map[string]any{"code": 10, "valid_from": "2024-02-29", "active": true},
		map[string]any{"code": 9.5, "valid_from": "", "active": false},
	))
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	recs := srv.Records("codes")
	require.Len(t, recs, 2)
	assert.Equal(t, float64(9.5), recs[0]["code"], "number keys sort numerically")
	assert.Equal(t, map[string]any{"code": float64(10), "valid_from": "2024-02-29", "active": true}, recs[1])

	for _, bad := range []map[string]any{
		{"code": 1, "valid_from": "2025-02-30"},
		{"code": 1, "valid_from": "2025-1-2"},
		{"code": 1, "active": "true"},
		{"code": "1"},
	} {
		res := do(t, "POST", base+path, tok, data(bad))
		assert.Equal(t, http.StatusBadRequest, res.status, "%v: %s", bad, res.body)
	}

	// A number key is deleted by its value, however it is written.
	require.Equal(t, http.StatusAccepted, do(t, "DELETE", base+path+"?ids=10.0,9.50", tok, nil).status)
	assert.Empty(t, srv.Records("codes"))
}

func TestBadBodies(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	tests := []struct {
		name string
		body any
		want string
	}{
		{"not JSON", `{"data":[`, "Bad Request: JSON is not properly formatted"},
		{"two JSON values", `{"data":[]} {}`, "Bad Request: JSON is not properly formatted"},
		{"empty body", "", "the request body is empty"},
		{"array, not object", []any{member("M-1")}, `must be a JSON object {"data":[…]}, found: JSONArray`},
		{"no data", map[string]any{"records": []any{member("M-1")}}, `must have a "data" array of records, found: Null`},
		{"data not an array", map[string]any{"data": member("M-1")}, `must have a "data" array of records, found: JSONObject`},
		{"empty data", map[string]any{"data": []any{}}, `The "data" array is empty`},
		{"null data", map[string]any{"data": nil}, `found: Null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, "POST", base+membersPath, tok, tt.body)
			require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
			assert.Contains(t, res.object(t)["message"], tt.want)
		})
	}
	assert.Empty(t, srv.Records("loyalty_members"))
}

func TestBodySizeLimit(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	// Just under 200 KB: accepted.
	pad := strings.Repeat("x", 200*1024-400)
	res := do(t, "POST", base+membersPath, tok, data(member("M-1", "first_name", pad)))
	require.Equal(t, http.StatusAccepted, res.status, "%.300s", res.body)

	// 200 KB and more: 413, nothing stored.
	var recs []any
	for i := range 2000 {
		recs = append(recs, member(fmt.Sprintf("M-%04d", i)))
	}
	res = do(t, "POST", base+txnsPath, tok, data(recs...))
	require.Equal(t, http.StatusRequestEntityTooLarge, res.status)
	body := res.object(t)
	assert.Equal(t, http.StatusText(http.StatusRequestEntityTooLarge), body["error"])
	assert.Contains(t, body["message"], "less than 200 KB")
	assert.Len(t, srv.Records("loyalty_members"), 1)
}

func TestContentTypeMustBeJSON(t *testing.T) {
	_, base := start(t, nil)
	tok := dcToken(t, base)
	for _, ct := range []string{"text/plain", ""} {
		req, err := http.NewRequest("POST", base+membersPath, strings.NewReader(`{"data":[{"membership_number":"M-1"}]}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "Content-Type %q", ct)
	}
	req, err := http.NewRequest("POST", base+membersPath, strings.NewReader(`{"data":[{"membership_number":"M-1"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
}

func TestUnknownConnectorObjectAndPath(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	tests := []struct {
		name, method, path string
		status             int
		want               string
	}{
		{"unknown connector", "POST", "/api/v1/ingest/sources/other_hub/loyalty_members", 404, `no Ingestion API connector named "other_hub"`},
		{"connector name case", "POST", "/api/v1/ingest/sources/Loyalty_Hub/loyalty_members", 404, "connector names are case-sensitive"},
		{"unknown object", "POST", "/api/v1/ingest/sources/loyalty_hub/LoyaltyTxn", 404, `has no object named "LoyaltyTxn"; its objects are loyalty_members, loyalty_transactions`},
		{"unknown object on delete", "DELETE", "/api/v1/ingest/sources/loyalty_hub/nope?ids=1", 404, `no object named "nope"`},
		{"validation path", "POST", membersPath + "/actions/test", 404, "not a resource"},
		{"bulk jobs", "POST", "/api/v1/ingest/jobs", 404, "not a resource"},
		{"wrong method", "PUT", membersPath, 405, "supports POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.method, base+tt.path, tok, data(member("M-1")))
			require.Equal(t, tt.status, res.status, "%s", res.body)
			body := res.object(t)
			assert.Contains(t, body["message"], tt.want)
			assert.NotEmpty(t, body["error"])
		})
	}
	assert.Equal(t, "POST, DELETE", do(t, "PATCH", base+membersPath, tok, nil).header.Get("Allow"))
	assert.Empty(t, srv.Records("loyalty_members"))
}

func TestDeleteByQuery(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"), member("M-2"), member("M-3"), member("M-4"))).status)

	res := do(t, "DELETE", base+membersPath+"?ids=M-1,M-3,unknown", tok, nil)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	assert.Equal(t, map[string]any{"accepted": true}, res.object(t))
	// repeated ids parameters and a URL-encoded comma list work too
	require.Equal(t, http.StatusAccepted, do(t, "DELETE", base+membersPath+"?ids=M-2&ids=nope%2Cnone", tok, nil).status)

	recs := srv.Records("loyalty_members")
	require.Len(t, recs, 1)
	assert.Equal(t, "M-4", recs[0]["membership_number"])
	assert.Equal(t, 2, srv.Calls()["ingest.delete"])
}

func TestDeleteByBody(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"), member("M-2"), member("M-3"))).status)
	res := do(t, "DELETE", base+membersPath, tok, map[string]any{"ids": []string{"M-2", "never-there"}})
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	// query and body together: both are deleted
	require.Equal(t, http.StatusAccepted, do(t, "DELETE", base+membersPath+"?ids=M-1", tok, map[string]any{"ids": []string{"M-3"}}).status)
	assert.Empty(t, srv.Records("loyalty_members"))
}

func TestDeleteErrors(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status)
	ids := make([]string, 201)
	for i := range ids {
		ids[i] = fmt.Sprintf("M-%d", i)
	}
	tests := []struct {
		name  string
		query string
		body  any
		want  string
	}{
		{"no ids", "", nil, "no ids"},
		{"empty ids", "?ids=", nil, "no ids"},
		{"201 ids in the query", "?ids=" + strings.Join(ids, ","), nil, "201 ids; at most 200"},
		{"201 ids in the body", "", map[string]any{"ids": ids}, "201 ids; at most 200"},
		{"200 in the body and 1 in the query", "?ids=X", map[string]any{"ids": ids[:200]}, "201 ids; at most 200"},
		{"body without ids", "", map[string]any{"data": []any{"M-1"}}, `{"ids":[…]}`},
		{"ids not strings", "", map[string]any{"ids": []any{"M-1", true}}, "ids[1]: expected type: String, found: Boolean"},
		{"empty id", "", map[string]any{"ids": []any{""}}, "ids[0] is an empty string"},
		{"not JSON", "", "{", "JSON is not properly formatted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, "DELETE", base+membersPath+tt.query, tok, tt.body)
			require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
			assert.Contains(t, res.object(t)["message"], tt.want)
		})
	}
	// exactly 200 is accepted
	assert.Equal(t, http.StatusAccepted, do(t, "DELETE", base+membersPath, tok, map[string]any{"ids": ids[:200]}).status)
	assert.Len(t, srv.Records("loyalty_members"), 0, "M-1 was among the 200")
}
