package emulator_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidation checks that creates and updates fail like a real org's, with the error
// code, a message naming the field, and the fields list.
func TestValidation(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	memberID, err := srv.Insert("LoyaltyProgramMember", member("M-1", "Ledger_Member_Id__c", "L-1"))
	require.NoError(t, err)
	contactID, err := srv.Insert("Contact", map[string]any{"LastName": "Doe"})
	require.NoError(t, err)

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantInMsg  []string
		wantFields []string
	}{
		{"unknown field", "POST", "/sobjects/Contact", `{"LastName":"X","Shoe_Size__c":42}`, 400, "INVALID_FIELD",
			[]string{"Shoe_Size__c", "Contact"}, nil},
		{"compound Name is not createable", "POST", "/sobjects/Contact", `{"LastName":"X","Name":"X Y"}`, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
			[]string{"Unable to create/update fields: Name"}, []string{"Name"}},
		{"audit fields are read-only", "POST", "/sobjects/Account", `{"Name":"A","CreatedDate":"2020-01-01T00:00:00Z","SystemModstamp":"2020-01-01T00:00:00Z"}`, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
			[]string{"CreatedDate, SystemModstamp"}, []string{"CreatedDate", "SystemModstamp"}},
		{"Id on insert", "POST", "/sobjects/Contact", `{"LastName":"X","Id":"` + contactID + `"}`, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
			[]string{"cannot specify Id in an insert call"}, []string{"Id"}},
		{"ProgramId is create-only", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"ProgramId":"` + emulator.DefaultProgramID + `"}`, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
			[]string{"ProgramId"}, []string{"ProgramId"}},
		{"restricted custom picklist", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"Tier__c":"Diamond"}`, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
			[]string{"Tier: bad value for restricted picklist field: Diamond"}, []string{"Tier__c"}},
		{"restricted standard picklist", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"MemberStatus":"Frozen"}`, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
			[]string{"Member Status", "Frozen"}, []string{"MemberStatus"}},
		{"picklist values are case-sensitive", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"EnrollmentChannel":"web"}`, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
			[]string{"web"}, []string{"EnrollmentChannel"}},
		{"string in a number field", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"Ledger_Version__c":"seven"}`, 400, "JSON_PARSER_ERROR",
			[]string{"double", "seven"}, nil},
		{"word in a checkbox", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"CanReceivePromotions":"yes"}`, 400, "JSON_PARSER_ERROR",
			[]string{"boolean"}, nil},
		{"bad date", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"EnrollmentDate":"02/01/2025"}`, 400, "JSON_PARSER_ERROR",
			[]string{"date"}, nil},
		{"number in a date", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"EnrollmentDate":20250102}`, 400, "JSON_PARSER_ERROR",
			[]string{"date"}, nil},
		{"malformed JSON", "POST", "/sobjects/Contact", `{"LastName":`, 400, "JSON_PARSER_ERROR", nil, nil},
		{"missing required field", "POST", "/sobjects/Contact", `{"FirstName":"Ada"}`, 400, "REQUIRED_FIELD_MISSING",
			[]string{"Required fields are missing: [LastName]"}, []string{"LastName"}},
		{"missing required member fields", "POST", "/sobjects/LoyaltyProgramMember", `{"Tier__c":"Gold"}`, 400, "REQUIRED_FIELD_MISSING",
			[]string{"MembershipNumber", "ProgramId", "EnrollmentDate"}, []string{"MembershipNumber", "ProgramId", "EnrollmentDate"}},
		{"required field set to null", "PATCH", "/sobjects/Contact/" + contactID, `{"LastName":null}`, 400, "REQUIRED_FIELD_MISSING",
			[]string{"LastName"}, []string{"LastName"}},
		{"duplicate unique value, other case", "POST", "/sobjects/LoyaltyProgramMember", `{"MembershipNumber":"M-2","ProgramId":"` + emulator.DefaultProgramID + `","EnrollmentDate":"2025-01-01","Ledger_Member_Id__c":"l-1"}`,
			400, "DUPLICATE_VALUE", []string{"Ledger_Member_Id__c", memberID}, nil},
		{"duplicate membership number in a program", "POST", "/sobjects/LoyaltyProgramMember", `{"MembershipNumber":"M-1","ProgramId":"` + emulator.DefaultProgramID + `","EnrollmentDate":"2025-01-01"}`,
			400, "DUPLICATE_VALUE", []string{"MembershipNumber"}, nil},
		{"string too long", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"Ledger_Member_Id__c":"` + strings.Repeat("x", 65) + `"}`, 400, "STRING_TOO_LONG",
			[]string{"Ledger Member Id: data value too large", "max length=64"}, []string{"Ledger_Member_Id__c"}},
		{"bad email", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"Email__c":"not an email"}`, 400, "INVALID_EMAIL_ADDRESS",
			[]string{"Email: invalid email address: not an email"}, []string{"Email__c"}},
		{"number out of range", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"Ledger_Version__c":1e19}`, 400, "NUMBER_OUTSIDE_VALID_RANGE",
			[]string{"Ledger Version"}, []string{"Ledger_Version__c"}},
		{"malformed reference", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"ContactId":"123"}`, 400, "MALFORMED_ID",
			[]string{"Contact ID: id value of incorrect type: 123"}, []string{"ContactId"}},
		{"reference to a missing record", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"ContactId":"003Em00000000ZZ"}`, 400, "INVALID_CROSS_REFERENCE_KEY",
			[]string{"Contact ID"}, []string{"ContactId"}},
		{"reference of the wrong type", "PATCH", "/sobjects/LoyaltyProgramMember/" + memberID, `{"ContactId":"` + memberID + `"}`, 400, "FIELD_INTEGRITY_EXCEPTION",
			[]string{"id value of incorrect type"}, []string{"ContactId"}},
		{"unknown object", "POST", "/sobjects/Lead", `{"LastName":"X"}`, 404, "NOT_FOUND", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+v+tt.path, tok, tt.body)
			require.Equal(t, tt.wantStatus, r.status, "body: %s", r.body)
			errs := r.errs(t)
			require.Len(t, errs, 1)
			assert.Equal(t, tt.wantCode, errs[0]["errorCode"], "top-level errors use errorCode")
			assert.NotContains(t, errs[0], "statusCode")
			for _, part := range tt.wantInMsg {
				assert.Contains(t, errs[0]["message"], part)
			}
			if tt.wantFields != nil {
				got := []string{}
				for _, f := range errs[0]["fields"].([]any) {
					got = append(got, f.(string))
				}
				assert.ElementsMatch(t, tt.wantFields, got)
			}
		})
	}
	// nothing above changed the member
	rec, _ := srv.Get("LoyaltyProgramMember", memberID)
	assert.Nil(t, rec["Tier__c"])
	assert.Equal(t, "Active", rec["MemberStatus"])
	assert.Equal(t, "L-1", rec["Ledger_Member_Id__c"])
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 1)
}

// TestCoercions checks the values a real org accepts beyond the exact JSON type.
func TestCoercions(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	r := do(t, "POST", base+v+"/sobjects/LoyaltyProgramMember", tok, `{"MembershipNumber":"M-1","ProgramId":"`+emulator.DefaultProgramID[:15]+
		`","EnrollmentDate":"2025-01-02T23:00:00Z","Ledger_Version__c":"42","CanReceivePromotions":"true","Ledger_Member_Id__c":"","LastActivityDate":null}`)
	require.Equal(t, 201, r.status, string(r.body))
	id := r.json(t).(map[string]any)["id"].(string)
	rec, ok := srv.Get("LoyaltyProgramMember", id)
	require.True(t, ok)
	assert.Equal(t, emulator.DefaultProgramID, rec["ProgramId"], "15-character ids are stored in 18-character form")
	assert.Equal(t, "2025-01-02", rec["EnrollmentDate"])
	assert.Equal(t, 42.0, rec["Ledger_Version__c"])
	assert.Equal(t, true, rec["CanReceivePromotions"])
	assert.Equal(t, false, rec["CanReceivePartnerPromotions"], "checkboxes default to false")
	assert.Nil(t, rec["Ledger_Member_Id__c"], "an empty string is stored as null")
	assert.Equal(t, "Individual", rec["MemberType"])

	var journal map[string]any
	r = do(t, "POST", base+v+"/sobjects/TransactionJournal", tok, `{"ActivityDate":"2025-01-02T10:00:00+02:00","TransactionAmount":10.005}`)
	require.Equal(t, 201, r.status, string(r.body))
	require.NoError(t, json.Unmarshal(do(t, "GET", base+v+"/sobjects/TransactionJournal/"+r.json(t).(map[string]any)["id"].(string), tok, nil).body, &journal))
	assert.Equal(t, "2025-01-02T08:00:00.000+0000", journal["ActivityDate"])
	assert.Equal(t, 10.01, journal["TransactionAmount"])
}

