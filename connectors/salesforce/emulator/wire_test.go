package emulator_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestTokenEndpoint(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.SecurityToken = "SEC" })
	good := url.Values{"grant_type": {"password"}, "client_id": {emulator.DefaultClientID}, "client_secret": {emulator.DefaultClientSecret},
		"username": {emulator.DefaultUsername}, "password": {emulator.DefaultPassword + "SEC"}}
	status, body := postForm(t, base+"/services/oauth2/token", good)
	require.Equal(t, 200, status)
	assert.Equal(t, base, body["instance_url"])
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Regexp(t, `^[0-9]{13}$`, body["issued_at"])
	assert.NotEmpty(t, body["access_token"])
	assert.NotEmpty(t, body["signature"])
	assert.True(t, strings.HasPrefix(body["id"].(string), base+"/id/00D"), body["id"])

	tests := []struct {
		name      string
		change    func(url.Values)
		wantError string
		wantDesc  string
	}{
		{"password without the security token", func(f url.Values) { f.Set("password", emulator.DefaultPassword) }, "invalid_grant", "authentication failure"},
		{"wrong user", func(f url.Values) { f.Set("username", "eve@example.com") }, "invalid_grant", "authentication failure"},
		{"unknown client id", func(f url.Values) { f.Set("client_id", "other") }, "invalid_client_id", "client identifier invalid"},
		{"wrong client secret", func(f url.Values) { f.Set("client_secret", "x") }, "invalid_client", "invalid client credentials"},
		{"unsupported grant", func(f url.Values) { f.Set("grant_type", "authorization_code") }, "unsupported_grant_type", "grant type not supported"},
		{"client credentials with wrong secret", func(f url.Values) { f.Set("grant_type", "client_credentials"); f.Set("client_secret", "x") }, "invalid_client", "invalid client credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := url.Values{}
			for k, vs := range good {
				f[k] = append([]string(nil), vs...)
			}
			tt.change(f)
			status, body := postForm(t, base+"/services/oauth2/token", f)
			assert.Equal(t, 400, status)
			assert.Equal(t, map[string]any{"error": tt.wantError, "error_description": tt.wantDesc}, body)
		})
	}

	resp, err := http.Get(base + "/services/oauth2/token")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 405, resp.StatusCode)
}

func TestSessionErrors(t *testing.T) {
	srv, base := start(t, nil)
	for _, tok := range []string{"", "00D!unknown"} {
		r := do(t, "GET", base+v+"/limits", tok, nil)
		assert.Equal(t, 401, r.status)
		assert.JSONEq(t, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, string(r.body))
	}
	tok := token(t, base)
	require.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status)
	req, _ := http.NewRequest("GET", base+v+"/limits", nil)
	req.Header.Set("Authorization", "OAuth "+tok) // restforce's scheme
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	srv.ExpireSessions()
	assert.Equal(t, 401, do(t, "GET", base+v+"/limits", tok, nil).status)
}

func TestVersionsResourcesAndLimitHeader(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.DailyAPILimit = 5 })
	r := do(t, "GET", base+"/services/data/", "", nil)
	require.Equal(t, 200, r.status)
	assert.Empty(t, r.header.Get("Sforce-Limit-Info"), "the versions list carries no limit header")
	var versions []map[string]string
	require.NoError(t, json.Unmarshal(r.body, &versions))
	last := versions[len(versions)-1]
	assert.Equal(t, map[string]string{"label": "Spring '25", "url": "/services/data/v63.0", "version": "63.0"}, last)
	assert.Contains(t, versions, map[string]string{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"})

	tok := token(t, base)
	r = do(t, "GET", base+v+"/", tok, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "api-usage=1/5", r.header.Get("Sforce-Limit-Info"))
	assert.Equal(t, "/services/data/v63.0/sobjects", r.json(t).(map[string]any)["sobjects"])

	r = do(t, "GET", base+v+"/limits", tok, nil)
	assert.Equal(t, "api-usage=2/5", r.header.Get("Sforce-Limit-Info"))
	limits := r.json(t).(map[string]any)
	assert.Equal(t, map[string]any{"Max": 5.0, "Remaining": 3.0}, limits["DailyApiRequests"])

	r = do(t, "GET", base+"/services/data/v64.0/limits", tok, nil)
	assert.Equal(t, 404, r.status, "a version newer than the org's is not found")
	r = do(t, "GET", base+"/services/data/v45.0/sobjects", tok, nil)
	assert.Equal(t, 200, r.status, "older versions are served")
	r = do(t, "GET", base+v+"/nothing-here", tok, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "NOT_FOUND", r.errs(t)[0]["errorCode"])
	assert.Equal(t, "api-usage=4/5", r.header.Get("Sforce-Limit-Info"), "calls to unknown versions are not counted")
	assert.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status)

	r = do(t, "GET", base+v+"/limits", tok, nil)
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "REQUEST_LIMIT_EXCEEDED", r.errs(t)[0]["errorCode"])
	assert.Equal(t, "api-usage=5/5", r.header.Get("Sforce-Limit-Info"))
}

