package emulator_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	salesforce "github.com/k-capehart/go-salesforce/v3"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const jobs = v + "/jobs/ingest"

// doCSV sends a CSV body with Content-Type text/csv.
func doCSV(t *testing.T, method, u, tok, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: data}
}

// createJob creates an ingest job and returns its id.
func createJob(t *testing.T, base, tok string, spec map[string]any) string {
	t.Helper()
	r := do(t, "POST", base+jobs, tok, spec)
	require.Equal(t, 200, r.status, string(r.body))
	info := r.json(t).(map[string]any)
	require.Equal(t, "Open", info["state"])
	return info["id"].(string)
}

// runJob uploads each CSV to a new job, closes it and waits until it is over.
func runJob(t *testing.T, base, tok string, spec map[string]any, uploads ...string) (string, map[string]any) {
	t.Helper()
	id := createJob(t, base, tok, spec)
	for _, u := range uploads {
		r := doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, u)
		require.Equal(t, 201, r.status, string(r.body))
	}
	r := do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "UploadComplete"})
	require.Equal(t, 200, r.status, string(r.body))
	return id, waitJob(t, base, tok, id)
}

// waitJob polls the job until it is JobComplete, Failed or Aborted.
func waitJob(t *testing.T, base, tok, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", base+jobs+"/"+id, tok, nil)
		require.Equal(t, 200, r.status, string(r.body))
		info := r.json(t).(map[string]any)
		switch info["state"] {
		case "JobComplete", "Failed", "Aborted":
			return info
		}
		require.True(t, time.Now().Before(deadline), "job %s still %s", id, info["state"])
		time.Sleep(5 * time.Millisecond)
	}
}

// results reads one results resource of a job as CSV rows (the header first).
func results(t *testing.T, base, tok, id, which string) [][]string {
	t.Helper()
	r := do(t, "GET", base+jobs+"/"+id+"/"+which, tok, nil)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "text/csv", r.header.Get("Content-Type"))
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	require.NoError(t, err, string(r.body))
	return rows
}

func waitBulk(t *testing.T, srv *emulator.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.WaitBulkJobs(ctx))
}

func TestGoSalesforceBulk(t *testing.T) {
	srv, base := startWithToken(t, nil)
	sf := login(t, clientCreds(base))

	ids, err := sf.InsertBulk("LoyaltyProgramMember", members(0, 250), 100, true)
	require.NoError(t, err)
	require.Len(t, ids, 3, "250 records in jobs of 100")
	for _, id := range ids {
		assert.Regexp(t, `^750[0-9A-Za-z]{15}$`, id)
	}
	waitBulk(t, srv) // go-salesforce only waits for the first job to end
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 250)
	processed := 0
	for _, j := range srv.BulkJobs() {
		assert.Equal(t, "JobComplete", j.State)
		assert.Equal(t, "insert", j.Operation)
		assert.Zero(t, j.RecordsFailed)
		processed += j.RecordsProcessed
	}
	assert.Equal(t, 250, processed)

	// upsert 250 existing (a tier change) and 50 new records without waiting; every map
	// has the same keys, as go-salesforce takes the CSV header from the first record
	up := members(200, 100, "Tier__c", "Silver")
	for i, m := range up {
		if i < 50 {
			m["ProgramId"] = nil // an empty cell: not updateable, left out
		}
	}
	ids, err = sf.UpsertBulk("LoyaltyProgramMember", "Ledger_Member_Id__c", up, 1000, false)
	require.NoError(t, err)
	require.Len(t, ids, 1)
	waitBulk(t, srv)
	res, err := sf.GetJobResults(ids[0])
	require.NoError(t, err)
	assert.Equal(t, "JobComplete", res.State)
	assert.Zero(t, res.NumberRecordsFailed)
	require.Len(t, res.SuccessfulRecords, 100)
	assert.Empty(t, res.FailedRecords)
	created := map[any]int{}
	for _, r := range res.SuccessfulRecords {
		created[r["sf__Created"]]++
	}
	assert.Equal(t, map[any]int{"false": 50, "true": 50}, created)
	first := res.SuccessfulRecords[0]
	assert.Equal(t, "LM-00200", first["Ledger_Member_Id__c"], "rows come back in upload order with their columns")
	byKey := srv.Find("LoyaltyProgramMember", "Ledger_Member_Id__c", "LM-00200")
	require.Len(t, byKey, 1)
	assert.Equal(t, byKey[0]["Id"], first["sf__Id"])
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 300)
	assert.Len(t, srv.Find("LoyaltyProgramMember", "Tier__c", "Silver"), 100)

	all := srv.Records("LoyaltyProgramMember")
	updates := make([]map[string]any, 10)
	for i := range updates {
		updates[i] = map[string]any{"Id": all[i]["Id"], "MemberStatus": "Inactive"}
	}
	_, err = sf.UpdateBulk("LoyaltyProgramMember", updates, 1000, true)
	require.NoError(t, err)
	assert.Len(t, srv.Find("LoyaltyProgramMember", "MemberStatus", "Inactive"), 10)

	deletes := make([]map[string]any, 10)
	for i := range deletes {
		deletes[i] = map[string]any{"Id": all[i]["Id"]}
	}
	ids, err = sf.DeleteBulk("LoyaltyProgramMember", deletes, 1000, true)
	require.NoError(t, err)
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 290)
	res, err = sf.GetJobResults(ids[0])
	require.NoError(t, err)
	require.Len(t, res.SuccessfulRecords, 10)
	assert.Equal(t, all[0]["Id"], res.SuccessfulRecords[0]["sf__Id"])
	assert.Equal(t, "false", res.SuccessfulRecords[0]["sf__Created"])

	st := srv.Stats()
	assert.Equal(t, 6, st.Calls["bulk.createJob"])
	assert.Equal(t, 6, st.Calls["bulk.upload"])
	assert.Equal(t, 6, st.Calls["bulk.updateJob"])
	assert.Equal(t, 4, st.Calls["bulk.results"], "two GetJobResults read both results")
	assert.Equal(t, 6, st.BulkJobs["JobComplete"])
}

