package emulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRowsetUpsertThenUpdate(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	res := do(t, "POST", base+segRowset, tok, []any{
		row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-1"},
			map[string]any{"SegmentMemberKey": "VIP:M-1", "Joined": true, "Joined_At": "2025-01-02T10:00:00Z", "Segment_Version": 3}),
		row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-2"}, map[string]any{"Joined": "true"}),
	})
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	echo := res.array(t)
	require.Len(t, echo, 2)
	assert.Equal(t, map[string]any{
		"keys":   map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-1"},
		"values": map[string]any{"SegmentMemberKey": "VIP:M-1", "Joined": "True", "Joined_At": "2025-01-02T10:00:00Z", "Segment_Version": "3"},
	}, echo[0])

	// The same primary key again: an update, column by column; null clears a column.
	res = do(t, "POST", base+segRowset, tok, []any{
		row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-1"}, map[string]any{"Joined": 0, "Segment_Version": "4", "Joined_At": nil}),
	})
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)

	rows := srv.Rows("Loyalty_Segment_Members")
	require.Len(t, rows, 2)
	assert.Equal(t, map[string]string{"SegmentId": "VIP", "MembershipNumber": "M-1", "SegmentMemberKey": "VIP:M-1",
		"Joined": "False", "Joined_At": "", "Segment_Version": "4"}, rows[0])
	assert.Equal(t, "M-2", rows[1]["MembershipNumber"])
	assert.Equal(t, "True", rows[1]["Joined"])
	assert.Equal(t, 2, srv.Calls()["rowset.upsert"])
}