func TestGzip(t *testing.T) {
	_, base := start(t, nil)
	tok := token(t, base)
	body, _ := json.Marshal(member("M-1"))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write(body)
	require.NoError(t, gz.Close())

	client := &http.Client{Transport: &http.Transport{DisableCompression: true}} // no automatic Accept-Encoding
	send := func(acceptGzip bool) *http.Response {
		req, _ := http.NewRequest("POST", base+v+"/sobjects/LoyaltyProgramMember", bytes.NewReader(buf.Bytes()))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		if acceptGzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := send(true)
	defer resp.Body.Close()
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	var first map[string]any
	require.NoError(t, json.NewDecoder(zr).Decode(&first))
	assert.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, true, first["success"])

	resp2 := send(false)
	defer resp2.Body.Close()
	assert.Empty(t, resp2.Header.Get("Content-Encoding"))
	var second []map[string]any
	require.NoError(t, json.NewDecoder(resp2.Body).Decode(&second), "plain JSON when gzip was not accepted")
	assert.Equal(t, 400, resp2.StatusCode)
	assert.Equal(t, "DUPLICATE_VALUE", second[0]["errorCode"], "same membership number in the same program")
}

func TestRecordIDs(t *testing.T) {
	_, base := start(t, nil)
	tok := token(t, base)
	idRe := regexp.MustCompile(`^[0-9A-Za-z]{18}$`)
	create := func(obj string, body map[string]any) string {
		r := do(t, "POST", base+v+"/sobjects/"+obj, tok, body)
		require.Equal(t, 201, r.status, "%s: %s", obj, r.body)
		id := r.json(t).(map[string]any)["id"].(string)
		assert.Regexp(t, idRe, id)
		return id
	}
	acc := create("Account", map[string]any{"Name": "Acme"})
	con := create("Contact", map[string]any{"LastName": "Doe", "AccountId": acc})
	mem := create("LoyaltyProgramMember", member("M-1", "ContactId", con))
	tj := create("TransactionJournal", map[string]any{"ActivityDate": "2025-01-02T10:00:00Z", "MemberId": mem})
	vo := create("Voucher", map[string]any{"EffectiveDate": "2025-01-02", "LoyaltyProgramMemberId": mem})
	for prefix, id := range map[string]string{"001": acc, "003": con, "0lM": mem, "0lV": tj, "0kD": vo} {
		assert.True(t, strings.HasPrefix(id, prefix), "%s should start with %s", id, prefix)
	}

	// a 15-character id reaches the same record; the answer uses the 18-character id
	r := do(t, "GET", base+v+"/sobjects/Contact/"+con[:15]+"?fields=LastName,AccountId", tok, nil)
	require.Equal(t, 200, r.status)
	got := r.json(t).(map[string]any)
	assert.Equal(t, con, got["Id"])
	assert.Equal(t, acc, got["AccountId"])
	assert.Equal(t, map[string]any{"type": "Contact", "url": v + "/sobjects/Contact/" + con}, got["attributes"])
	assert.NotContains(t, got, "Email", "only the requested fields")

	r = do(t, "GET", base+v+"/sobjects/TransactionJournal/"+tj, tok, nil)
	rec := r.json(t).(map[string]any)
	assert.Equal(t, "Pending", rec["Status"], "Status defaults on create")
	assert.Equal(t, "0000000001", rec["Name"], "Name is an auto number")
	assert.Equal(t, "2025-01-02T10:00:00.000+0000", rec["ActivityDate"])
	assert.Contains(t, rec, "Ledger_Version__c")
	assert.Nil(t, rec["Ledger_Version__c"])

	r = do(t, "GET", base+v+"/sobjects/Contact/not-an-id", tok, nil)
	assert.Equal(t, 404, r.status)
	r = do(t, "GET", base+v+"/sobjects/Contact/"+acc, tok, nil)
	assert.Equal(t, 404, r.status, "an Account id is not a Contact")
}