func TestGoSalesforceBulkFailures(t *testing.T) {
	srv, base := startWithToken(t, nil)
	sf := login(t, passwordCreds(base), salesforce.WithCompressionHeaders(true))

	contacts := []map[string]any{
		{"LastName": "Lovelace", "Loyalty_Tier__c": "Gold", "Loyalty_Points__c": 10, "Birthdate": "1815-12-10"},
		{"LastName": "Hopper", "Loyalty_Tier__c": "Diamond", "Loyalty_Points__c": 20, "Birthdate": nil},
		{"LastName": nil, "Loyalty_Tier__c": "Gold", "Loyalty_Points__c": 30, "Birthdate": nil},
		{"LastName": "Turing", "Loyalty_Tier__c": nil, "Loyalty_Points__c": "lots", "Birthdate": nil},
		{"LastName": "Noether", "Loyalty_Tier__c": nil, "Loyalty_Points__c": nil, "Birthdate": "23/03/1882"},
	}
	ids, err := sf.InsertBulk("Contact", contacts, 100, true)
	require.NoError(t, err, "per-record failures are not a job failure")
	res, err := sf.GetJobResults(ids[0])
	require.NoError(t, err)
	assert.Equal(t, "JobComplete", res.State)
	assert.Equal(t, 4, res.NumberRecordsFailed)
	require.Len(t, res.SuccessfulRecords, 1)
	assert.Equal(t, "Lovelace", res.SuccessfulRecords[0]["LastName"])
	assert.Equal(t, "true", res.SuccessfulRecords[0]["sf__Created"])
	require.Len(t, res.FailedRecords, 4)
	errs := make([]string, len(res.FailedRecords))
	for i, r := range res.FailedRecords {
		errs[i] = r["sf__Error"].(string)
		assert.Equal(t, "", r["sf__Id"])
	}
	assert.Equal(t, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Loyalty Tier: bad value for restricted picklist field: Diamond", errs[0])
	assert.Equal(t, "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]", errs[1])
	assert.Regexp(t, `^INVALID_FIELD:Failed to deserialize field at col [1-4]\. Due to, 'lots' is not a valid value for the type xsd:double$`, errs[2])
	assert.Contains(t, errs[3], "'23/03/1882' is not a valid value for the type xsd:date")
	assert.Equal(t, "Diamond", res.FailedRecords[0]["Loyalty_Tier__c"], "failed rows keep their values")
	recs := srv.Records("Contact")
	require.Len(t, recs, 1)
	assert.Equal(t, "1815-12-10", recs[0]["Birthdate"])
	assert.Equal(t, 10.0, recs[0]["Loyalty_Points__c"])

	// a job that fails as a whole is an error for go-salesforce
	_, err = sf.InsertBulk("Contact", []map[string]any{{"LastName": "X", "Shoe_Size__c": 42}}, 100, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "InvalidBatch : Field name not found : Shoe_Size__c")
	// an unknown object is refused when the job is created (without compression:
	// go-salesforce v3.1.0 reads gzipped error bodies without decompressing them)
	sf = login(t, passwordCreds(base))
	_, err = sf.InsertBulk("Planet__c", []map[string]any{{"Name": "Mars"}}, 100, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "INVALIDJOB")
	assert.Contains(t, err.Error(), "Planet__c")
	assert.Len(t, srv.Records("Contact"), 1)
}

func TestBulkHTTPFlow(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	existing, err := srv.Insert("Contact", map[string]any{"LastName": "Old", "Ledger_Member_Id__c": "L-1"})
	require.NoError(t, err)

	r := do(t, "POST", base+jobs, tok, map[string]any{"object": "contact", "operation": "upsert",
		"externalIdFieldName": "ledger_member_id__c", "contentType": "CSV", "lineEnding": "LF"})
	require.Equal(t, 200, r.status, string(r.body))
	info := r.json(t).(map[string]any)
	id := info["id"].(string)
	assert.Regexp(t, `^750[0-9A-Za-z]{15}$`, id)
	assert.Equal(t, map[string]any{
		"id": id, "operation": "upsert", "object": "Contact", "createdById": info["createdById"],
		"createdDate": info["createdDate"], "systemModstamp": info["systemModstamp"], "state": "Open",
		"externalIdFieldName": "Ledger_Member_Id__c", "concurrencyMode": "Parallel", "contentType": "CSV",
		"apiVersion": 63.0, "contentUrl": "services/data/v63.0/jobs/ingest/" + id + "/batches", "jobType": "V2Ingest",
		"lineEnding": "LF", "columnDelimiter": "COMMA",
	}, info)
	assert.Regexp(t, `^005`, info["createdById"])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$`, info["createdDate"])
	assert.Contains(t, string(r.body), `"apiVersion":63.0`)

	// two uploads; the second has its columns in another order and one more column
	r = doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, "Ledger_Member_Id__c,LastName,Loyalty_Points__c\nL-1,Lovelace,10\nL-2,Hopper,20.5\n")
	require.Equal(t, 201, r.status, string(r.body))
	assert.Empty(t, r.body)
	r = doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, "LastName,Ledger_Member_Id__c,Loyalty_Tier__c\nTuring,L-3,Gold\nBad,L-4,Diamond\n")
	require.Equal(t, 201, r.status, string(r.body))

	r = do(t, "GET", base+jobs+"/"+id+"/successfulResults", tok, nil)
	assert.Equal(t, 409, r.status, "no results before the job is over")
	assert.Equal(t, "INVALIDJOBSTATE", r.errs(t)[0]["errorCode"])

	r = do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"id": id, "state": "UploadComplete"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "UploadComplete", r.json(t).(map[string]any)["state"])
	r = doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, "LastName\nLate\n")
	assert.Equal(t, 409, r.status, "a closed job takes no more data")
	assert.Equal(t, "INVALIDJOBSTATE", r.errs(t)[0]["errorCode"])

	info = waitJob(t, base, tok, id)
	assert.Equal(t, "JobComplete", info["state"])
	assert.Equal(t, 4.0, info["numberRecordsProcessed"])
	assert.Equal(t, 1.0, info["numberRecordsFailed"])
	for _, k := range []string{"retries", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"} {
		assert.Contains(t, info, k)
	}
	assert.NotContains(t, info, "errorMessage")

	l2 := srv.Find("Contact", "Ledger_Member_Id__c", "L-2")
	l3 := srv.Find("Contact", "Ledger_Member_Id__c", "L-3")
	require.Len(t, l2, 1)
	require.Len(t, l3, 1)
	assert.Equal(t, [][]string{
		{"sf__Id", "sf__Created", "Ledger_Member_Id__c", "LastName", "Loyalty_Points__c", "Loyalty_Tier__c"},
		{existing, "false", "L-1", "Lovelace", "10", ""},
		{l2[0]["Id"].(string), "true", "L-2", "Hopper", "20.5", ""},
		{l3[0]["Id"].(string), "true", "L-3", "Turing", "", "Gold"},
	}, results(t, base, tok, id, "successfulResults"))
	assert.Equal(t, [][]string{
		{"sf__Id", "sf__Error", "Ledger_Member_Id__c", "LastName", "Loyalty_Points__c", "Loyalty_Tier__c"},
		{"", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Loyalty Tier: bad value for restricted picklist field: Diamond", "L-4", "Bad", "", "Diamond"},
	}, results(t, base, tok, id, "failedResults"))
	assert.Equal(t, [][]string{{"Ledger_Member_Id__c", "LastName", "Loyalty_Points__c", "Loyalty_Tier__c"}},
		results(t, base, tok, id, "unprocessedrecords"))
	rec, _ := srv.Get("Contact", existing)
	assert.Equal(t, "Lovelace", rec["LastName"])
	assert.Equal(t, 10.0, rec["Loyalty_Points__c"])
	assert.Equal(t, 20.5, l2[0]["Loyalty_Points__c"])

	// the raw results: sf__ columns and values quoted, as Salesforce writes them
	r = do(t, "GET", base+jobs+"/"+id+"/failedResults/", tok, nil)
	assert.Equal(t, `"sf__Id","sf__Error",Ledger_Member_Id__c,LastName,Loyalty_Points__c,Loyalty_Tier__c`+"\n"+
		`"","INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Loyalty Tier: bad value for restricted picklist field: Diamond","L-4","Bad","","Diamond"`+"\n", string(r.body))

	// an aborted job: its rows are unprocessed
	abortID := createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
	r = doCSV(t, "PUT", base+jobs+"/"+abortID+"/batches", tok, "LastName,Title\nA,\"Chief, \"\"Ops\"\"\"\nB,\n")
	require.Equal(t, 201, r.status)
	r = doCSV(t, "PUT", base+jobs+"/"+abortID+"/batches", tok, "LastName\nC\n")
	require.Equal(t, 201, r.status)
	r = do(t, "PATCH", base+jobs+"/"+abortID, tok, map[string]any{"id": abortID, "state": "Aborted"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "Aborted", r.json(t).(map[string]any)["state"])
	assert.Equal(t, [][]string{{"LastName", "Title"}, {"A", `Chief, "Ops"`}, {"B", ""}, {"C", ""}},
		results(t, base, tok, abortID, "unprocessedrecords"))
	assert.Equal(t, [][]string{{"sf__Id", "sf__Created", "LastName", "Title"}}, results(t, base, tok, abortID, "successfulResults"))
	r = do(t, "PATCH", base+jobs+"/"+abortID, tok, map[string]any{"state": "Aborted"})
	assert.Equal(t, 409, r.status, "an aborted job stays aborted")
	r = do(t, "PATCH", base+jobs+"/"+abortID, tok, map[string]any{"state": "UploadComplete"})
	assert.Equal(t, 409, r.status)
	assert.Len(t, srv.Records("Contact"), 3, "nothing of the aborted job is written")

	// the list of jobs
	r = do(t, "GET", base+jobs, tok, nil)
	require.Equal(t, 200, r.status)
	var list struct {
		Done           bool             `json:"done"`
		Records        []map[string]any `json:"records"`
		NextRecordsURL *string          `json:"nextRecordsUrl"`
	}
	require.NoError(t, json.Unmarshal(r.body, &list))
	assert.True(t, list.Done)
	assert.Nil(t, list.NextRecordsURL)
	require.Len(t, list.Records, 2)
	assert.Equal(t, id, list.Records[0]["id"])
	assert.Equal(t, "Aborted", list.Records[1]["state"])
	assert.Contains(t, string(r.body), `"nextRecordsUrl":null`)
	r = do(t, "GET", base+jobs+"?jobType=Classic", tok, nil)
	assert.Empty(t, r.json(t).(map[string]any)["records"])

	// the Go and admin views
	j, ok := srv.BulkJob(id)
	require.True(t, ok)
	assert.Equal(t, emulator.BulkJobInfo{ID: id, Object: "Contact", Operation: "upsert", ExternalIDFieldName: "Ledger_Member_Id__c",
		State: "JobComplete", CreatedDate: j.CreatedDate, Uploads: 2, UploadedBytes: j.UploadedBytes, RecordsProcessed: 4, RecordsFailed: 1}, j)
	assert.Positive(t, j.UploadedBytes)
	resp, err := http.Get(base + "/__emulator/jobs")
	require.NoError(t, err)
	var adminJobs []emulator.BulkJobInfo
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&adminJobs))
	resp.Body.Close()
	require.Len(t, adminJobs, 2)
	assert.Equal(t, "Aborted", adminJobs[1].State)
	assert.Equal(t, map[string]int{"JobComplete": 1, "Aborted": 1}, srv.Stats().BulkJobs)

	// deleting jobs
	assert.Equal(t, 204, do(t, "DELETE", base+jobs+"/"+id, tok, nil).status)
	assert.Equal(t, 404, do(t, "GET", base+jobs+"/"+id, tok, nil).status)
	assert.Equal(t, 404, do(t, "GET", base+jobs+"/"+id+"/successfulResults", tok, nil).status)
	openID := createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
	r = do(t, "DELETE", base+jobs+"/"+openID, tok, nil)
	assert.Equal(t, 409, r.status, "an open job is aborted before it is deleted")
	require.NoError(t, srv.Reset())
	assert.Empty(t, srv.BulkJobs(), "a reset drops the jobs")
}

func TestBulkErrors(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.BulkUploadLimit = 1024 })
	tok := token(t, base)

	tests := []struct {
		name     string
		body     any
		wantCode string
		wantMsg  string
	}{
		{"bad operation", map[string]any{"object": "Contact", "operation": "merge"}, "INVALIDJOB", "Invalid operation: merge"},
		{"operation case", map[string]any{"object": "Contact", "operation": "Insert"}, "INVALIDJOB", "Invalid operation: Insert"},
		{"no operation", map[string]any{"object": "Contact"}, "INVALIDJOB", "operation is required"},
		{"hard delete", map[string]any{"object": "Contact", "operation": "hardDelete"}, "INVALIDJOB", "hardDelete"},
		{"unknown object", map[string]any{"object": "Planet__c", "operation": "insert"}, "INVALIDJOB", "Unable to find object: Planet__c"},
		{"no object", map[string]any{"operation": "insert"}, "INVALIDJOB", "object is required"},
		{"upsert without key", map[string]any{"object": "Contact", "operation": "upsert"}, "INVALIDJOB", "External ID was blank for Contact"},
		{"upsert on a plain field", map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "LastName"},
			"INVALIDJOB", "Field name provided, LastName does not match an External ID"},
		{"upsert on no field", map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Nope__c"}, "INVALIDJOB", "Nope__c"},
		{"content type", map[string]any{"object": "Contact", "operation": "insert", "contentType": "JSON"}, "INVALIDJOB", "Invalid contentType: JSON"},
		{"line ending", map[string]any{"object": "Contact", "operation": "insert", "lineEnding": "CR"}, "INVALIDJOB", "Invalid lineEnding: CR"},
		{"delimiter", map[string]any{"object": "Contact", "operation": "insert", "columnDelimiter": "SPACE"}, "INVALIDJOB", "Invalid columnDelimiter: SPACE"},
		{"assignment rule", map[string]any{"object": "Contact", "operation": "insert", "assignmentRuleId": "nope"}, "INVALIDJOB", "Invalid assignmentRuleId"},
		{"bad JSON", `{"object":`, "JSON_PARSER_ERROR", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", base+jobs, tok, tt.body)
			require.Equal(t, 400, r.status, string(r.body))
			e := r.errs(t)
			require.Len(t, e, 1)
			assert.Equal(t, tt.wantCode, e[0]["errorCode"])
			assert.Contains(t, e[0]["message"], tt.wantMsg)
		})
	}

	id := createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
	unknown := "750Em0000000zzz"
	checks := []struct {
		name       string
		r          result
		wantStatus int
		wantCode   string
	}{
		{"get an unknown job", do(t, "GET", base+jobs+"/"+unknown, tok, nil), 404, "NOT_FOUND"},
		{"get a malformed id", do(t, "GET", base+jobs+"/nope", tok, nil), 404, "NOT_FOUND"},
		{"upload to an unknown job", doCSV(t, "PUT", base+jobs+"/"+unknown+"/batches", tok, "LastName\nA\n"), 404, "NOT_FOUND"},
		{"upload JSON", do(t, "PUT", base+jobs+"/"+id+"/batches", tok, map[string]any{"LastName": "A"}), 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"empty upload", doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, ""), 400, "INVALIDJOB"},
		{"upload too large", doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, "LastName\n"+strings.Repeat("A\n", 600)), 413, "REQUEST_TOO_LARGE"},
		{"set a state a client can't set", do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "JobComplete"}), 400, "INVALIDJOB"},
		{"no state", do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{}), 400, "INVALIDJOB"},
		{"another job's id in the body", do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"id": unknown, "state": "Aborted"}), 400, "INVALIDJOB"},
		{"results of an open job", do(t, "GET", base+jobs+"/"+id+"/failedResults", tok, nil), 409, "INVALIDJOBSTATE"},
		{"unprocessed records of an open job", do(t, "GET", base+jobs+"/"+id+"/unprocessedrecords", tok, nil), 409, "INVALIDJOBSTATE"},
		{"delete an open job", do(t, "DELETE", base+jobs+"/"+id, tok, nil), 409, "INVALIDJOBSTATE"},
		{"query jobs", do(t, "POST", base+v+"/jobs/query", tok, map[string]any{"operation": "query", "query": "SELECT Id FROM Contact"}), 404, "NOT_FOUND"},
		{"unknown job resource", do(t, "GET", base+jobs+"/"+id+"/batches/1", tok, nil), 404, "NOT_FOUND"},
		{"wrong method", do(t, "PUT", base+jobs, tok, nil), 405, "METHOD_NOT_ALLOWED"},
		{"before API 41.0", do(t, "GET", base+"/services/data/v40.0/jobs/ingest", tok, nil), 404, "NOT_FOUND"},
		{"no session", do(t, "GET", base+jobs, "", nil), 401, "INVALID_SESSION_ID"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.wantStatus, c.r.status, string(c.r.body))
			assert.Equal(t, c.wantCode, c.r.errs(t)[0]["errorCode"])
		})
	}
	r := do(t, "POST", base+v+"/jobs/query", tok, map[string]any{})
	assert.Contains(t, r.errs(t)[0]["message"], "not emulated")

	// bulk resources are not composite subrequests
	r = do(t, "POST", base+v+"/composite", tok, map[string]any{"compositeRequest": []map[string]any{
		{"method": "GET", "url": jobs + "/" + id, "referenceId": "job"}}})
	require.Equal(t, 200, r.status, string(r.body))
	sub := r.json(t).(map[string]any)["compositeResponse"].([]any)[0].(map[string]any)
	assert.Equal(t, 400.0, sub["httpStatusCode"])

	// a job whose data does not fit the object fails as a whole
	badID, info := runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"},
		"LastName,Shoe_Size__c\nA,42\nB,43\n")
	assert.Equal(t, "Failed", info["state"])
	assert.Equal(t, "InvalidBatch : Field name not found : Shoe_Size__c", info["errorMessage"])
	assert.Equal(t, 0.0, info["numberRecordsProcessed"])
	assert.Equal(t, [][]string{{"LastName", "Shoe_Size__c"}, {"A", "42"}, {"B", "43"}}, results(t, base, tok, badID, "unprocessedrecords"))
	assert.Equal(t, [][]string{{"sf__Id", "sf__Error", "LastName", "Shoe_Size__c"}}, results(t, base, tok, badID, "failedResults"))
	assert.Equal(t, 204, do(t, "DELETE", base+jobs+"/"+badID, tok, nil).status)

	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, "Account.Name,LastName\nAcme,A\n")
	assert.Contains(t, info["errorMessage"], "relationship columns are not emulated")
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, "LastName,Title\nA\n")
	assert.Equal(t, "Failed", info["state"])
	assert.Contains(t, info["errorMessage"], "has 1 values but the header has 2 columns")
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, "LastName,lastname\nA,B\n")
	assert.Contains(t, info["errorMessage"], "Duplicate field name")
}

func TestBulkCSVFormats(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)

	// quoted values with delimiters, line breaks and quotes, and a UTF-8 byte order mark
	data := "\ufeffLastName,MailingStreet,Description\n" +
		`"O""Brien, Jr.","1 Main St,` + "\n" + `Apt ""2""",plain` + "\n" +
		"Ünal,,\"\"\n"
	id, info := runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, data)
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	recs := srv.Records("Contact")
	require.Len(t, recs, 2)
	assert.Equal(t, `O"Brien, Jr.`, recs[0]["LastName"])
	assert.Equal(t, "1 Main St,\nApt \"2\"", recs[0]["MailingStreet"])
	assert.Equal(t, "plain", recs[0]["Description"])
	assert.Equal(t, "Ünal", recs[1]["LastName"])
	assert.Nil(t, recs[1]["MailingStreet"])
	ok := results(t, base, tok, id, "successfulResults")
	require.Len(t, ok, 3)
	assert.Equal(t, []string{recs[0]["Id"].(string), "true", `O"Brien, Jr.`, "1 Main St,\nApt \"2\"", "plain"}, ok[1])

	// CRLF line endings, with a line break inside a quoted value; results come back in CRLF
	id, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert", "lineEnding": "CRLF"},
		"LastName,Title\r\nCR,\"a\r\nb\"\r\nLF,c\r\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	cr := srv.Find("Contact", "LastName", "CR")
	require.Len(t, cr, 1)
	assert.Equal(t, "a\nb", cr[0]["Title"], "encoding/csv reads a quoted CRLF as LF")
	assert.Len(t, srv.Find("Contact", "Title", "c"), 1)
	r := do(t, "GET", base+jobs+"/"+id+"/successfulResults", tok, nil)
	assert.Equal(t, 3, strings.Count(string(r.body), "\r\n"), "the header and two rows end in CRLF: %q", r.body)
	assert.True(t, strings.HasSuffix(string(r.body), `"LF","c"`+"\r\n"), "%q", r.body)

	// line endings that do not match the job fail it
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, "LastName\r\nX\r\n")
	assert.Equal(t, "Failed", info["state"])
	assert.Equal(t, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF", info["errorMessage"])
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert", "lineEnding": "CRLF"}, "LastName\nX\n")
	assert.Equal(t, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF", info["errorMessage"])

	// other delimiters; results use the job's delimiter
	id, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert", "columnDelimiter": "PIPE"},
		"LastName|Title\nPipe|a,b\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	assert.Len(t, srv.Find("Contact", "Title", "a,b"), 1)
	r = do(t, "GET", base+jobs+"/"+id+"/successfulResults", tok, nil)
	assert.True(t, strings.HasPrefix(string(r.body), `"sf__Id"|"sf__Created"|LastName|Title`+"\n"), string(r.body))
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert", "columnDelimiter": "TAB"},
		"LastName\tTitle\nTab\tx\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	assert.Len(t, srv.Find("Contact", "LastName", "Tab"), 1)

	// values by type; an empty cell leaves a field alone, #N/A sets it to null
	vid, err := srv.Insert("Voucher", map[string]any{"EffectiveDate": "2025-01-01", "ExpirationDate": "2026-01-01",
		"VoucherCode": "V1", "FaceValue": 5, "Ledger_Voucher_Id__c": "LV-1"})
	require.NoError(t, err)
	_, info = runJob(t, base, tok, map[string]any{"object": "Voucher", "operation": "update"},
		"Id,EffectiveDateTime,FaceValue,DiscountPercent,ExpirationDate,VoucherCode,Status\n"+
			vid+",2025-03-04T05:06:07Z,1.5e2,12.5,#N/A,,Redeemed\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	require.Equal(t, 0.0, info["numberRecordsFailed"])
	rec, _ := srv.Get("Voucher", vid)
	assert.Equal(t, "2025-03-04T05:06:07.000+0000", rec["EffectiveDateTime"])
	assert.Equal(t, 150.0, rec["FaceValue"])
	assert.Equal(t, 12.5, rec["DiscountPercent"])
	assert.Nil(t, rec["ExpirationDate"])
	assert.Equal(t, "V1", rec["VoucherCode"], "an empty cell leaves the value")
	assert.Equal(t, "Redeemed", rec["Status"])

	cid, err := srv.Insert("Contact", map[string]any{"LastName": "Null", "Email": "n@example.com", "Loyalty_Tier__c": "Gold", "Title": "Boss"})
	require.NoError(t, err)
	id, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "update"},
		"Id,Loyalty_Tier__c,Email,Title,HasOptedOutOfEmail,Birthdate\n"+cid+",#N/A,,#N/A,TRUE,1990-02-03\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	rec, _ = srv.Get("Contact", cid)
	assert.Nil(t, rec["Loyalty_Tier__c"])
	assert.Nil(t, rec["Title"])
	assert.Equal(t, "n@example.com", rec["Email"])
	assert.Equal(t, true, rec["HasOptedOutOfEmail"])
	assert.Equal(t, "1990-02-03", rec["Birthdate"])
	assert.Equal(t, []string{cid, "false", cid, "#N/A", "", "#N/A", "TRUE", "1990-02-03"}, results(t, base, tok, id, "successfulResults")[1])

	// #N/A on a required field is a per-record error; bad values fail their row only
	id, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "update"},
		"Id,LastName,HasOptedOutOfEmail\n"+cid+",#N/A,\n"+cid+",,maybe\n003Em0000000zzz,X,\nnot-an-id,Y,\n,Z,\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	failed := results(t, base, tok, id, "failedResults")
	require.Len(t, failed, 6)
	assert.Equal(t, []string{cid, "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]", cid, "#N/A", ""}, failed[1])
	assert.Equal(t, "INVALID_FIELD:Failed to deserialize field at col 3. Due to, 'maybe' is not a valid value for the type xsd:boolean", failed[2][1])
	assert.Equal(t, "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id", failed[3][1])
	assert.Equal(t, "MALFORMED_ID:Contact ID: id value of incorrect type: not-an-id", failed[4][1])
	assert.Equal(t, "MISSING_ARGUMENT:Id not specified in an update call", failed[5][1])

	// delete, with the same errors as sObject Collections
	id, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "delete"},
		"Id\n"+cid+"\n"+cid+"\n"+vid+"\n")
	require.Equal(t, "JobComplete", info["state"], "%v", info)
	failed = results(t, base, tok, id, "failedResults")
	require.Len(t, failed, 3)
	assert.Equal(t, []string{cid, "ENTITY_IS_DELETED:entity is deleted", cid}, failed[1])
	assert.Equal(t, "MALFORMED_ID:Contact ID: id value of incorrect type: "+vid, failed[2][1])
	_, found := srv.Get("Contact", cid)
	assert.False(t, found)

	// upsert: repeated keys in a job fail both rows; upsert on Id creates rows without one
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Ledger_Member_Id__c"},
		"Ledger_Member_Id__c,LastName\nK-1,A\nk-1,B\nK-2,C\n,D\n")
	assert.Equal(t, 4.0, info["numberRecordsProcessed"])
	assert.Equal(t, 3.0, info["numberRecordsFailed"])
	id, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Id"},
		"Id,LastName\n,Fresh\n"+srv.Find("Contact", "Ledger_Member_Id__c", "K-2")[0]["Id"].(string)+",Renamed\n")
	assert.Equal(t, 0.0, info["numberRecordsFailed"], "%v", info)
	okRows := results(t, base, tok, id, "successfulResults")
	assert.Equal(t, "true", okRows[1][1])
	assert.Equal(t, "false", okRows[2][1])
	assert.Len(t, srv.Find("Contact", "LastName", "Renamed"), 1)
}

