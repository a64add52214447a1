package emulator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	salesforce "github.com/k-capehart/go-salesforce/v3"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const securityToken = "Tok3nFromEmail"

// startWithToken runs an emulator whose user has a security token, since go-salesforce
// only uses the password grant when Creds.SecurityToken is set.
func startWithToken(t *testing.T, mutate func(*emulator.Config)) (*emulator.Server, string) {
	return start(t, func(c *emulator.Config) {
		c.SecurityToken = securityToken
		if mutate != nil {
			mutate(c)
		}
	})
}

func passwordCreds(base string) salesforce.Creds {
	return salesforce.Creds{Domain: base, Username: emulator.DefaultUsername, Password: emulator.DefaultPassword,
		SecurityToken: securityToken, ConsumerKey: emulator.DefaultClientID, ConsumerSecret: emulator.DefaultClientSecret}
}

func clientCreds(base string) salesforce.Creds {
	return salesforce.Creds{Domain: base, ConsumerKey: emulator.DefaultClientID, ConsumerSecret: emulator.DefaultClientSecret}
}

func login(t *testing.T, creds salesforce.Creds, opts ...salesforce.Option) *salesforce.Salesforce {
	t.Helper()
	sf, err := salesforce.Init(creds, opts...)
	require.NoError(t, err)
	return sf
}