func TestSingleRecordWire(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	ext := base + v + "/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c/"

	r := do(t, "PATCH", ext+"L-1", tok, member("M-1"))
	require.Equal(t, 201, r.status, string(r.body))
	created := r.json(t).(map[string]any)
	assert.Equal(t, true, created["created"])
	assert.Equal(t, true, created["success"])
	assert.Equal(t, []any{}, created["errors"])
	id := created["id"].(string)

	r = do(t, "PATCH", ext+"L-1", tok, map[string]any{"Tier__c": "Gold"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.JSONEq(t, fmt.Sprintf(`{"id":%q,"success":true,"errors":[],"created":false}`, id), string(r.body))

	r = do(t, "PATCH", base+"/services/data/v45.0/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c/L-1", tok, map[string]any{"Tier__c": "Silver"})
	assert.Equal(t, 204, r.status, "before API 46.0 an upsert update answers 204")
	assert.Empty(t, r.body)

	r = do(t, "GET", ext+"l-1", tok, nil)
	require.Equal(t, 200, r.status, "external ids match case-insensitively")
	assert.Equal(t, "Silver", r.json(t).(map[string]any)["Tier__c"])

	r = do(t, "PATCH", base+v+"/sobjects/LoyaltyProgramMember/"+id, tok, map[string]any{"Points_Balance__c": 12.345})
	assert.Equal(t, 204, r.status)
	rec, _ := srv.Get("LoyaltyProgramMember", id)
	assert.Equal(t, 12.35, rec["Points_Balance__c"], "numbers are rounded to the field's scale")

	r = do(t, "PATCH", base+v+"/sobjects/LoyaltyProgramMember/"+id, tok, map[string]any{"Id": id, "Tier__c": "Gold"})
	assert.Equal(t, 400, r.status)

	r = do(t, "PATCH", base+v+"/sobjects/LoyaltyProgramMember/Name/x", tok, map[string]any{})
	assert.Equal(t, 404, r.status, "LoyaltyProgramMember has no Name field: %s", r.body)
	r = do(t, "PATCH", base+v+"/sobjects/LoyaltyProgramMember/Tier__c/Gold", tok, map[string]any{})
	assert.Equal(t, 400, r.status, "a picklist is not an external id")
	assert.Equal(t, "INVALID_FIELD", r.errs(t)[0]["errorCode"])

	r = do(t, "PATCH", ext+"L-9?updateOnly=true", tok, member("M-9"))
	assert.Equal(t, 404, r.status, "updateOnly does not create")

	r = do(t, "DELETE", base+v+"/sobjects/LoyaltyProgramMember/"+id, tok, nil)
	assert.Equal(t, 204, r.status)
	r = do(t, "GET", base+v+"/sobjects/LoyaltyProgramMember/"+id, tok, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "ENTITY_IS_DELETED", r.errs(t)[0]["errorCode"])
	r = do(t, "PATCH", base+v+"/sobjects/LoyaltyProgramMember/"+id, tok, map[string]any{"Tier__c": "Gold"})
	assert.Equal(t, 404, r.status)
	r = do(t, "PUT", base+v+"/sobjects/LoyaltyProgramMember/"+id, tok, map[string]any{})
	assert.Equal(t, 405, r.status)
	assert.Equal(t, "METHOD_NOT_ALLOWED", r.errs(t)[0]["errorCode"])
}

func TestMultipleExternalIDMatches(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) {
		c.Fields["Contact"] = append(c.Fields["Contact"], emulator.CustomField{Name: "Legacy_Key__c", Type: "text", ExternalID: true})
	})
	tok := token(t, base)
	a, err := srv.Insert("Contact", map[string]any{"LastName": "A", "Legacy_Key__c": "K1"})
	require.NoError(t, err)
	b, err := srv.Insert("Contact", map[string]any{"LastName": "B", "Legacy_Key__c": "K1"})
	require.NoError(t, err)
	want := []any{v + "/sobjects/Contact/" + a, v + "/sobjects/Contact/" + b}

	r := do(t, "GET", base+v+"/sobjects/Contact/Legacy_Key__c/K1", tok, nil)
	assert.Equal(t, 300, r.status)
	assert.Equal(t, want, r.json(t))

	r = do(t, "PATCH", base+v+"/sobjects/Contact/Legacy_Key__c/K1", tok, map[string]any{"LastName": "C"})
	assert.Equal(t, 300, r.status)
	assert.Equal(t, want, r.json(t))
	assert.Empty(t, srv.Find("Contact", "LastName", "C"))
}