func TestBulkFaultsAndLimits(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) { c.DailyAPILimit = 50 })
	tok := token(t, base)

	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultUnavailable, Count: 1, Operations: []string{"bulk"}})
	require.NoError(t, err)
	assert.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status, "limits is not a bulk call")
	r := do(t, "POST", base+jobs, tok, map[string]any{"object": "Contact", "operation": "insert"})
	assert.Equal(t, 503, r.status)
	assert.Equal(t, "SERVER_UNAVAILABLE", r.errs(t)[0]["errorCode"])
	assert.Empty(t, srv.BulkJobs())

	id := createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 1, Operations: []string{"bulk.getJob"}})
	require.NoError(t, err)
	r = do(t, "GET", base+jobs+"/"+id, tok, nil)
	assert.Equal(t, 429, r.status)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Count: 1, Latency: 100 * time.Millisecond, Operations: []string{"bulk.upload"}})
	require.NoError(t, err)
	began := time.Now()
	r = doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, "LastName\nA\nB\nC\n")
	require.Equal(t, 201, r.status)
	assert.GreaterOrEqual(t, time.Since(began), 100*time.Millisecond)

	// a record-level lock failure fails one row
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultRecordLockRow, Count: 1, Operations: []string{"bulk.insert"}})
	require.NoError(t, err)
	require.Equal(t, 200, do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "UploadComplete"}).status)
	info := waitJob(t, base, tok, id)
	assert.Equal(t, 1.0, info["numberRecordsFailed"])
	failed := results(t, base, tok, id, "failedResults")
	require.Len(t, failed, 2)
	assert.True(t, strings.HasPrefix(failed[1][1], "UNABLE_TO_LOCK_ROW:"), failed[1][1])
	assert.Len(t, srv.Records("Contact"), 2)

	st := srv.Stats()
	assert.Equal(t, 1, st.Faults["http_503"])
	assert.Equal(t, 1, st.Faults["http_429"])
	assert.Equal(t, 1, st.Faults["record_unable_to_lock_row"])
	assert.Equal(t, 1, st.Calls["bulk.createJob"], "refused calls are not counted")

	// Bulk calls are API calls: counted, limited, reported
	r = do(t, "GET", base+v+"/limits", tok, nil)
	used := st.APIUsage + 1
	assert.Equal(t, fmt.Sprintf("api-usage=%d/50", used), r.header.Get("Sforce-Limit-Info"))
	assert.Equal(t, map[string]any{"Max": 15000.0, "Remaining": 14999.0}, r.json(t).(map[string]any)["DailyBulkApiBatches"])
	r = do(t, "GET", base+jobs+"/"+id, tok, nil)
	assert.Equal(t, fmt.Sprintf("api-usage=%d/50", used+1), r.header.Get("Sforce-Limit-Info"))
	srv.SetAPIUsage(50)
	r = do(t, "POST", base+jobs, tok, map[string]any{"object": "Contact", "operation": "insert"})
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "REQUEST_LIMIT_EXCEEDED", r.errs(t)[0]["errorCode"])
}