// Primary key text is compared as SQL Server does, case-insensitively; column names too.
func TestRowsetKeysAndColumnsIgnoreCase(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	require.Equal(t, 200, do(t, "POST", base+membersRowset, tok, []any{row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Gold"})}).status)
	res := do(t, "POST", base+"/hub/v1/dataevents/key:loyalty_members/rowset", tok,
		[]any{row(map[string]any{"membershipnumber": "m-1"}, map[string]any{"tier": "Silver", "PointsBalance": 12.5})})
	require.Equal(t, 200, res.status, "%s", res.body)
	rows := srv.Rows("Loyalty_Members")
	require.Len(t, rows, 1)
	assert.Equal(t, "M-1", rows[0]["MembershipNumber"])
	assert.Equal(t, "Silver", rows[0]["Tier"])
	assert.Equal(t, "12.5", rows[0]["PointsBalance"])
}

func TestRowsetByID(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	body := []any{row(map[string]any{"MembershipNumber": "M-7"}, map[string]any{"Email": "ann@example.com"})}
	res := do(t, "POST", base+"/hub/v1/dataevents/"+emulator.MembersID+"/rowset", tok, body)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	res = do(t, "POST", base+"/hub/v1/dataevents/"+strings.ToUpper(emulator.MembersID)+"/rowset", tok, body)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	assert.Equal(t, "ann@example.com", srv.Rows("Loyalty_Members")[0]["Email"])

	res = do(t, "POST", base+"/hub/v1/dataevents/11111111-2222-3333-4444-555555555555/rowset", tok, body)
	assert.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, float64(10000), res.object(t)["errorcode"])
}

// Each kind of invalid row: the call is refused as a whole (400, errorcode 10006), with
// one additional error per problem naming the row index and the column, and nothing saved.
func TestRowsetAllOrNothing(t *testing.T) {
	seg := func(m string, values map[string]any) map[string]any {
		return row(map[string]any{"SegmentId": "VIP", "MembershipNumber": m}, values)
	}
	mem := func(values map[string]any) map[string]any {
		return row(map[string]any{"MembershipNumber": "M-9"}, values)
	}
	tests := []struct {
		name    string
		path    string
		bad     map[string]any
		message string // of the single additional error, after "Row 1: "
	}{
		{"missing primary key", segRowset, row(map[string]any{"SegmentId": "VIP"}, map[string]any{"Joined": true}),
			"MembershipNumber: The primary key column [MembershipNumber] is missing from \"keys\"."},
		{"keys names a non-key column", segRowset, row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-9", "Joined": true}, map[string]any{"Segment_Version": 1}),
			"Joined: Column [Joined] is not a primary key column; send it in \"values\"."},
		{"unknown column", segRowset, seg("M-9", map[string]any{"Joined": true, "Colour": "red"}),
			"Colour: The column [Colour] does not exist in the data extension."},
		{"Number not an integer", segRowset, seg("M-9", map[string]any{"Segment_Version": 1.5}),
			"Segment_Version: The value for column [Segment_Version] is not a valid Number (a whole number)."},
		{"Number out of Int32", segRowset, seg("M-9", map[string]any{"Segment_Version": 3000000000}),
			"Segment_Version: The value for column [Segment_Version] is not a valid Number: it must be between -2147483648 and 2147483647."},
		{"Decimal not a number", "/hub/v1/dataevents/key:Loyalty_Members/rowset", mem(map[string]any{"PointsBalance": "12,5"}),
			"PointsBalance: The value for column [PointsBalance] is not a valid Decimal."},
		{"Boolean", segRowset, seg("M-9", map[string]any{"Joined": "yes"}),
			"Joined: The value for column [Joined] is not a valid Boolean."},
		{"Boolean number", segRowset, seg("M-9", map[string]any{"Joined": 2}),
			"Joined: The value for column [Joined] is not a valid Boolean."},
		{"Date", segRowset, seg("M-9", map[string]any{"Joined_At": "31/12/2024"}),
			"Joined_At: The value for column [Joined_At] is not a valid Date."},
		{"text too long", segRowset, seg("M-9", map[string]any{"SegmentMemberKey": strings.Repeat("k", 121)}),
			"SegmentMemberKey: The value for column [SegmentMemberKey] exceeds the column's maximum length."},
		{"email without @", "/hub/v1/dataevents/key:Loyalty_Members/rowset", mem(map[string]any{"Email": "ann.example.com"}),
			"Email: The value for column [Email] is not a valid email address. Parse error [InvalidEmailAddress]"},
		{"null primary key", segRowset, row(map[string]any{"SegmentId": "VIP", "MembershipNumber": nil}, map[string]any{"Joined": true}),
			"MembershipNumber: Column [MembershipNumber] does not allow null value."},
		{"object value", segRowset, seg("M-9", map[string]any{"SegmentMemberKey": map[string]any{"a": 1}}),
			"SegmentMemberKey: The value for column [SegmentMemberKey] is not a valid Text: objects and arrays are not column values."},
		{"no values", segRowset, seg("M-9", nil),
			"At least one existing field is required in the values property."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := start(t, nil)
			tok := token(t, base)
			var good map[string]any
			if strings.Contains(tt.path, "Loyalty_Members") {
				good = row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Gold"})
			} else {
				good = seg("M-1", map[string]any{"Joined": true})
			}
			res := do(t, "POST", base+tt.path, tok, []any{good, tt.bad})
			require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
			body := res.object(t)
			assert.Contains(t, body["message"], "Unable to save rows for data extension ID ")
			assert.Equal(t, float64(10006), body["errorcode"])
			extra, _ := body["additionalErrors"].([]any)
			require.Len(t, extra, 1, "%s", res.body)
			first := extra[0].(map[string]any)
			assert.Equal(t, "Row 1: "+tt.message, first["message"])
			assert.Equal(t, float64(10000), first["errorcode"])
			for _, key := range srv.DataExtensions() {
				assert.Empty(t, srv.Rows(key), "nothing is saved")
			}
		})
	}
}

func TestRowsetReportsEveryProblem(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	res := do(t, "POST", base+segRowset, tok, []any{
		row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-0"}, map[string]any{"Joined": "maybe", "Segment_Version": "x"}),
		row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-1"}, map[string]any{"Joined": true}),
		row(map[string]any{"SegmentId": "VIP", "MembershipNumber": "M-2"}, map[string]any{"Joined_At": "2025-13-45"}),
	})
	require.Equal(t, http.StatusBadRequest, res.status)
	var msgs []string
	for _, e := range res.object(t)["additionalErrors"].([]any) {
		msgs = append(msgs, e.(map[string]any)["message"].(string))
	}
	assert.Equal(t, []string{
		"Row 0: Joined: The value for column [Joined] is not a valid Boolean.",
		"Row 0: Segment_Version: The value for column [Segment_Version] is not a valid Number (a whole number).",
		"Row 2: Joined_At: The value for column [Joined_At] is not a valid Date.",
	}, msgs)
	assert.Empty(t, srv.Rows("Loyalty_Segment_Members"))
}

// A required column must be given when a row is inserted; an update may leave it out.
func TestRowsetRequiredColumn(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) {
		c.DataExtensions = append(c.DataExtensions, emulator.DataExtension{Key: "Codes", Fields: []emulator.Field{
			{Name: "Code", Type: emulator.FieldNumber, PrimaryKey: true},
			{Name: "Label", Type: emulator.FieldText, Required: true},
			{Name: "Note", Type: emulator.FieldText},
		}})
	})
	tok := token(t, base)
	path := base + "/hub/v1/dataevents/key:Codes/rowset"
	res := do(t, "POST", path, tok, []any{row(map[string]any{"Code": 1}, map[string]any{"Note": "n"})})
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, string(res.body), "Row 0: Label: Column [Label] does not allow null value.")

	require.Equal(t, http.StatusOK, do(t, "POST", path, tok, []any{row(map[string]any{"Code": "1"}, map[string]any{"Label": "one"})}).status)
	require.Equal(t, http.StatusOK, do(t, "POST", path, tok, []any{row(map[string]any{"Code": 1}, map[string]any{"Note": "n"})}).status)
	res = do(t, "POST", path, tok, []any{row(map[string]any{"Code": 1}, map[string]any{"Label": nil})})
	require.Equal(t, http.StatusBadRequest, res.status, "a required column cannot be set to null")
	assert.Equal(t, []map[string]string{{"Code": "1", "Label": "one", "Note": "n"}}, srv.Rows("Codes"))
}