func TestCollectionsWire(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	withType := func(recs ...map[string]any) []map[string]any {
		for _, r := range recs {
			r["attributes"] = map[string]any{"type": "LoyaltyProgramMember"}
		}
		return recs
	}

	// allOrNone: the failure keeps its error, the good record is rolled back
	r := do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"allOrNone": true,
		"records": withType(member("M-1"), member("M-2", "Tier__c", "Diamond"))})
	require.Equal(t, 200, r.status, string(r.body))
	assert.JSONEq(t, `[
	 {"success":false,"errors":[{"statusCode":"ALL_OR_NONE_OPERATION_ROLLED_BACK","message":"Record rolled back because not all records were valid and the request was using AllOrNone header","fields":[]}]},
	 {"success":false,"errors":[{"statusCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","message":"Tier: bad value for restricted picklist field: Diamond","fields":["Tier__c"]}]}]`, string(r.body))
	assert.Empty(t, srv.Records("LoyaltyProgramMember"))

	r = do(t, "POST", base+v+"/composite/sobjects/", tok, map[string]any{"allOrNone": false,
		"records": withType(member("M-1"), member("M-2", "Tier__c", "Diamond"), member("M-1"))})
	require.Equal(t, 200, r.status)
	var res []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &res))
	assert.Equal(t, true, res[0]["success"])
	assert.Equal(t, false, res[1]["success"])
	assert.Equal(t, "DUPLICATE_VALUE", res[2]["errors"].([]any)[0].(map[string]any)["statusCode"],
		"a duplicate of an earlier record of the same request")
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 1)
	id := res[0]["id"].(string)

	// request-level errors use errorCode
	r = do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"records": []map[string]any{member("M-3")}})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "INVALID_TYPE", r.errs(t)[0]["errorCode"], "attributes.type is required")
	r = do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"records": withType(member("M-3", "Nope__c", 1))})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "INVALID_FIELD", r.errs(t)[0]["errorCode"])
	assert.Contains(t, r.errs(t)[0]["message"], "Nope__c")
	many := make([]map[string]any, 201)
	for i := range many {
		many[i] = member(fmt.Sprintf("X-%d", i))
	}
	r = do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"records": withType(many...)})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "EXCEEDED_ID_LIMIT", r.errs(t)[0]["errorCode"])

	// update: a missing Id and an unknown id are per-record errors, with ids reported
	missing := "0lMEm00000000ZZ"
	r = do(t, "PATCH", base+v+"/composite/sobjects", tok, map[string]any{"records": withType(
		map[string]any{"Id": id, "Tier__c": "Gold"}, map[string]any{"Tier__c": "Gold"}, map[string]any{"Id": missing, "Tier__c": "Gold"})})
	require.Equal(t, 200, r.status, string(r.body))
	require.NoError(t, json.Unmarshal(r.body, &res))
	assert.Equal(t, true, res[0]["success"])
	assert.Equal(t, "MISSING_ARGUMENT", res[1]["errors"].([]any)[0].(map[string]any)["statusCode"])
	assert.Equal(t, "INVALID_CROSS_REFERENCE_KEY", res[2]["errors"].([]any)[0].(map[string]any)["statusCode"])

	// upsert: created flags, duplicate keys within a request
	r = do(t, "PATCH", base+v+"/composite/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c", tok, map[string]any{"records": withType(
		map[string]any{"Ledger_Member_Id__c": "L-1", "MembershipNumber": "M-10", "ProgramId": emulator.DefaultProgramID, "EnrollmentDate": "2025-02-01"},
		map[string]any{"Ledger_Member_Id__c": "L-2", "MembershipNumber": "M-11", "ProgramId": emulator.DefaultProgramID, "EnrollmentDate": "2025-02-01"},
		map[string]any{"Ledger_Member_Id__c": "l-2", "MembershipNumber": "M-12", "ProgramId": emulator.DefaultProgramID, "EnrollmentDate": "2025-02-01"})})
	require.Equal(t, 200, r.status, string(r.body))
	require.NoError(t, json.Unmarshal(r.body, &res))
	assert.Equal(t, true, res[0]["created"])
	assert.Equal(t, "DUPLICATE_EXTERNAL_ID", res[1]["errors"].([]any)[0].(map[string]any)["statusCode"])
	assert.Equal(t, "DUPLICATE_EXTERNAL_ID", res[2]["errors"].([]any)[0].(map[string]any)["statusCode"])
	r = do(t, "PATCH", base+v+"/composite/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c", tok, map[string]any{"records": withType(
		map[string]any{"Ledger_Member_Id__c": "L-1", "Tier__c": "Gold"})})
	assert.JSONEq(t, fmt.Sprintf(`[{"id":%q,"success":true,"errors":[],"created":false}]`, res[0]["id"]), string(r.body))
	r = do(t, "PATCH", base+v+"/composite/sobjects/LoyaltyProgramMember/Tier__c", tok, map[string]any{"records": withType(map[string]any{"Tier__c": "Gold"})})
	assert.Equal(t, 400, r.status)

	// retrieve and delete
	r = do(t, "GET", base+v+"/composite/sobjects/LoyaltyProgramMember?ids="+id+","+missing+"&fields=MembershipNumber", tok, nil)
	require.Equal(t, 200, r.status, string(r.body))
	got := r.json(t).([]any)
	assert.Equal(t, "M-1", got[0].(map[string]any)["MembershipNumber"])
	assert.Nil(t, got[1])
	r = do(t, "DELETE", base+v+"/composite/sobjects?ids="+id+",bogus&allOrNone=true", tok, nil)
	require.NoError(t, json.Unmarshal(r.body, &res))
	assert.Equal(t, "ALL_OR_NONE_OPERATION_ROLLED_BACK", res[0]["errors"].([]any)[0].(map[string]any)["statusCode"])
	assert.Equal(t, "MALFORMED_ID", res[1]["errors"].([]any)[0].(map[string]any)["statusCode"])
	_, ok := srv.Get("LoyaltyProgramMember", id)
	assert.True(t, ok)
	r = do(t, "DELETE", base+v+"/composite/sobjects/?ids="+id+"&allOrNone=false", tok, nil)
	assert.JSONEq(t, fmt.Sprintf(`[{"id":%q,"success":true,"errors":[]}]`, id), string(r.body))
}

