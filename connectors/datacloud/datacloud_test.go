package datacloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud"
	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
)

func TestParseConfig(t *testing.T) {
	cfg, err := datacloud.ParseConfig(json.RawMessage(`{"client_id":"a","client_secret":"b","source_name":"loyalty_hub"}`))
	require.NoError(t, err)
	assert.Equal(t, "https://login.salesforce.com", cfg.LoginURL)
	assert.Equal(t, 200, cfg.BatchSize)

	_, err = datacloud.ParseConfig(json.RawMessage(`{"login_url":"ftp://x","source_name":"loyalty-hub","batch_size":1001,"timeout":"soon"}`))
	require.Error(t, err)
	for _, want := range []string{
		`login_url "ftp://x" is not an absolute http(s) URL`,
		"client_id is empty", "client_secret is empty",
		`source_name "loyalty-hub" is not an Ingestion API connector name`,
		"batch_size 1001 is out of range", `timeout "soon" is not a duration`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = datacloud.ParseConfig(json.RawMessage(`{"client_id":"a","client_secret":"b"}`))
	assert.ErrorContains(t, err, "source_name is empty")
	_, err = datacloud.ParseConfig(json.RawMessage(`{"client_id":"a","client_secret":"b","source_name":"s","sourcename":"x"}`))
	assert.ErrorContains(t, err, `unknown field "sourcename": valid fields are login_url, client_id, client_secret, source_name, batch_size, timeout`)

	d, err := datacloud.New(nil).Describe(context.Background())
	require.NoError(t, err)
	var schema openapi3.Schema
	require.NoError(t, json.Unmarshal(d.ConfigSchema, &schema))
	require.NoError(t, schema.Validate(context.Background()))
	assert.Equal(t, true, schema.Properties["client_secret"].Value.Extensions["x-secret"])
}

func start(t *testing.T, mutate func(*emulator.Config), extra string) (*emulator.Server, *datacloud.Connector) {
	t.Helper()
	cfg := emulator.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	emu, err := emulator.New(cfg)
	require.NoError(t, err)
	url, err := emu.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = emu.Close() })
	c := datacloud.New(nil)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Configure(context.Background(), json.RawMessage(fmt.Sprintf(
		`{"login_url":%q,"client_id":%q,"client_secret":%q,"source_name":%q%s}`,
		url, emulator.DefaultClientID, emulator.DefaultClientSecret, emulator.DefaultSourceName, extra))))
	return emu, c
}

func member(id string, points float64) connectors.Record {
	return connectors.Record{Key: id, Fields: map[string]any{
		"email": strings.ToLower(id) + "@example.com", "tier": "Gold", "points_balance": points,
		"status": "active", "updated_at": "2026-04-01T06:00:00.000Z",
	}}
}

func upsert(recs ...connectors.Record) connectors.WriteRequest {
	return connectors.WriteRequest{Object: "loyalty_members", Operation: connectors.Upsert, ExternalIDField: "membership_number", Records: recs}
}

func TestWriteStreamsRecordsByPrimaryKey(t *testing.T) {
	emu, c := start(t, nil, "")
	ctx := context.Background()
	require.NoError(t, c.Check(ctx))
	resp, err := c.Write(ctx, upsert(member("M-1", 10), member("M-2", 20)))
	require.NoError(t, err)
	for i, r := range resp.Results {
		require.Equal(t, connectors.StatusApplied, r.Status, "record %d: %+v", i, r)
	}
	assert.Equal(t, "M-1", resp.Results[0].TargetID)
	assert.Equal(t, 1, resp.Calls)

	resp, err = c.Write(ctx, upsert(member("M-1", 11)))
	require.NoError(t, err)
	require.Equal(t, connectors.StatusApplied, resp.Results[0].Status)
	emu.Flush()
	recs := emu.Records("loyalty_members")
	require.Len(t, recs, 2)
	assert.Equal(t, "M-1", recs[0]["membership_number"])
	assert.Equal(t, 11.0, recs[0]["points_balance"])

	del := upsert(connectors.Record{Key: "M-2"})
	del.Operation = connectors.Delete
	resp, err = c.Write(ctx, del)
	require.NoError(t, err)
	require.Equal(t, connectors.StatusApplied, resp.Results[0].Status)
	emu.Flush()
	assert.Len(t, emu.Records("loyalty_members"), 1)
	assert.Equal(t, 2, emu.Calls()["core.token"]+emu.Calls()["a360.token"], "one org token, one exchange, for every call")
}