func TestBulkOnWriteAndGzip(t *testing.T) {
	var mu sync.Mutex
	var written []string
	srv, base := start(t, func(c *emulator.Config) {
		c.OnWrite = func(object, id string, fields map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			written = append(written, object+":"+fmt.Sprint(fields["LastName"]))
		}
	})
	tok := token(t, base)
	id := createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
	var buf bytes.Buffer
	var sb strings.Builder
	sb.WriteString("LastName\n")
	for i := range 450 {
		fmt.Fprintf(&sb, "N%03d\n", i)
	}
	gzipTo(t, &buf, sb.String())
	req, err := http.NewRequest("PUT", base+jobs+"/"+id+"/batches", &buf)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/csv; charset=UTF-8")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	require.Equal(t, 200, do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "UploadComplete"}).status)
	waitBulk(t, srv)
	j, _ := srv.BulkJob(id)
	assert.Equal(t, "JobComplete", j.State)
	assert.Equal(t, 450, j.RecordsProcessed)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, written, 450)
	assert.Equal(t, "Contact:N000", written[0])
	assert.Equal(t, "Contact:N449", written[449], "OnWrite sees the rows in upload order")
}

func TestBulkConcurrent(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	const workers, rows = 8, 450
	ids := make([]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a, b strings.Builder
			a.WriteString("Ledger_Member_Id__c,LastName,Loyalty_Points__c\n")
			b.WriteString("Ledger_Member_Id__c,LastName\n")
			for i := range rows {
				sb := &a
				if i%2 == 1 {
					sb = &b
					fmt.Fprintf(sb, "W%d-%d,Name %d\n", w, i, i)
					continue
				}
				fmt.Fprintf(sb, "W%d-%d,Name %d,%d\n", w, i, i, i)
			}
			spec := map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Ledger_Member_Id__c"}
			id, info := runJob(t, base, tok, spec, a.String(), b.String())
			ids[w] = id
			assert.Equal(t, "JobComplete", info["state"])
			assert.Equal(t, float64(rows), info["numberRecordsProcessed"])
			assert.Equal(t, 0.0, info["numberRecordsFailed"])
		}()
	}
	// meanwhile: other writes, reads of the jobs, and a job aborted while it may run
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			r := do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"allOrNone": false, "records": []map[string]any{
				{"attributes": map[string]any{"type": "Contact"}, "LastName": fmt.Sprintf("Side %d", i)}}})
			assert.Equal(t, 200, r.status)
			_ = srv.BulkJobs()
			_ = srv.Stats()
			assert.Equal(t, 200, do(t, "GET", base+jobs, tok, nil).status)
		}
	}()
	var abortID string
	var abortTotal int
	wg.Add(1)
	go func() {
		defer wg.Done()
		var sb strings.Builder
		sb.WriteString("LastName\n")
		abortTotal = 2000
		for i := range abortTotal {
			fmt.Fprintf(&sb, "Abort %d\n", i)
		}
		abortID = createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
		require.Equal(t, 201, doCSV(t, "PUT", base+jobs+"/"+abortID+"/batches", tok, sb.String()).status)
		require.Equal(t, 200, do(t, "PATCH", base+jobs+"/"+abortID, tok, map[string]any{"state": "UploadComplete"}).status)
		r := do(t, "PATCH", base+jobs+"/"+abortID, tok, map[string]any{"state": "Aborted"})
		assert.Contains(t, []int{200, 409}, r.status, "aborted, or already complete")
	}()
	wg.Wait()
	waitBulk(t, srv)

	for w := range workers {
		assert.Len(t, srv.Find("Contact", "Ledger_Member_Id__c", fmt.Sprintf("W%d-%d", w, rows-1)), 1)
	}
	info := waitJob(t, base, tok, abortID)
	okRows := results(t, base, tok, abortID, "successfulResults")
	unprocessed := results(t, base, tok, abortID, "unprocessedrecords")
	processed := int(info["numberRecordsProcessed"].(float64))
	assert.Equal(t, abortTotal, processed+len(unprocessed)-1, "every row is processed or unprocessed")
	assert.Equal(t, processed, len(okRows)-1)
	aborted := 0
	for _, rec := range srv.Records("Contact") {
		if strings.HasPrefix(rec["LastName"].(string), "Abort ") {
			aborted++
		}
	}
	assert.Equal(t, processed, aborted, "exactly the processed rows are written")
	assert.Len(t, srv.Records("Contact"), workers*rows+20+aborted)
}