func TestCompositeWire(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	r := do(t, "POST", base+v+"/composite", tok, map[string]any{"allOrNone": true, "compositeRequest": []map[string]any{
		{"method": "POST", "url": v + "/sobjects/Account", "referenceId": "acc", "body": map[string]any{"Name": "Acme"}},
		{"method": "POST", "url": v + "/sobjects/Contact", "referenceId": "con", "body": map[string]any{"LastName": "Doe", "AccountId": "@{acc.id}"}},
		{"method": "GET", "url": v + "/sobjects/Contact/@{con.id}?fields=AccountId", "referenceId": "get"},
		{"method": "GET", "url": v + "/query?q=SELECT+Name,+Account.Name+FROM+Contact", "referenceId": "q"},
	}})
	require.Equal(t, 200, r.status, string(r.body))
	var out struct {
		CompositeResponse []struct {
			Body           json.RawMessage   `json:"body"`
			HTTPHeaders    map[string]string `json:"httpHeaders"`
			HTTPStatusCode int               `json:"httpStatusCode"`
			ReferenceID    string            `json:"referenceId"`
		} `json:"compositeResponse"`
	}
	require.NoError(t, json.Unmarshal(r.body, &out))
	require.Len(t, out.CompositeResponse, 4)
	assert.Equal(t, 201, out.CompositeResponse[0].HTTPStatusCode)
	assert.Contains(t, out.CompositeResponse[0].HTTPHeaders["Location"], v+"/sobjects/Account/001")
	assert.Equal(t, "con", out.CompositeResponse[1].ReferenceID)
	accID := srv.Records("Account")[0]["Id"]
	assert.Contains(t, string(out.CompositeResponse[2].Body), fmt.Sprintf(`"AccountId":%q`, accID))
	assert.Contains(t, string(out.CompositeResponse[3].Body), `"Account":{"attributes":{"type":"Account"`)
	assert.Contains(t, string(out.CompositeResponse[3].Body), `"Name":"Acme"`)

	// allOrNone: a failing subrequest rolls back the earlier ones and halts the rest
	r = do(t, "POST", base+v+"/composite", tok, map[string]any{"allOrNone": true, "compositeRequest": []map[string]any{
		{"method": "POST", "url": v + "/sobjects/Account", "referenceId": "a1", "body": map[string]any{"Name": "Globex"}},
		{"method": "POST", "url": v + "/sobjects/Contact", "referenceId": "c1", "body": map[string]any{"FirstName": "NoLastName"}},
		{"method": "POST", "url": v + "/sobjects/Account", "referenceId": "a2", "body": map[string]any{"Name": "Initech"}},
	}})
	require.Equal(t, 200, r.status)
	require.NoError(t, json.Unmarshal(r.body, &out))
	codes := []int{}
	for _, sr := range out.CompositeResponse {
		codes = append(codes, sr.HTTPStatusCode)
	}
	assert.Equal(t, []int{400, 400, 400}, codes)
	assert.Contains(t, string(out.CompositeResponse[0].Body), "PROCESSING_HALTED")
	assert.Contains(t, string(out.CompositeResponse[1].Body), "REQUIRED_FIELD_MISSING")
	assert.Contains(t, string(out.CompositeResponse[2].Body), "PROCESSING_HALTED")
	assert.Len(t, srv.Records("Account"), 1)

	// without allOrNone, only the dependent subrequest is skipped
	r = do(t, "POST", base+v+"/composite", tok, map[string]any{"compositeRequest": []map[string]any{
		{"method": "POST", "url": v + "/sobjects/Contact", "referenceId": "bad", "body": map[string]any{"FirstName": "X"}},
		{"method": "PATCH", "url": v + "/sobjects/Contact/@{bad.id}", "referenceId": "dep", "body": map[string]any{"LastName": "Y"}},
		{"method": "POST", "url": v + "/sobjects/Account", "referenceId": "ok", "body": map[string]any{"Name": "Umbrella"}},
	}})
	require.NoError(t, json.Unmarshal(r.body, &out))
	assert.Equal(t, 400, out.CompositeResponse[1].HTTPStatusCode)
	assert.Contains(t, string(out.CompositeResponse[1].Body), "PROCESSING_HALTED")
	assert.Equal(t, 201, out.CompositeResponse[2].HTTPStatusCode)

	subs := make([]map[string]any, 26)
	for i := range subs {
		subs[i] = map[string]any{"method": "GET", "url": v + "/limits", "referenceId": fmt.Sprintf("r%d", i)}
	}
	r = do(t, "POST", base+v+"/composite", tok, map[string]any{"compositeRequest": subs})
	assert.Equal(t, 400, r.status)
	assert.Contains(t, r.errs(t)[0]["message"], "at most 25")
}