func TestGoSalesforceInit(t *testing.T) {
	_, base := startWithToken(t, nil)

	sf := login(t, passwordCreds(base))
	assert.Equal(t, salesforce.AuthFlowUsernamePassword, sf.AuthFlow)
	assert.Equal(t, base, sf.GetInstanceUrl())

	sf = login(t, clientCreds(base))
	assert.Equal(t, salesforce.AuthFlowClientCredentials, sf.AuthFlow)

	token := sf.GetAccessToken()
	sf = login(t, salesforce.Creds{Domain: base, AccessToken: token}) // validates with GET /limits
	assert.Equal(t, salesforce.AuthFlowAccessToken, sf.AuthFlow)

	bad := passwordCreds(base)
	bad.Password = "wrong"
	_, err := salesforce.Init(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "400")

	badClient := clientCreds(base)
	badClient.ConsumerSecret = "nope"
	_, err = salesforce.Init(badClient)
	require.Error(t, err)

	_, err = salesforce.Init(salesforce.Creds{Domain: base, AccessToken: "00D!forged"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid session")
}

type contactRow struct {
	ID        string  `salesforce:"Id"`
	Name      string  `salesforce:"Name"`
	Points    float64 `salesforce:"Loyalty_Points__c"`
	Tier      string  `salesforce:"Loyalty_Tier__c"`
	AccountID string  `salesforce:"AccountId"`
}

func TestGoSalesforceSingleRecordDML(t *testing.T) {
	srv, base := startWithToken(t, nil)
	sf := login(t, passwordCreds(base))

	res, err := sf.InsertOne("Contact", map[string]any{"FirstName": "Ada", "LastName": "Lovelace",
		"Email": "ada@example.com", "Ledger_Member_Id__c": "L-1"})
	require.NoError(t, err)
	require.True(t, res.Success)
	require.Len(t, res.Id, 18)
	assert.True(t, strings.HasPrefix(res.Id, "003"), res.Id)
	rec, ok := srv.Get("Contact", res.Id)
	require.True(t, ok)
	assert.Equal(t, "Ada Lovelace", rec["Name"])

	require.NoError(t, sf.UpdateOne("Contact", map[string]any{"Id": res.Id, "Loyalty_Tier__c": "Gold"}))
	rec, _ = srv.Get("Contact", res.Id)
	assert.Equal(t, "Gold", rec["Loyalty_Tier__c"])

	up, err := sf.UpsertOne("Contact", "Ledger_Member_Id__c", map[string]any{"Ledger_Member_Id__c": "L-1", "Loyalty_Points__c": 120})
	require.NoError(t, err)
	assert.Equal(t, res.Id, up.Id, "upsert on an existing external id updates that record")
	rec, _ = srv.Get("Contact", res.Id)
	assert.Equal(t, 120.0, rec["Loyalty_Points__c"])

	created, err := sf.UpsertOne("Contact", "Ledger_Member_Id__c", map[string]any{"Ledger_Member_Id__c": "L-2", "LastName": "Hopper"})
	require.NoError(t, err)
	assert.NotEqual(t, res.Id, created.Id)
	assert.Len(t, srv.Records("Contact"), 2)

	var rows []contactRow
	require.NoError(t, sf.Query("SELECT Id, Name, Loyalty_Points__c, Loyalty_Tier__c FROM Contact WHERE Ledger_Member_Id__c = 'L-1'", &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, contactRow{ID: res.Id, Name: "Ada Lovelace", Points: 120, Tier: "Gold"}, rows[0])

	require.NoError(t, sf.DeleteOne("Contact", map[string]any{"Id": res.Id}))
	_, ok = srv.Get("Contact", res.Id)
	assert.False(t, ok)
	err = sf.DeleteOne("Contact", map[string]any{"Id": res.Id})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ENTITY_IS_DELETED")

	_, err = sf.InsertOne("Contact", map[string]any{"LastName": "X", "Loyalty_Tier__c": "Diamond"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
}

func members(from, n int, extra ...any) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		num := fmt.Sprintf("M-%05d", from+i)
		out[i] = member(num, append([]any{"Ledger_Member_Id__c", "L" + num}, extra...)...)
	}
	return out
}

func TestGoSalesforceCollectionsAndPagedQuery(t *testing.T) {
	srv, base := startWithToken(t, func(c *emulator.Config) { c.QueryPageSize = 200 })
	sf := login(t, clientCreds(base))

	ins, err := sf.InsertCollection("LoyaltyProgramMember", members(0, 450), 200)
	require.NoError(t, err)
	require.False(t, ins.HasSalesforceErrors)
	require.Len(t, ins.Results, 450)
	assert.Equal(t, 3, srv.Stats().Calls["collections.create"], "450 records in batches of 200 are 3 calls")

	// upsert: 450 existing (tier change) + 50 new
	up := members(0, 500, "Tier__c", "Silver")
	for _, m := range up {
		delete(m, "ProgramId") // not updateable; the 50 new ones need it
	}
	for _, m := range up[450:] {
		m["ProgramId"] = emulator.DefaultProgramID
	}
	ups, err := sf.UpsertCollection("LoyaltyProgramMember", "Ledger_Member_Id__c", up, 200)
	require.NoError(t, err)
	require.False(t, ups.HasSalesforceErrors, "%+v", ups.Results)
	assert.Equal(t, ins.Results[7].Id, ups.Results[7].Id)
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 500)
	assert.Len(t, srv.Find("LoyaltyProgramMember", "Tier__c", "Silver"), 500)

	updates := make([]map[string]any, 10)
	for i := range updates {
		updates[i] = map[string]any{"Id": ins.Results[i].Id, "MemberStatus": "Inactive"}
	}
	upd, err := sf.UpdateCollection("LoyaltyProgramMember", updates, 200)
	require.NoError(t, err)
	require.False(t, upd.HasSalesforceErrors)
	assert.Len(t, srv.Find("LoyaltyProgramMember", "MemberStatus", "Inactive"), 10)

	del, err := sf.DeleteCollection("LoyaltyProgramMember", updates, 200)
	require.NoError(t, err)
	require.False(t, del.HasSalesforceErrors)
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 490)

	type row struct {
		ID     string `salesforce:"Id"`
		Number string `salesforce:"MembershipNumber"`
	}
	var rows []row
	require.NoError(t, sf.Query("SELECT Id, MembershipNumber FROM LoyaltyProgramMember ORDER BY MembershipNumber DESC", &rows))
	require.Len(t, rows, 490)
	assert.Equal(t, "M-00499", rows[0].Number)
	assert.Equal(t, "M-00010", rows[489].Number)
	assert.Equal(t, 2, srv.Stats().Calls["queryMore"], "490 rows in pages of 200 need two more pages")

	// a bad record is a per-record error, not a Go error
	bad := members(900, 2)
	bad[1]["Tier__c"] = "Diamond"
	res, err := sf.InsertCollection("LoyaltyProgramMember", bad, 200)
	require.NoError(t, err)
	require.True(t, res.HasSalesforceErrors)
	assert.True(t, res.Results[0].Success)
	require.False(t, res.Results[1].Success)
	assert.Equal(t, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", res.Results[1].Errors[0].StatusCode)
}

func TestGoSalesforceComposite(t *testing.T) {
	srv, base := startWithToken(t, nil)
	sf := login(t, clientCreds(base))
	usage0 := srv.Stats().APIUsage

	res, err := sf.InsertComposite("LoyaltyProgramMember", members(0, 60), 20, true)
	require.NoError(t, err)
	require.False(t, res.HasSalesforceErrors)
	require.Len(t, res.Results, 60)
	st := srv.Stats()
	assert.Equal(t, 1, st.Calls["composite"])
	assert.Equal(t, 3, st.Subrequests["collections.create"])
	assert.Equal(t, usage0+1, st.APIUsage, "a composite request is one API call")

	// allOrNone: one bad record in the last batch rolls back every batch
	up := members(0, 60, "Tier__c", "Gold")
	for _, m := range up {
		delete(m, "ProgramId")
	}
	up[59]["Tier__c"] = "Diamond"
	res, err = sf.UpsertComposite("LoyaltyProgramMember", "Ledger_Member_Id__c", up, 20, true)
	require.NoError(t, err)
	require.True(t, res.HasSalesforceErrors)
	assert.Empty(t, srv.Find("LoyaltyProgramMember", "Tier__c", "Gold"), "nothing may be committed")
	codes := map[string]int{}
	halted := 0
	for _, r := range res.Results {
		assert.False(t, r.Success)
		for _, e := range r.Errors {
			codes[e.StatusCode]++
		}
		if len(r.Errors) == 0 {
			halted++ // a PROCESSING_HALTED error array parses as one failed result without errors
		}
	}
	assert.Equal(t, 1, codes["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"])
	assert.Equal(t, 19, codes["ALL_OR_NONE_OPERATION_ROLLED_BACK"])
	assert.Equal(t, 2, halted, "the two earlier subrequests answer PROCESSING_HALTED")

	// without allOrNone the good batches commit
	res, err = sf.UpsertComposite("LoyaltyProgramMember", "Ledger_Member_Id__c", up, 20, false)
	require.NoError(t, err)
	require.True(t, res.HasSalesforceErrors)
	assert.Len(t, srv.Find("LoyaltyProgramMember", "Tier__c", "Gold"), 59)

	ids := make([]map[string]any, 30)
	for i := range ids {
		ids[i] = map[string]any{"Id": res.Results[i].Id, "MemberStatus": "Inactive"}
	}
	res, err = sf.UpdateComposite("LoyaltyProgramMember", ids, 10, false)
	require.NoError(t, err)
	require.False(t, res.HasSalesforceErrors)
	assert.Len(t, srv.Find("LoyaltyProgramMember", "MemberStatus", "Inactive"), 30)

	res, err = sf.DeleteComposite("LoyaltyProgramMember", ids, 10, true) // DELETE subrequests carry "records":null
	require.NoError(t, err)
	require.False(t, res.HasSalesforceErrors, "%+v", res.Results)
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 30)

	// more than 5 sObject Collections subrequests in one composite request
	_, err = sf.InsertComposite("LoyaltyProgramMember", members(100, 12), 2, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LIMIT_EXCEEDED")
}

func TestGoSalesforceDoRequestDescribe(t *testing.T) {
	_, base := startWithToken(t, nil)
	sf := login(t, clientCreds(base))
	resp, err := sf.DoRequest("GET", "/sobjects/LoyaltyProgramMember/describe", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var d struct {
		Name      string `json:"name"`
		KeyPrefix string `json:"keyPrefix"`
		Fields    []struct {
			Name           string   `json:"name"`
			Type           string   `json:"type"`
			Length         int      `json:"length"`
			Precision      int      `json:"precision"`
			Scale          int      `json:"scale"`
			ExternalID     bool     `json:"externalId"`
			Unique         bool     `json:"unique"`
			IDLookup       bool     `json:"idLookup"`
			Custom         bool     `json:"custom"`
			Createable     bool     `json:"createable"`
			Updateable     bool     `json:"updateable"`
			Nillable       bool     `json:"nillable"`
			Restricted     bool     `json:"restrictedPicklist"`
			ReferenceTo    []string `json:"referenceTo"`
			PicklistValues []struct {
				Value        string `json:"value"`
				DefaultValue bool   `json:"defaultValue"`
			} `json:"picklistValues"`
		} `json:"fields"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	assert.Equal(t, "LoyaltyProgramMember", d.Name)
	assert.Equal(t, "0lM", d.KeyPrefix)
	byName := map[string]int{}
	for i, f := range d.Fields {
		byName[f.Name] = i
	}
	for _, name := range []string{"Id", "IsDeleted", "MembershipNumber", "ProgramId", "ContactId", "MemberStatus", "MemberType",
		"EnrollmentChannel", "EnrollmentDate", "CreatedDate", "LastModifiedDate", "SystemModstamp",
		"Ledger_Member_Id__c", "Ledger_Version__c", "Points_Balance__c", "Tier__c", "Email__c"} {
		require.Contains(t, byName, name)
	}
	ledger := d.Fields[byName["Ledger_Member_Id__c"]]
	assert.Equal(t, "string", ledger.Type)
	assert.Equal(t, 64, ledger.Length)
	assert.True(t, ledger.ExternalID && ledger.Unique && ledger.IDLookup && ledger.Custom)
	version := d.Fields[byName["Ledger_Version__c"]]
	assert.Equal(t, "double", version.Type)
	assert.Equal(t, 18, version.Precision)
	assert.Equal(t, 0, version.Scale)
	tier := d.Fields[byName["Tier__c"]]
	assert.Equal(t, "picklist", tier.Type)
	assert.True(t, tier.Restricted)
	assert.Len(t, tier.PicklistValues, 4)
	assert.Equal(t, "email", d.Fields[byName["Email__c"]].Type)
	status := d.Fields[byName["MemberStatus"]]
	assert.Equal(t, "Active", status.PicklistValues[0].Value)
	assert.True(t, status.PicklistValues[0].DefaultValue)
	program := d.Fields[byName["ProgramId"]]
	assert.Equal(t, []string{"LoyaltyProgram"}, program.ReferenceTo)
	assert.True(t, program.Createable)
	assert.False(t, program.Updateable)
	assert.False(t, program.Nillable)
	id := d.Fields[byName["Id"]]
	assert.Equal(t, "id", id.Type)
	assert.False(t, id.Createable || id.Updateable)

	resp, err = sf.DoRequest("GET", "/sobjects/NoSuchObject/describe", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NOT_FOUND")
	_ = resp
}

func TestGoSalesforceSessionRefresh(t *testing.T) {
	srv, base := startWithToken(t, func(c *emulator.Config) { c.TokenTTL = 300 * time.Millisecond })
	sf := login(t, passwordCreds(base))
	issued := srv.Stats().TokensIssued

	srv.ExpireSessions()
	res, err := sf.InsertOne("Contact", map[string]any{"LastName": "Refresh"})
	require.NoError(t, err, "go-salesforce re-authenticates on 401 INVALID_SESSION_ID and replays")
	assert.True(t, res.Success)
	assert.Equal(t, issued+1, srv.Stats().TokensIssued)
	assert.Equal(t, 1, srv.Stats().Calls["unauthorized"])

	time.Sleep(400 * time.Millisecond) // the token expires on its own
	var rows []contactRow
	require.NoError(t, sf.Query("SELECT Id, Name FROM Contact", &rows))
	assert.Len(t, rows, 1)
	assert.Equal(t, issued+2, srv.Stats().TokensIssued)

	// an access-token session cannot refresh
	at := login(t, salesforce.Creds{Domain: base, AccessToken: sf.GetAccessToken()})
	srv.ExpireSessions()
	_, err = at.InsertOne("Contact", map[string]any{"LastName": "NoRefresh"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unable to refresh session")
}

func TestGoSalesforceCompression(t *testing.T) {
	srv, base := startWithToken(t, nil)
	sf := login(t, clientCreds(base), salesforce.WithCompressionHeaders(true))
	res, err := sf.InsertCollection("LoyaltyProgramMember", members(0, 50), 200)
	require.NoError(t, err)
	require.False(t, res.HasSalesforceErrors)
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 50)

	resp, err := sf.DoRequest("GET", "/query/?q=SELECT+COUNT()+FROM+LoyaltyProgramMember", nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), "the response is gzipped when asked")
	assert.JSONEq(t, `{"totalSize":50,"done":true,"records":[]}`, string(body))

	// Error bodies are gzipped too (Salesforce "normally" compresses when asked), and
	// go-salesforce v3.1.0 parses error bodies before decompressing them: with compression
	// on, it cannot see INVALID_SESSION_ID and so cannot refresh the session.
	srv.ExpireSessions()
	_, err = sf.InsertOne("Contact", map[string]any{"LastName": "X"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid character")
}

func TestGoSalesforceUpsertMultipleMatches(t *testing.T) {
	srv, base := startWithToken(t, func(c *emulator.Config) {
		c.Fields["Contact"] = append(c.Fields["Contact"], emulator.CustomField{Name: "Legacy_Key__c", Type: "text", ExternalID: true})
	})
	sf := login(t, clientCreds(base))
	_, err := srv.Insert("Contact", map[string]any{"LastName": "A", "Legacy_Key__c": "K1"})
	require.NoError(t, err)
	_, err = srv.Insert("Contact", map[string]any{"LastName": "B", "Legacy_Key__c": "k1"})
	require.NoError(t, err)

	// go-salesforce treats 300 as success and fails decoding the list of matches
	_, err = sf.UpsertOne("Contact", "Legacy_Key__c", map[string]any{"Legacy_Key__c": "K1", "LastName": "C"})
	require.Error(t, err)
	assert.Empty(t, srv.Find("Contact", "LastName", "C"), "an ambiguous upsert changes nothing")

	res, err := sf.UpsertCollection("Contact", "Legacy_Key__c", []map[string]any{{"Legacy_Key__c": "K1", "LastName": "C"}}, 200)
	require.NoError(t, err)
	require.True(t, res.HasSalesforceErrors)
	assert.Equal(t, "DUPLICATE_EXTERNAL_ID", res.Results[0].Errors[0].StatusCode)
}

// TestOnWriteOrder proves the hook sees commits in order: the record's final state is the
// last one the hook saw, even with concurrent writers.
func TestOnWriteOrder(t *testing.T) {
	var mu sync.Mutex
	var seen []float64
	srv, base := startWithToken(t, func(c *emulator.Config) {
		c.OnWrite = func(object, id string, fields map[string]any) {
			if object != "LoyaltyProgramMember" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fields["Ledger_Version__c"].(float64))
		}
	})
	sf := login(t, clientCreds(base))
	_, err := sf.InsertOne("LoyaltyProgramMember", member("M-1", "Ledger_Member_Id__c", "L-1", "Ledger_Version__c", 0))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := 1; w <= 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				_, err := sf.UpsertOne("LoyaltyProgramMember", "Ledger_Member_Id__c",
					map[string]any{"Ledger_Member_Id__c": "L-1", "Ledger_Version__c": w*100 + i})
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 41)
	final := srv.Find("LoyaltyProgramMember", "Ledger_Member_Id__c", "l-1")
	require.Len(t, final, 1)
	assert.Equal(t, seen[len(seen)-1], final[0]["Ledger_Version__c"])
}
