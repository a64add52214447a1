package emulator_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFaultTooManyRequests(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base) // token calls are not hit by a fault without Operations
	id, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 1})
	require.NoError(t, err)

	res := do(t, "POST", base+membersPath, tok, data(member("M-1")))
	require.Equal(t, http.StatusTooManyRequests, res.status)
	assert.Equal(t, "1", res.header.Get("Retry-After"))
	body := res.object(t)
	assert.Equal(t, "Too Many Requests", body["error"])
	assert.Contains(t, body["message"], "Rate limit exceeded")
	srv.Flush()
	assert.Empty(t, srv.Records("loyalty_members"), "the throttled call did nothing")

	// Count 1: removed after firing once
	assert.False(t, srv.RemoveFault(id))
	assert.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status)
	assert.Equal(t, 2, srv.Calls()["ingest.upsert"], "both answers count")
	assert.Len(t, srv.Records("loyalty_members"), 1)
}

func TestFaultServerErrorByOperation(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	id, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultServerError, Operations: []string{"ingest.delete", "a360.token"}})
	require.NoError(t, err)

	assert.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status, "other operations are not affected")
	res := do(t, "DELETE", base+membersPath+"?ids=M-1", tok, nil)
	require.Equal(t, http.StatusInternalServerError, res.status)
	assert.Equal(t, "Internal Server Error", res.object(t)["error"])

	// on a token endpoint the answer is an OAuth error
	res = postForm(t, base+"/services/a360/token", exchangeForm(coreToken(t, base)))
	require.Equal(t, http.StatusInternalServerError, res.status)
	assert.Equal(t, "server_error", res.object(t)["error"])

	faults := srv.Faults()
	require.Len(t, faults, 1)
	assert.Equal(t, 2, faults[0].Fired)
	assert.True(t, srv.RemoveFault(id))
	assert.Equal(t, http.StatusAccepted, do(t, "DELETE", base+membersPath+"?ids=M-1", tok, nil).status)
	assert.Empty(t, srv.Records("loyalty_members"))
}

func TestFaultOnCoreToken(t *testing.T) {
	srv, base := start(t, nil)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 2, Operations: []string{"core.token"}})
	require.NoError(t, err)
	for range 2 {
		res := postForm(t, base+"/services/oauth2/token", coreForm())
		require.Equal(t, http.StatusTooManyRequests, res.status)
		assert.Equal(t, "1", res.header.Get("Retry-After"))
		assert.Equal(t, "rate_limit_exceeded", res.object(t)["error"])
	}
	assert.NotEmpty(t, coreToken(t, base))
	assert.Equal(t, 3, srv.Calls()["core.token"])
}

func TestFaultLatency(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	_, err := srv.AddFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 150 * time.Millisecond, Operations: []string{"ingest.upsert"}})
	require.NoError(t, err)
	began := time.Now()
	assert.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status)
	assert.GreaterOrEqual(t, time.Since(began), 150*time.Millisecond)

	began = time.Now()
	assert.Equal(t, http.StatusAccepted, do(t, "DELETE", base+membersPath+"?ids=M-1", tok, nil).status)
	assert.Less(t, time.Since(began), 150*time.Millisecond, "only the named operation is slowed")

	srv.ClearFaults()
	began = time.Now()
	do(t, "POST", base+membersPath, tok, data(member("M-1")))
	assert.Less(t, time.Since(began), 150*time.Millisecond)
}

func TestAddFaultValidates(t *testing.T) {
	srv, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	for _, f := range []emulator.Fault{
		{Kind: "http_503"},
		{Kind: emulator.FaultLatency},
		{Kind: emulator.FaultServerError, Count: -1},
		{Kind: emulator.FaultServerError, Operations: []string{"ingest"}},
	} {
		_, err := srv.AddFault(f)
		assert.Error(t, err, "%+v", f)
	}
	assert.Empty(t, srv.Faults())
}

// Many clients upserting the same and different records and deleting at once,
// while others read (run with -race).
func TestConcurrentIngest(t *testing.T) {
	srv, base := start(t, func(c *emulator.Config) { c.ProcessDelay = 5 * time.Millisecond })
	const workers, each = 12, 15
	toks := make([]string, workers)
	for w := range toks {
		toks[w] = dcToken(t, base)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := toks[w]
			for i := range each {
				recs := data(
					member(fmt.Sprintf("M-%02d-%02d", w, i)),
					member("M-shared", "points_balance", w*each+i),
					member(fmt.Sprintf("D-%02d-%02d", w, i)),
				)
				res := do(t, "POST", base+membersPath, tok, recs)
				assert.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
				res = do(t, "DELETE", base+membersPath+fmt.Sprintf("?ids=D-%02d-%02d", w, i), tok, nil)
				assert.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
				if i%5 == 0 {
					srv.Records("loyalty_members")
					srv.Calls()
					do(t, "GET", base+"/__emulator/objects/loyalty_members/records", "", nil)
				}
			}
		}()
	}
	wg.Wait()
	srv.Flush()
	assert.Len(t, srv.Records("loyalty_members"), workers*each+1)
	assert.Equal(t, workers*each, srv.Calls()["ingest.upsert"])
	assert.Equal(t, workers*each, srv.Calls()["ingest.delete"])
	assert.Equal(t, workers, srv.Calls()["a360.token"])
}