func TestDescribeGlobal(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) {
		c.Fields["Loyalty_Segment__c"] = []emulator.CustomField{{Name: "Code__c", Type: "text", Length: 20, ExternalID: true, Unique: true}}
	})
	tok := token(t, base)
	r := do(t, "GET", base+v+"/sobjects", tok, nil)
	require.Equal(t, 200, r.status)
	var g struct {
		Encoding     string `json:"encoding"`
		MaxBatchSize int    `json:"maxBatchSize"`
		SObjects     []struct {
			Name      string            `json:"name"`
			KeyPrefix string            `json:"keyPrefix"`
			Custom    bool              `json:"custom"`
			URLs      map[string]string `json:"urls"`
		} `json:"sobjects"`
	}
	require.NoError(t, json.Unmarshal(r.body, &g))
	assert.Equal(t, 200, g.MaxBatchSize)
	prefixes := map[string]string{}
	for _, o := range g.SObjects {
		prefixes[o.Name] = o.KeyPrefix
	}
	assert.Equal(t, map[string]string{"Account": "001", "Contact": "003", "LoyaltyProgram": "0lp", "LoyaltyProgramMember": "0lM",
		"TransactionJournal": "0lV", "Voucher": "0kD", "Loyalty_Segment__c": "a0A"}, prefixes)

	r = do(t, "POST", base+v+"/sobjects/Loyalty_Segment__c", tok, map[string]any{"Name": "VIP", "Code__c": "vip"})
	require.Equal(t, 201, r.status, string(r.body))
	assert.True(t, strings.HasPrefix(r.json(t).(map[string]any)["id"].(string), "a0A"))
	r = do(t, "GET", base+v+"/sobjects/Loyalty_Segment__c", tok, nil)
	assert.Equal(t, 200, r.status)
	r = do(t, "GET", base+v+"/sobjects/Segment__c/describe", tok, nil)
	assert.Equal(t, 404, r.status)
}