func TestRowsetValueForms(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	dates := []string{"2025-01-02", "2025-01-02T10:11:12", "2025-01-02T10:11:12.123Z", "2025-01-02T10:11:12+02:00",
		"2025-01-02 10:11:12", "1/2/2025", "01/02/2025 3:04:05 PM", "1/2/2025 3:04 am", "1/2/2025 15:04"}
	var rows []any
	for i, d := range dates {
		rows = append(rows, row(map[string]any{"SegmentId": "D", "MembershipNumber": string(rune('a' + i))},
			map[string]any{"Joined_At": d, "Joined": []any{"True", "False", "1", "0", 1, 0, true, false, "TRUE"}[i], "Segment_Version": " 7 "}))
	}
	res := do(t, "POST", base+segRowset, tok, rows)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	got := srv.Rows("Loyalty_Segment_Members")
	require.Len(t, got, len(dates))
	for i, r := range got {
		assert.Equal(t, dates[i], r["Joined_At"], "dates are stored as given")
		assert.Equal(t, "7", r["Segment_Version"])
		assert.Equal(t, []string{"True", "False"}[i%2], r["Joined"])
	}
}

func TestRowsetBadBodies(t *testing.T) {
	_, base := start(t, nil)
	tok := token(t, base)
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		code   float64
	}{
		{"object, not array", segRowset, map[string]any{"items": []any{}}, 400, 10004},
		{"not json", segRowset, "[{", 400, 10004},
		{"empty array", segRowset, []any{}, 400, 10004},
		{"unknown key", "/hub/v1/dataevents/key:Nope/rowset", []any{}, 400, 10000},
		{"unknown path", "/hub/v1/dataevents/key:Loyalty_Members/rowsets", []any{}, 404, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, "POST", base+tt.path, tok, tt.body)
			require.Equal(t, tt.status, res.status, "%s", res.body)
			body := res.object(t)
			assert.Equal(t, tt.code, body["errorcode"])
			assert.NotEmpty(t, body["message"])
		})
	}
	// the element is not an object
	res := do(t, "POST", base+segRowset, tok, []any{"VIP"})
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, string(res.body), `Row 0: The row is not an object with \"keys\" and \"values\".`)
}

func TestMethodSizeAndMediaType(t *testing.T) {
	_, base := start(t, nil)
	tok := token(t, base)
	res := do(t, "GET", base+segRowset, tok, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	assert.Equal(t, "POST", res.header.Get("Allow"))

	big := `[{"keys":{"SegmentId":"` + strings.Repeat("x", 6<<20) + `"}}]`
	res = do(t, "POST", base+segRowset, tok, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.status)

	req, err := http.NewRequest("POST", base+segRowset, strings.NewReader("[]"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
}

func TestSingleRowPut(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	res := do(t, "PUT", base+"/hub/v1/dataevents/key:Loyalty_Members/rows/MembershipNumber:M-42", tok,
		map[string]any{"values": map[string]any{"Tier": "Gold", "PointsBalance": "100.25", "Updated_At": "2025-03-01T08:00:00Z"}})
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	assert.Equal(t, map[string]any{"keys": map[string]any{"MembershipNumber": "M-42"},
		"values": map[string]any{"Tier": "Gold", "PointsBalance": "100.25", "Updated_At": "2025-03-01T08:00:00Z"}}, res.object(t))

	res = do(t, "PUT", base+"/hub/v1/dataevents/"+emulator.MembersID+"/rows/MembershipNumber:M-42", tok,
		map[string]any{"values": map[string]any{"Tier": "Platinum"}})
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	rows := srv.Rows("Loyalty_Members")
	require.Len(t, rows, 1)
	assert.Equal(t, "Platinum", rows[0]["Tier"])
	assert.Equal(t, "100.25", rows[0]["PointsBalance"])
	assert.Equal(t, 2, srv.Calls()["row.upsert"])

	// invalid value: the rowset's aggregate error
	res = do(t, "PUT", base+"/hub/v1/dataevents/key:Loyalty_Members/rows/MembershipNumber:M-42", tok,
		map[string]any{"values": map[string]any{"Email": "nope"}})
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, float64(10006), res.object(t)["errorcode"])

	// composite primary key, wrong key column
	res = do(t, "PUT", base+"/hub/v1/dataevents/key:Loyalty_Segment_Members/rows/SegmentId:VIP", tok,
		map[string]any{"values": map[string]any{"Joined": true}})
	assert.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, res.object(t)["message"], "composite primary key")
	res = do(t, "PUT", base+"/hub/v1/dataevents/key:Loyalty_Members/rows/Email:a@b.c", tok,
		map[string]any{"values": map[string]any{"Tier": "Gold"}})
	assert.Equal(t, http.StatusBadRequest, res.status)
}
