package emulator_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type asyncStatus struct {
	Status *struct {
		CallDateTime       string `json:"callDateTime"`
		CompletionDateTime string `json:"completionDateTime"`
		HasErrors          bool   `json:"hasErrors"`
		PickupDateTime     string `json:"pickupDateTime"`
		RequestStatus      string `json:"requestStatus"`
		ResultStatus       string `json:"resultStatus"`
		RequestID          string `json:"requestId"`
	} `json:"status"`
	RequestID string `json:"requestId"`
}

type asyncResults struct {
	Page     int `json:"page"`
	PageSize int `json:"pageSize"`
	Count    int `json:"count"`
	Items    []struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
		Status    string `json:"status"`
		Errors    []struct {
			ErrorMessage string `json:"errorMessage"`
			Name         string `json:"name"`
			ErrorCode    int    `json:"errorCode"`
		} `json:"errors"`
	} `json:"items"`
}

// restClient logs in as a client written against the docs would: token from the auth
// host, then REST calls on rest_instance_url.
func restClient(t *testing.T, base string) *resty.Client {
	t.Helper()
	var tok struct {
		AccessToken     string `json:"access_token"`
		RestInstanceURL string `json:"rest_instance_url"`
	}
	resp, err := resty.New().R().SetBody(map[string]string{
		"grant_type": "client_credentials", "client_id": emulator.DefaultClientID, "client_secret": emulator.DefaultClientSecret,
	}).SetResult(&tok).Post(base + "/v2/token")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode(), "%s", resp.Body())
	return resty.New().SetBaseURL(tok.RestInstanceURL).SetAuthToken(tok.AccessToken)
}

// waitComplete polls the status until the request is no longer Pending.
func waitComplete(t *testing.T, c *resty.Client, id string) asyncStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st asyncStatus
		resp, err := c.R().SetResult(&st).Get("data/v1/async/" + id + "/status")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode(), "%s", resp.Body())
		require.NotNil(t, st.Status, "%s", resp.Body())
		if st.Status.RequestStatus != "Pending" || time.Now().After(deadline) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAsyncUpsertStatusResults(t *testing.T) {
	srv, base := start(t, nil)
	c := restClient(t, base)
	var accepted struct {
		RequestID      string `json:"requestId"`
		ResultMessages []any  `json:"resultMessages"`
	}
	resp, err := c.R().SetBody(map[string]any{"items": []map[string]any{
		{"MembershipNumber": "M-1", "Tier": "Gold", "PointsBalance": 1200},
		{"MembershipNumber": "M-2", "Tier": "Silver", "Email": "not-an-email"},
		{"MembershipNumber": "M-3", "Tier": "Bronze", "PointsBalance": "3.5"},
	}}).SetResult(&accepted).Put("data/v1/async/dataextensions/key:Loyalty_Members/rows")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode(), "%s", resp.Body())
	require.NotEmpty(t, accepted.RequestID)
	assert.NotNil(t, accepted.ResultMessages)

	st := waitComplete(t, c, accepted.RequestID)
	assert.Equal(t, "Complete", st.Status.RequestStatus)
	assert.Equal(t, "Has Errors", st.Status.ResultStatus)
	assert.True(t, st.Status.HasErrors)
	assert.Equal(t, accepted.RequestID, st.Status.RequestID)
	assert.NotEqual(t, accepted.RequestID, st.RequestID, "the outer requestId is the status call's")
	for _, ts := range []string{st.Status.CallDateTime, st.Status.PickupDateTime, st.Status.CompletionDateTime} {
		_, err := time.Parse("2006-01-02T15:04:05.999", ts)
		assert.NoError(t, err, ts)
	}

	var results asyncResults
	resp, err = c.R().SetResult(&results).Get("data/v1/async/" + accepted.RequestID + "/results")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode())
	assert.Equal(t, 1, results.Page)
	assert.Equal(t, 50, results.PageSize)
	assert.Equal(t, 3, results.Count)
	require.Len(t, results.Items, 3)
	assert.Equal(t, "OK", results.Items[0].Status)
	bad := results.Items[1]
	assert.Equal(t, "Error", bad.Status)
	assert.Equal(t, "ValidationError", bad.ErrorCode)
	assert.Contains(t, bad.Message, "[Email] is not a valid email address")
	require.Len(t, bad.Errors, 1)
	assert.Equal(t, "Email", bad.Errors[0].Name)
	assert.Equal(t, "OK", results.Items[2].Status)

	// unlike a rowset, the valid items are applied
	rows := srv.Rows("Loyalty_Members")
	require.Len(t, rows, 2)
	assert.Equal(t, "1200", rows[0]["PointsBalance"])
	assert.Equal(t, "M-3", rows[1]["MembershipNumber"])
	calls := srv.Calls()
	assert.Equal(t, 1, calls["async.upsert"])
	assert.Equal(t, 1, calls["async.results"])
	assert.GreaterOrEqual(t, calls["async.status"], 1)
}

