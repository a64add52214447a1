package emulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	salesforce "github.com/k-capehart/go-salesforce/v3"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func collectionBody(recs ...map[string]any) map[string]any {
	for _, r := range recs {
		r["attributes"] = map[string]any{"type": "LoyaltyProgramMember"}
	}
	return map[string]any{"allOrNone": false, "records": recs}
}

func TestFaultHTTPStatuses(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 2})
	require.NoError(t, err)

	for i := 0; i < 2; i++ {
		r := do(t, "GET", base+v+"/limits", tok, nil)
		require.Equal(t, 429, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		assert.Equal(t, "REQUEST_LIMIT_EXCEEDED", r.errs(t)[0]["errorCode"])
	}
	r := do(t, "GET", base+v+"/limits", tok, nil)
	assert.Equal(t, 200, r.status, "the fault is gone after two calls")
	assert.Equal(t, "api-usage=1/100000", r.header.Get("Sforce-Limit-Info"), "throttled calls are not counted")
	assert.Empty(t, srv.Faults())

	// the admin API adds faults at runtime
	resp, err := http.Post(base+"/__emulator/faults", "application/json",
		strings.NewReader(`{"kind":"http_503","count":1,"operations":["collections"]}`))
	require.NoError(t, err)
	var added map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&added))
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode, "%v", added)
	assert.Equal(t, "http_503", added["kind"])

	assert.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status, "limits is not a collections call")
	r = do(t, "POST", base+v+"/composite/sobjects", tok, collectionBody(member("M-1")))
	assert.Equal(t, 503, r.status)
	assert.Equal(t, "SERVER_UNAVAILABLE", r.errs(t)[0]["errorCode"])
	assert.Empty(t, srv.Records("LoyaltyProgramMember"))
	r = do(t, "POST", base+v+"/composite/sobjects", tok, collectionBody(member("M-1")))
	assert.Equal(t, 200, r.status)

	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultRequestLimit, Count: 1})
	require.NoError(t, err)
	r = do(t, "GET", base+v+"/sobjects", tok, nil)
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "REQUEST_LIMIT_EXCEEDED", r.errs(t)[0]["errorCode"])

	st := srv.Stats()
	assert.Equal(t, 2, st.Faults["http_429"])
	assert.Equal(t, 1, st.Faults["http_503"])
	assert.Equal(t, 1, st.Faults["request_limit_exceeded"])

	resp, err = http.Post(base+"/__emulator/faults", "application/json", strings.NewReader(`{"kind":"meteor"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
}

func TestFaultLockRow(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)

	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLockRow, Count: 1})
	require.NoError(t, err)
	assert.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status, "reads are not locked")
	r := do(t, "POST", base+v+"/composite/sobjects", tok, collectionBody(member("M-1"), member("M-2")))
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "UNABLE_TO_LOCK_ROW", r.errs(t)[0]["errorCode"])
	assert.Empty(t, srv.Records("LoyaltyProgramMember"))

	// per record: exactly one record of the batch fails, the others are saved
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultRecordLockRow, Count: 1})
	require.NoError(t, err)
	r = do(t, "POST", base+v+"/composite/sobjects", tok, collectionBody(member("M-1"), member("M-2"), member("M-3")))
	require.Equal(t, 200, r.status)
	var res []struct {
		Success bool `json:"success"`
		Errors  []struct {
			StatusCode string `json:"statusCode"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &res))
	assert.False(t, res[0].Success)
	assert.Equal(t, "UNABLE_TO_LOCK_ROW", res[0].Errors[0].StatusCode)
	assert.True(t, res[1].Success && res[2].Success)
	assert.Len(t, srv.Records("LoyaltyProgramMember"), 2)

	// restricted to an object, through go-salesforce
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultRecordLockRow, Objects: []string{"Contact"}})
	require.NoError(t, err)
	sf, err := salesforce.Init(salesforce.Creds{Domain: base, ConsumerKey: emulator.DefaultClientID, ConsumerSecret: emulator.DefaultClientSecret})
	require.NoError(t, err)
	ins, err := sf.InsertCollection("LoyaltyProgramMember", []map[string]any{member("M-9")}, 200)
	require.NoError(t, err)
	assert.False(t, ins.HasSalesforceErrors, "members are not affected")
	ins, err = sf.InsertCollection("Contact", []map[string]any{{"LastName": "A"}, {"LastName": "B"}}, 200)
	require.NoError(t, err)
	require.True(t, ins.HasSalesforceErrors)
	assert.Equal(t, "UNABLE_TO_LOCK_ROW", ins.Results[1].Errors[0].StatusCode)
	_, err = sf.InsertOne("Contact", map[string]any{"LastName": "C"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "UNABLE_TO_LOCK_ROW")
	srv.ClearFaults()
	_, err = sf.InsertOne("Contact", map[string]any{"LastName": "C"})
	require.NoError(t, err)
}

func TestFaultLatencyAndProbability(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 150 * time.Millisecond, Count: 1, Operations: []string{"limits"}})
	require.NoError(t, err)
	started := time.Now()
	require.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status)
	assert.GreaterOrEqual(t, time.Since(started), 150*time.Millisecond)
	started = time.Now()
	require.Equal(t, 200, do(t, "GET", base+v+"/limits", tok, nil).status)
	assert.Less(t, time.Since(started), 150*time.Millisecond)

	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultUnavailable, Probability: 0.3})
	require.NoError(t, err)
	failed := 0
	for i := 0; i < 200; i++ {
		if do(t, "GET", base+v+"/limits", tok, nil).status == 503 {
			failed++
		}
	}
	assert.InDelta(t, 60, failed, 30, "about 30%% of 200 calls fail")
	assert.Equal(t, failed, srv.Stats().Faults["http_503"])

	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency})
	require.Error(t, err, "a latency fault needs a latency")
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Probability: 2})
	require.Error(t, err)
}

func TestFaultOnTokenEndpoint(t *testing.T) {
	srv, base := start(t, nil)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultUnavailable, Count: 1})
	require.NoError(t, err)
	token(t, base) // "auth" is only faulted when listed
	_, err = srv.AddFault(emulator.Fault{Kind: emulator.FaultUnavailable, Count: 1, Operations: []string{"auth"}})
	require.NoError(t, err)
	_, err = salesforce.Init(salesforce.Creds{Domain: base, ConsumerKey: emulator.DefaultClientID, ConsumerSecret: emulator.DefaultClientSecret})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "503")
}