// TestCollectionValidation: per-record validation errors use statusCode and leave the
// other records alone; body-level problems fail the request.
func TestCollectionValidation(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	rec := func(m map[string]any) map[string]any {
		m["attributes"] = map[string]any{"type": "LoyaltyProgramMember"}
		return m
	}
	r := do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"records": []map[string]any{
		rec(member("M-1", "Ledger_Member_Id__c", "L-1")),
		rec(member("M-2", "Ledger_Member_Id__c", "L-1")),
		rec(map[string]any{"MembershipNumber": "M-3"}),
		rec(member("M-4", "Email__c", "x@")),
		{"attributes": map[string]any{"type": "Contact"}, "LastName": "Mixed types are fine"},
	}})
	require.Equal(t, 200, r.status, string(r.body))
	var res []struct {
		ID      string `json:"id"`
		Success bool   `json:"success"`
		Errors  []struct {
			StatusCode string   `json:"statusCode"`
			Message    string   `json:"message"`
			Fields     []string `json:"fields"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &res))
	require.Len(t, res, 5)
	assert.True(t, res[0].Success)
	assert.Equal(t, "DUPLICATE_VALUE", res[1].Errors[0].StatusCode)
	assert.Equal(t, "REQUIRED_FIELD_MISSING", res[2].Errors[0].StatusCode)
	assert.Equal(t, []string{"ProgramId", "EnrollmentDate"}, res[2].Errors[0].Fields)
	assert.Equal(t, "INVALID_EMAIL_ADDRESS", res[3].Errors[0].StatusCode)
	assert.True(t, res[4].Success)
	assert.True(t, strings.HasPrefix(res[4].ID, "003"))
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 1)

	r = do(t, "POST", base+v+"/composite/sobjects", tok, map[string]any{"records": []map[string]any{
		rec(member("M-5")), rec(member("M-6", "Ledger_Version__c", "x"))}})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "JSON_PARSER_ERROR", r.errs(t)[0]["errorCode"])
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 1, "a body-level error stores nothing")
}