func TestAsyncInsertDuplicateKey(t *testing.T) {
	srv, base := start(t, nil)
	c := restClient(t, base)
	var accepted struct {
		RequestID string `json:"requestId"`
	}
	resp, err := c.R().SetBody(map[string]any{"items": []map[string]any{
		{"SegmentId": "VIP", "MembershipNumber": "M-1", "Joined": true},
		{"SegmentId": "VIP", "MembershipNumber": "M-1", "Joined": false},
		{"SegmentId": "VIP", "Joined": true},
	}}).SetResult(&accepted).Post("data/v1/async/dataextensions/" + emulator.SegmentMembersID + "/rows")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode(), "%s", resp.Body())
	st := waitComplete(t, c, accepted.RequestID)
	assert.Equal(t, "Complete", st.Status.RequestStatus)

	var results asyncResults
	_, err = c.R().SetResult(&results).SetQueryParams(map[string]string{"page": "1", "pageSize": "2"}).
		Get("data/v1/async/" + accepted.RequestID + "/results")
	require.NoError(t, err)
	assert.Equal(t, 3, results.Count)
	require.Len(t, results.Items, 2, "one page of 2")
	assert.Equal(t, "OK", results.Items[0].Status)
	assert.Equal(t, "UnexpectedError", results.Items[1].ErrorCode)
	assert.Contains(t, results.Items[1].Message, "Violation of PRIMARY KEY constraint")

	_, err = c.R().SetResult(&results).SetQueryParams(map[string]string{"page": "2", "pageSize": "2"}).
		Get("data/v1/async/" + accepted.RequestID + "/results")
	require.NoError(t, err)
	require.Len(t, results.Items, 1)
	assert.Equal(t, "Cannot locate the existing record. Required keys are missing.", results.Items[0].Message)
	require.NotEmpty(t, results.Items[0].Errors)
	assert.Equal(t, 70001, results.Items[0].Errors[0].ErrorCode)

	rows := srv.Rows("Loyalty_Segment_Members")
	require.Len(t, rows, 1)
	assert.Equal(t, "True", rows[0]["Joined"], "the duplicate was not applied")
}

func TestAsyncAllGood(t *testing.T) {
	_, base := start(t, nil)
	c := restClient(t, base)
	var accepted struct {
		RequestID string `json:"requestId"`
	}
	resp, err := c.R().SetBody(map[string]any{"items": []map[string]any{{"MembershipNumber": "M-1", "Tier": "Gold"}}}).
		SetResult(&accepted).Put("data/v1/async/dataextensions/key:Loyalty_Members/rows")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode())
	st := waitComplete(t, c, accepted.RequestID)
	assert.Equal(t, "OK", st.Status.ResultStatus)
	assert.False(t, st.Status.HasErrors)
}

func TestAsyncRejections(t *testing.T) {
	_, base := start(t, nil)
	tok := token(t, base)
	tooMany := make([]map[string]any, 32001)
	for i := range tooMany {
		tooMany[i] = map[string]any{"MembershipNumber": "M"}
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		code   string // resultMessages[0].resultCode, or "" for an error body
	}{
		{"unknown key", "PUT", "/data/v1/async/dataextensions/key:Nope/rows", map[string]any{"items": []any{map[string]any{"a": 1}}}, "CustomObjectNotFound"},
		{"unknown id", "PUT", "/data/v1/async/dataextensions/11111111-2222-3333-4444-555555555555/rows", map[string]any{"items": []any{map[string]any{"a": 1}}}, "CustomObjectNotFound"},
		{"no items", "PUT", "/data/v1/async/dataextensions/key:Loyalty_Members/rows", map[string]any{"rows": []any{}}, "ItemsRequired"},
		{"empty items", "POST", "/data/v1/async/dataextensions/key:Loyalty_Members/rows", map[string]any{"items": []any{}}, "ItemsRequired"},
		{"over 32,000 items", "PUT", "/data/v1/async/dataextensions/key:Loyalty_Members/rows", map[string]any{"items": tooMany}, "MaxItemsExceeded"},
		{"id not a guid", "PUT", "/data/v1/async/dataextensions/not-a-guid/rows", map[string]any{"items": []any{}}, ""},
		{"status of a non-guid", "GET", "/data/v1/async/abc/status", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.method, base+tt.path, tok, tt.body)
			require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
			body := res.object(t)
			if tt.code == "" {
				assert.Equal(t, float64(10001), body["errorcode"])
				return
			}
			msgs := body["resultMessages"].([]any)
			require.Len(t, msgs, 1)
			assert.Equal(t, tt.code, msgs[0].(map[string]any)["resultCode"])
		})
	}
	// an unknown request id: 200 without a status object
	res := do(t, "GET", base+"/data/v1/async/11111111-2222-3333-4444-555555555555/status", tok, nil)
	require.Equal(t, http.StatusOK, res.status)
	assert.NotContains(t, res.object(t), "status")
}
