package emulator_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var oneRow = []any{row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Gold"})}

func TestFaultTooManyRequests(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base) // auth is not affected by a fault without Operations
	id, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 1})
	require.NoError(t, err)

	res := do(t, "POST", base+membersRowset, tok, oneRow)
	require.Equal(t, http.StatusTooManyRequests, res.status)
	assert.Equal(t, "1", res.header.Get("Retry-After"))
	body := res.object(t)
	assert.Equal(t, "Rate limit exceeded", body["message"])
	assert.Equal(t, float64(50100), body["errorcode"])
	assert.Equal(t, float64(1), body["retryAfter"])
	assert.NotEmpty(t, body["documentation"])
	assert.Empty(t, srv.Rows("Loyalty_Members"), "the throttled call did nothing")

	// Count 1: removed after firing once
	assert.False(t, srv.RemoveFault(id))
	assert.Equal(t, http.StatusOK, do(t, "POST", base+membersRowset, tok, oneRow).status)
	assert.Equal(t, 2, srv.Calls()["rowset.upsert"], "both answers count")
}

func TestFaultServerErrorByOperation(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	id, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultServerError, Operations: []string{"row.upsert", "auth"}})
	require.NoError(t, err)

	assert.Equal(t, http.StatusOK, do(t, "POST", base+membersRowset, tok, oneRow).status, "other operations are not affected")
	res := do(t, "PUT", base+"/hub/v1/dataevents/key:Loyalty_Members/rows/MembershipNumber:M-1", tok, map[string]any{"values": map[string]any{"Tier": "x"}})
	require.Equal(t, http.StatusInternalServerError, res.status)
	assert.NotEmpty(t, res.object(t)["message"])
	res = do(t, "POST", base+"/v2/token", "", map[string]any{"grant_type": "client_credentials", "client_id": "loyaltyhub-emulator", "client_secret": "emulator-secret"})
	assert.Equal(t, http.StatusInternalServerError, res.status)

	faults := srv.Faults()
	require.Len(t, faults, 1)
	assert.Equal(t, 2, faults[0].Fired)
	assert.True(t, srv.RemoveFault(id))
	assert.Equal(t, http.StatusOK, do(t, "PUT", base+"/hub/v1/dataevents/key:Loyalty_Members/rows/MembershipNumber:M-1", tok, map[string]any{"values": map[string]any{"Tier": "x"}}).status)
}

func TestFaultLatency(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 150 * time.Millisecond, Operations: []string{"rowset.upsert"}})
	require.NoError(t, err)
	began := time.Now()
	res := do(t, "POST", base+membersRowset, tok, oneRow)
	assert.Equal(t, http.StatusOK, res.status)
	assert.GreaterOrEqual(t, time.Since(began), 150*time.Millisecond)

	srv.ClearFaults()
	began = time.Now()
	do(t, "POST", base+membersRowset, tok, oneRow)
	assert.Less(t, time.Since(began), 150*time.Millisecond)
}

func TestAddFaultValidates(t *testing.T) {
	srv, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	for _, f := range []emulator.Fault{
		{Kind: "http_503"},
		{Kind: emulator.FaultLatency},
		{Kind: emulator.FaultServerError, Count: -1},
		{Kind: emulator.FaultServerError, Operations: []string{"rowset"}},
	} {
		_, err := srv.AddFault(f)
		assert.Error(t, err, "%+v", f)
	}
}

// Many clients upserting the same and different rows at once (run with -race).
func TestConcurrentUpserts(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rows := []any{
					row(map[string]any{"SegmentId": "ALL", "MembershipNumber": fmt.Sprintf("M-%02d-%02d", w, i)}, map[string]any{"Joined": true}),
					row(map[string]any{"SegmentId": "HOT", "MembershipNumber": "M-shared"}, map[string]any{"Segment_Version": w*each + i}),
				}
				res := do(t, "POST", base+segRowset, tok, rows)
				assert.Equal(t, http.StatusOK, res.status, "%s", res.body)
				if i%5 == 0 {
					srv.Rows("Loyalty_Segment_Members")
					srv.Calls()
				}
			}
		}()
	}
	wg.Wait()
	assert.Len(t, srv.Rows("Loyalty_Segment_Members"), workers*each+1)
	assert.Equal(t, workers*each, srv.Calls()["rowset.upsert"])
}