func gzipTo(t *testing.T, w io.Writer, s string) {
	t.Helper()
	gz := gzip.NewWriter(w)
	_, err := gz.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, gz.Close())
}

func TestBulkAbortInProgress(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv, base := start(t, func(c *emulator.Config) {
		// hold the job in its first transaction until it is aborted
		c.OnWrite = func(string, string, map[string]any) {
			once.Do(func() {
				close(started)
				<-release
			})
		}
	})
	tok := token(t, base)
	var sb strings.Builder
	sb.WriteString("LastName\n")
	for i := range 500 {
		fmt.Fprintf(&sb, "R%03d\n", i)
	}
	id := createJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"})
	require.Equal(t, 201, doCSV(t, "PUT", base+jobs+"/"+id+"/batches", tok, sb.String()).status)
	require.Equal(t, 200, do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "UploadComplete"}).status)
	<-started
	r := do(t, "GET", base+jobs+"/"+id, tok, nil)
	assert.Equal(t, "InProgress", r.json(t).(map[string]any)["state"])
	r = do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "Aborted"})
	require.Equal(t, 200, r.status, string(r.body))
	close(release)
	waitBulk(t, srv)
	assert.Equal(t, 409, do(t, "PATCH", base+jobs+"/"+id, tok, map[string]any{"state": "Aborted"}).status)

	info := waitJob(t, base, tok, id)
	assert.Equal(t, "Aborted", info["state"])
	assert.Equal(t, 200.0, info["numberRecordsProcessed"], "the transaction under way when the job was aborted is kept")
	assert.Len(t, results(t, base, tok, id, "successfulResults"), 201)
	unprocessed := results(t, base, tok, id, "unprocessedrecords")
	require.Len(t, unprocessed, 301)
	assert.Equal(t, []string{"R200"}, unprocessed[1])
	assert.Len(t, srv.Records("Contact"), 200)
	assert.Equal(t, 204, do(t, "DELETE", base+jobs+"/"+id, tok, nil).status)
}

// FaultBulkJobFailed fails a job once its first transaction of rows is
// written: those rows have results, the others are unprocessed.
func TestBulkJobFailedFault(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultBulkJobFailed, Count: 1, Operations: []string{"bulk.insert"}})
	require.NoError(t, err)
	var csv strings.Builder
	csv.WriteString("LastName\n")
	for i := range 250 {
		fmt.Fprintf(&csv, "C%03d\n", i)
	}
	id, info := runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, csv.String())
	assert.Equal(t, "Failed", info["state"])
	assert.Contains(t, info["errorMessage"], "InternalServerError")
	assert.Equal(t, 200.0, info["numberRecordsProcessed"])
	assert.Len(t, results(t, base, tok, id, "successfulResults"), 201)
	assert.Len(t, results(t, base, tok, id, "unprocessedrecords"), 51)
	assert.Len(t, srv.Records("Contact"), 200)
	assert.Equal(t, 1, srv.Stats().Faults["bulk_job_failed"])

	// Count 1: the next job completes.
	_, info = runJob(t, base, tok, map[string]any{"object": "Contact", "operation": "insert"}, "LastName\nX\n")
	assert.Equal(t, "JobComplete", info["state"])
}