func TestWriteIsolatesTheBadRecordAndSplitsBySize(t *testing.T) {
	emu, c := start(t, nil, `,"batch_size":50`)
	var recs []connectors.Record
	for i := range 120 {
		recs = append(recs, member(fmt.Sprintf("M-%03d", i), float64(i)))
	}
	recs[77].Fields["points_balance"] = "many"  // not a number
	recs[90].Fields["favourite_colour"] = "red" // not in the schema
	resp, err := c.Write(context.Background(), upsert(recs...))
	require.NoError(t, err)
	for i, r := range resp.Results {
		if i == 77 || i == 90 {
			assert.Equal(t, connectors.StatusPermanent, r.Status, "record %d", i)
			continue
		}
		require.Equal(t, connectors.StatusApplied, r.Status, "record %d: %+v", i, r)
	}
	assert.Contains(t, resp.Results[77].Message, "points_balance")
	assert.Contains(t, resp.Results[90].Message, "favourite_colour")
	emu.Flush()
	assert.Len(t, emu.Records("loyalty_members"), 118)

	// A record of 100 KB: two of them do not fit one call.
	big := strings.Repeat("x", 100<<10)
	a, b := member("M-A", 1), member("M-B", 2)
	a.Fields["status"], b.Fields["status"] = big, big
	resp, err = c.Write(context.Background(), upsert(a, b))
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Calls, "calls stay under 200 KB")
}

func TestWriteRenewsTokensAndHonoursThrottling(t *testing.T) {
	emu, c := start(t, nil, "")
	ctx := context.Background()
	_, err := c.Write(ctx, upsert(member("M-1", 1)))
	require.NoError(t, err)
	emu.ExpireTokens()
	resp, err := c.Write(ctx, upsert(member("M-2", 2)))
	require.NoError(t, err)
	assert.Equal(t, connectors.StatusApplied, resp.Results[0].Status)
	assert.Equal(t, 2, emu.Calls()["a360.token"], "a new exchange after the 401")

	_, err = emu.AddFault(emulator.Fault{Kind: emulator.FaultTooManyRequests, Count: 1})
	require.NoError(t, err)
	resp, err = c.Write(ctx, upsert(member("M-3", 3)))
	require.NoError(t, err)
	assert.Equal(t, connectors.StatusRetryable, resp.Results[0].Status)
	assert.Equal(t, time.Second, resp.Results[0].RetryAfter)

	_, err = emu.AddFault(emulator.Fault{Kind: emulator.FaultServerError, Count: 1})
	require.NoError(t, err)
	_, err = c.Write(ctx, upsert(member("M-4", 4)))
	assert.Equal(t, connectors.Transient, connectors.KindOf(err))
}

func TestWriteRefusals(t *testing.T) {
	_, c := start(t, nil, "")
	ctx := context.Background()
	req := upsert(member("M-1", 1))
	req.Operation = connectors.Update
	_, err := c.Write(ctx, req)
	assert.ErrorContains(t, err, "operation update is not supported")
	req = upsert(member("M-1", 1))
	req.Object = "loyalty_nothing"
	_, err = c.Write(ctx, req)
	assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
	assert.ErrorContains(t, err, "check source_name")
	req = upsert(connectors.Record{Fields: map[string]any{"tier": "Gold"}})
	resp, err := c.Write(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, "MISSING_PRIMARY_KEY", resp.Results[0].Code)
}

func TestCheckNamesBadCredentials(t *testing.T) {
	_, c := start(t, func(cfg *emulator.Config) { cfg.ClientSecret = "other" }, "")
	err := c.Check(context.Background())
	require.Error(t, err)
	assert.Equal(t, connectors.Auth, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "check client_id, client_secret")
}
