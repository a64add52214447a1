package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/examples/geooffers/emulator"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/plugintest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "geooffers-test")
	if err != nil {
		panic(err)
	}
	bins, err := plugintest.Build(dir, plugintest.Module+"/plugins/examples/geooffers")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin = bins["geooffers"]
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startPlugin(t *testing.T, emu *emulator.Server, key string) *host.Plugin {
	t.Helper()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	sum, err := host.FileSHA256(bin)
	require.NoError(t, err)
	p, err := host.Start(context.Background(), host.Config{Name: "geooffers", Path: bin, SHA256: sum}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	cfg, _ := json.Marshal(map[string]string{"base_url": srv.URL, "api_key": key})
	require.NoError(t, p.Configure(context.Background(), cfg))
	return p
}

// Members and segment memberships go to the vendor through the plugin
// process; the vouchers the vendor issues come back as hub events.
func TestMembersInVouchersOut(t *testing.T) {
	ctx := context.Background()
	emu := emulator.New("k")
	p := startPlugin(t, emu, "k")
	require.NoError(t, p.Check(ctx))

	resp, err := p.Write(ctx, connectors.WriteRequest{Object: "members", Operation: connectors.Upsert, ExternalIDField: "external_id", Records: []connectors.Record{
		{Key: "M-1", Fields: map[string]any{"email": "ada@example.com", "tier": "gold", "home_lat": 48.85, "home_lon": 2.35, "opt_in": true}},
		{Key: "M-2", Fields: map[string]any{"email": "bo@example.com", "tier": "silver"}},
		{Key: "M-3", Fields: map[string]any{"email": "cy@example.com", "home_lat": 123.0}},
	}})
	require.NoError(t, err)
	assert.Equal(t, connectors.StatusApplied, resp.Results[0].Status)
	assert.Equal(t, connectors.StatusApplied, resp.Results[1].Status)
	assert.Equal(t, connectors.Result{Status: connectors.StatusPermanent, Code: "INVALID_FIELD", Message: "home_lat: must be between -90 and 90"}, resp.Results[2])
	assert.Equal(t, "gold", emu.Members()["M-1"].Tier)

	resp, err = p.Write(ctx, connectors.WriteRequest{Object: "segment_memberships", Operation: connectors.Upsert, Records: []connectors.Record{
		{Key: "geo-coffee:M-1"},
		{Key: "x", Fields: map[string]any{"segment": "geo-fuel", "member_external_id": "M-2"}},
		{Key: "geo-fuel:M-9"},
	}})
	require.NoError(t, err)
	assert.Equal(t, connectors.StatusApplied, resp.Results[0].Status)
	assert.Equal(t, connectors.StatusApplied, resp.Results[1].Status)
	assert.Equal(t, connectors.StatusRetryable, resp.Results[2].Status, "the member may still be on its way")
	assert.Equal(t, "MEMBER_NOT_FOUND", resp.Results[2].Code)
	assert.Equal(t, 5*time.Second, resp.Results[2].RetryAfter)

	page, err := p.Read(ctx, connectors.ReadRequest{Object: "vouchers"})
	require.NoError(t, err)
	require.Len(t, page.Changes, 2)
	c := page.Changes[0]
	assert.Equal(t, "loyalty.voucher.upserted", c.Type)
	assert.Equal(t, int64(1), c.Version)
	assert.Equal(t, "geooffers:"+c.Subject+":v1", c.ID)
	var data map[string]any
	require.NoError(t, json.Unmarshal(c.Data, &data))
	assert.Equal(t, "M-1", data["member_id"])
	assert.Equal(t, "geo-coffee", data["segment"])
	assert.Equal(t, 4.5, data["value"])
	assert.Equal(t, "2", page.Cursor)
	assert.False(t, page.More)

	// Leaving and joining again issues no second voucher.
	_, err = p.Write(ctx, connectors.WriteRequest{Object: "segment_memberships", Operation: connectors.Delete, Records: []connectors.Record{{Key: "geo-coffee:M-1"}}})
	require.NoError(t, err)
	_, err = p.Write(ctx, connectors.WriteRequest{Object: "segment_memberships", Operation: connectors.Upsert, Records: []connectors.Record{{Key: "geo-coffee:M-1"}}})
	require.NoError(t, err)
	next, err := p.Read(ctx, connectors.ReadRequest{Object: "vouchers", Cursor: page.Cursor})
	require.NoError(t, err)
	assert.Empty(t, next.Changes)
	assert.Len(t, emu.Vouchers(), 2)

	schema, err := p.DescribeObject(ctx, "members")
	require.NoError(t, err)
	assert.Equal(t, connectors.FieldSchema{Name: "tier", Type: "picklist", Createable: true, Updateable: true, Nillable: true, Picklist: emulator.Tiers}, schema.Fields[3])
}

func TestVendorFailuresAreClassified(t *testing.T) {
	ctx := context.Background()
	emu := emulator.New("k")
	p := startPlugin(t, emu, "k")
	req := connectors.WriteRequest{Object: "members", Operation: connectors.Upsert, Records: []connectors.Record{{Key: "M-1", Fields: map[string]any{"email": "a@example.com"}}}}

	emu.SetFaults(emulator.Faults{RateLimited: 1, RetryAfterS: 7})
	_, err := p.Write(ctx, req)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err))
	assert.Equal(t, 7*time.Second, connectors.RetryAfterOf(err), "Retry-After crosses the process boundary")

	emu.SetFaults(emulator.Faults{Unavailable: 1})
	_, err = p.Write(ctx, req)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "HTTP 503")

	_, err = p.Write(ctx, req)
	require.NoError(t, err)

	wrong := startPlugin(t, emu, "wrong-key")
	err = wrong.Check(ctx)
	assert.Equal(t, connectors.Auth, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "api_key rejected")
}
