package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type queryPage struct {
	TotalSize      int              `json:"totalSize"`
	Done           bool             `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

func query(t *testing.T, base, tok, soql string) (result, queryPage) {
	t.Helper()
	r := do(t, "GET", base+v+"/query?q="+url.QueryEscape(soql), tok, nil)
	var p queryPage
	if r.status == 200 {
		require.NoError(t, json.Unmarshal(r.body, &p))
	}
	return r, p
}

func seedMembers(t *testing.T, srv *emulator.Server) (contactID string) {
	t.Helper()
	contactID, err := srv.Insert("Contact", map[string]any{"FirstName": "Ada", "LastName": "Lovelace"})
	require.NoError(t, err)
	rows := []map[string]any{
		member("M-1", "Tier__c", "Gold", "Points_Balance__c", 1200, "CanReceivePromotions", true, "ContactId", contactID, "EnrollmentDate", "2024-03-01"),
		member("M-2", "Tier__c", "Silver", "Points_Balance__c", 300, "EnrollmentDate", "2024-06-15"),
		member("M-3", "Tier__c", "Gold", "Points_Balance__c", 50, "MemberStatus", "Inactive", "EnrollmentDate", "2025-01-10"),
		member("M-4", "Points_Balance__c", 0, "Email__c", "m4@example.com", "EnrollmentDate", "2025-02-01"),
	}
	for _, r := range rows {
		_, err := srv.Insert("LoyaltyProgramMember", r)
		require.NoError(t, err)
	}
	return contactID
}

func numbers(p queryPage) []string {
	out := []string{}
	for _, r := range p.Records {
		out = append(out, fmt.Sprint(r["MembershipNumber"]))
	}
	return out
}

func TestSOQL(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	seedMembers(t, srv)

	tests := []struct {
		soql string
		want []string
	}{
		{"SELECT MembershipNumber FROM LoyaltyProgramMember ORDER BY MembershipNumber", []string{"M-1", "M-2", "M-3", "M-4"}},
		{"select membershipnumber from loyaltyprogrammember where tier__c = 'gold' order by MembershipNumber desc", []string{"M-3", "M-1"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c IN ('Silver', 'Gold') AND MemberStatus = 'Active' ORDER BY MembershipNumber", []string{"M-1", "M-2"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c NOT IN ('Gold') ORDER BY MembershipNumber", []string{"M-2", "M-4"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c = null", []string{"M-4"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c != null ORDER BY Points_Balance__c ASC LIMIT 2", []string{"M-3", "M-2"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Points_Balance__c >= 300 ORDER BY Points_Balance__c DESC", []string{"M-1", "M-2"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Points_Balance__c < 100.5 AND Points_Balance__c > -1 ORDER BY MembershipNumber", []string{"M-3", "M-4"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE CanReceivePromotions = true", []string{"M-1"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE EnrollmentDate >= 2025-01-01 ORDER BY EnrollmentDate", []string{"M-3", "M-4"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE CreatedDate > 2020-01-01T00:00:00Z AND MembershipNumber LIKE 'm-_' ORDER BY MembershipNumber LIMIT 1 OFFSET 1", []string{"M-2"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE (Tier__c = 'Gold' AND MemberStatus = 'Inactive') OR Tier__c = 'Silver' ORDER BY MembershipNumber", []string{"M-2", "M-3"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE NOT Tier__c = 'Gold' ORDER BY Tier__c NULLS LAST", []string{"M-2", "M-4"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Contact.LastName = 'Lovelace'", []string{"M-1"}},
		{"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Program.Name = 'loyaltyhub' AND Email__c LIKE '%@example.com'", []string{"M-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.soql, func(t *testing.T) {
			r, p := query(t, base, tok, tt.soql)
			require.Equal(t, 200, r.status, string(r.body))
			assert.Equal(t, tt.want, numbers(p))
			assert.Equal(t, len(tt.want), p.TotalSize)
			assert.True(t, p.Done)
		})
	}

	_, p := query(t, base, tok, "SELECT COUNT() FROM LoyaltyProgramMember WHERE Tier__c = 'Gold'")
	assert.Equal(t, queryPage{TotalSize: 2, Done: true, Records: []map[string]any{}}, p)

	r, p := query(t, base, tok, "SELECT Id, MembershipNumber, Contact.Name, Program.Name FROM LoyaltyProgramMember WHERE MembershipNumber IN ('M-1','M-2') ORDER BY MembershipNumber")
	require.Equal(t, 200, r.status)
	first := p.Records[0]
	assert.Equal(t, "LoyaltyProgramMember", first["attributes"].(map[string]any)["type"])
	assert.Regexp(t, `^/services/data/v63.0/sobjects/LoyaltyProgramMember/0lM`, first["attributes"].(map[string]any)["url"])
	assert.Equal(t, "Ada Lovelace", first["Contact"].(map[string]any)["Name"])
	assert.Equal(t, "Contact", first["Contact"].(map[string]any)["attributes"].(map[string]any)["type"])
	assert.Equal(t, "loyaltyhub", first["Program"].(map[string]any)["Name"])
	assert.Nil(t, p.Records[1]["Contact"], "a null lookup renders as null")
	assert.Equal(t, []string{"attributes", "Id", "MembershipNumber", "Contact", "Program"}, keyOrder(t, r.body))

	_, p = query(t, base, tok, "SELECT FIELDS(CUSTOM) FROM LoyaltyProgramMember LIMIT 1")
	assert.Contains(t, p.Records[0], "Ledger_Member_Id__c")
	assert.NotContains(t, p.Records[0], "MembershipNumber")
}

// keyOrder returns the keys of the first record of a query body in wire order.
func keyOrder(t *testing.T, body []byte) []string {
	t.Helper()
	var raw struct {
		Records []json.RawMessage `json:"records"`
	}
	require.NoError(t, json.Unmarshal(body, &raw))
	dec := json.NewDecoder(bytesReader(raw.Records[0]))
	var keys []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch x := tok.(type) {
		case json.Delim:
			if x == '{' || x == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 1 {
				keys = append(keys, x)
				// skip the value
				var skip json.RawMessage
				require.NoError(t, dec.Decode(&skip))
			}
		}
	}
	return keys
}

func TestSOQLErrors(t *testing.T) {
	_, base := start(t, nil)
	tok := token(t, base)
	tests := []struct {
		soql, code, msg string
	}{
		{"SELECT Id, FullName FROM Account", "INVALID_FIELD", "No such column 'FullName' on entity 'Account'"},
		{"SELECT Id FROM Account WHERE Nope__c = 1", "INVALID_FIELD", "No such column 'Nope__c'"},
		{"SELECT Id FROM Lead", "INVALID_TYPE", "sObject type 'Lead' is not supported"},
		{"SELECT Id FROM", "MALFORMED_QUERY", "unexpected token: '<EOF>'"},
		{"SELECT FROM Account", "MALFORMED_QUERY", "unexpected token: 'FROM'"},
		{"SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Site = 'c'", "MALFORMED_QUERY", "unexpected token: 'OR'"},
		{"SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY", ""},
		{"SELECT Id FROM Account WHERE AnnualRevenue = '5'", "INVALID_QUERY_FILTER_OPERATOR", "must be of type double"},
		{"SELECT Id FROM Account WHERE Name = 5", "INVALID_QUERY_FILTER_OPERATOR", "must be of type string"},
		{"SELECT Id FROM Account WHERE Id = 'xyz'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: xyz"},
		{"SELECT Id FROM Account ORDER BY Name LIMIT x", "MALFORMED_QUERY", "unexpected token: 'x'"},
		{"SELECT COUNT(Id) FROM Account", "MALFORMED_QUERY", "COUNT()"},
		{"SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY", "LIMIT"},
		{"SELECT Owner.Name FROM Account", "INVALID_FIELD", "Owner"},
	}
	for _, tt := range tests {
		t.Run(tt.soql, func(t *testing.T) {
			r, _ := query(t, base, tok, tt.soql)
			require.Equal(t, 400, r.status, string(r.body))
			errs := r.errs(t)
			assert.Equal(t, tt.code, errs[0]["errorCode"])
			assert.Contains(t, errs[0]["message"], tt.msg)
		})
	}
	r, _ := query(t, base, tok, "SELECT Id, FullName FROM Account")
	assert.Contains(t, r.errs(t)[0]["message"], "\nSELECT Id, FullName FROM Account\n           ^\nERROR at Row:1:Column:12\n")

	r = do(t, "GET", base+v+"/query", tok, nil)
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "MALFORMED_QUERY", r.errs(t)[0]["errorCode"])
}

func TestQueryPaging(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) { c.QueryPageSize = 300 })
	tok := token(t, base)
	for i := 0; i < 700; i++ {
		_, err := srv.Insert("Contact", map[string]any{"LastName": fmt.Sprintf("C%04d", i)})
		require.NoError(t, err)
	}
	r, p := query(t, base, tok, "SELECT LastName FROM Contact ORDER BY LastName")
	require.Equal(t, 200, r.status)
	assert.Equal(t, 700, p.TotalSize)
	assert.False(t, p.Done)
	assert.Len(t, p.Records, 300)
	assert.Regexp(t, regexp.MustCompile(`^/services/data/v63\.0/query/01g[0-9A-Za-z]{15}-300$`), p.NextRecordsURL)

	var all []string
	for _, rec := range p.Records {
		all = append(all, rec["LastName"].(string))
	}
	next := p.NextRecordsURL
	pages := 1
	for next != "" {
		r := do(t, "GET", base+next, tok, nil)
		require.Equal(t, 200, r.status, string(r.body))
		var pg queryPage
		require.NoError(t, json.Unmarshal(r.body, &pg))
		assert.Equal(t, 700, pg.TotalSize)
		for _, rec := range pg.Records {
			all = append(all, rec["LastName"].(string))
		}
		next = pg.NextRecordsURL
		pages++
		assert.Equal(t, next == "", pg.Done)
	}
	assert.Equal(t, 3, pages)
	require.Len(t, all, 700)
	assert.Equal(t, "C0000", all[0])
	assert.Equal(t, "C0699", all[699])

	// a smaller batch size per request
	req := base + v + "/query?q=" + url.QueryEscape("SELECT Id FROM Contact")
	rr := doWithHeader(t, req, tok, "Sforce-Query-Options", "batchSize=200")
	var pg queryPage
	require.NoError(t, json.Unmarshal(rr.body, &pg))
	assert.Len(t, pg.Records, 200)

	r = do(t, "GET", base+v+"/query/01gEm0000000999AAA-200", tok, nil)
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "INVALID_QUERY_LOCATOR", r.errs(t)[0]["errorCode"])

	// queryAll sees deleted records
	id := srv.Records("Contact")[0]["Id"].(string)
	require.Equal(t, 204, do(t, "DELETE", base+v+"/sobjects/Contact/"+id, tok, nil).status)
	_, p = query(t, base, tok, "SELECT COUNT() FROM Contact")
	assert.Equal(t, 699, p.TotalSize)
	r = do(t, "GET", base+v+"/queryAll?q="+url.QueryEscape("SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true"), tok, nil)
	require.NoError(t, json.Unmarshal(r.body, &pg))
	require.Len(t, pg.Records, 1)
	assert.Equal(t, id, pg.Records[0]["Id"])
}

// String literals decode SOQL's escape sequences (\n, \r, \t, \b, \f in
// either case, \', \", \\, \uXXXX); \% and \_ escape LIKE patterns only;
// any other backslash is an error. LIKE compares characters, not bytes.
func TestSOQLStringEscapes(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	for _, name := range []string{"back\\slash", "backslash", "bs\bff\f", "café", "50%", "50x", "a_b", "axb", "it's \"q\"", "tab\tnl\ncr\r", "😀"} {
		_, err := srv.Insert("Contact", map[string]any{"LastName": name})
		require.NoError(t, err)
	}
	tests := []struct {
		soql string
		want []string
	}{
		{`SELECT LastName FROM Contact WHERE LastName = 'back\\slash'`, []string{"back\\slash"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE 'back\\slash'`, []string{"back\\slash"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE 'back\\%'`, []string{"back\\slash"}},
		{`SELECT LastName FROM Contact WHERE LastName = 'bs\bff\F'`, []string{"bs\bff\f"}},
		{`SELECT LastName FROM Contact WHERE LastName = 'caf\u00e9'`, []string{"café"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE 'CAF_'`, []string{"café"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE 'caf\u00E9%'`, []string{"café"}},
		{`SELECT LastName FROM Contact WHERE LastName = '\uD83D\uDE00'`, []string{"😀"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE '50\%'`, []string{"50%"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE 'a\_b'`, []string{"a_b"}},
		{`SELECT LastName FROM Contact WHERE LastName LIKE 'a_b' ORDER BY LastName`, []string{"a_b", "axb"}},
		{`SELECT LastName FROM Contact WHERE LastName = 'it\'s \"q\"'`, []string{"it's \"q\""}},
		{`SELECT LastName FROM Contact WHERE LastName = 'tab\tnl\Ncr\r'`, []string{"tab\tnl\ncr\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.soql, func(t *testing.T) {
			r, p := query(t, base, tok, tt.soql)
			require.Equal(t, 200, r.status, string(r.body))
			got := []string{}
			for _, rec := range p.Records {
				got = append(got, rec["LastName"].(string))
			}
			assert.Equal(t, tt.want, got)
		})
	}
	for _, tt := range []struct{ soql, code, msg string }{
		{`SELECT Id FROM Contact WHERE LastName = 'a\qb'`, "MALFORMED_QUERY", `Illegal character sequence '\q'`},
		{`SELECT Id FROM Contact WHERE LastName = '50\%'`, "MALFORMED_QUERY", "LIKE patterns only"},
		{`SELECT Id FROM Contact WHERE LastName = 'x\u12'`, "MALFORMED_QUERY", "Illegal character sequence"},
		{`SELECT Id FROM LoyaltyProgramMember WHERE EnrollmentDate = 2025-02-30`, "INVALID_QUERY_FILTER_OPERATOR", "must be of type date"},
	} {
		t.Run(tt.soql, func(t *testing.T) {
			r, _ := query(t, base, tok, tt.soql)
			require.Equal(t, 400, r.status, string(r.body))
			assert.Equal(t, tt.code, r.errs(t)[0]["errorCode"])
			assert.Contains(t, r.errs(t)[0]["message"], tt.msg)
		})
	}
}