func TestAdminAPI(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	_, err := srv.Insert("Contact", map[string]any{"LastName": "Doe"})
	require.NoError(t, err)

	resp, err := http.Get(base + "/__emulator/records/Contact")
	require.NoError(t, err)
	var recs []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&recs))
	resp.Body.Close()
	require.Len(t, recs, 1)
	assert.Equal(t, "Doe", recs[0]["LastName"])

	do(t, "GET", base+v+"/limits", tok, nil)
	resp, err = http.Get(base + "/__emulator/stats")
	require.NoError(t, err)
	var st emulator.Stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	assert.Equal(t, 1, st.Calls["limits"])
	assert.Equal(t, 1, st.Records["Contact"])
	assert.Equal(t, 1, st.Records["LoyaltyProgram"])
	assert.Equal(t, 1, st.APIUsage)

	resp, err = http.Post(base+"/__emulator/usage", "application/json", strings.NewReader(`{"used":99999}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 204, resp.StatusCode)
	assert.Equal(t, 99999, srv.Stats().APIUsage)

	resp, err = http.Post(base+"/__emulator/reset", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 204, resp.StatusCode)
	assert.Empty(t, srv.Records("Contact"))
	assert.Len(t, srv.Records("LoyaltyProgram"), 1, "seed records come back")
	assert.Equal(t, 0, srv.Stats().APIUsage)
	assert.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status, "sessions survive a reset")

	resp, err = http.Post(base+"/__emulator/sessions/expire", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, do(t, "GET", base+v+"/limits", tok, nil).status)

	resp, err = http.Get(base + "/__emulator/records/Nope")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(body), "LoyaltyProgramMember")
}
