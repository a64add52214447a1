package emulator_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInspectionEndpoints(t *testing.T) {
	srv, base := start(t, nil)
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-2"), member("M-1", "tier", "Silver"))).status)

	res := do(t, "GET", base+"/__emulator/objects", "", nil)
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, []any{
		map[string]any{"name": "loyalty_members", "primaryKey": "membership_number", "records": float64(2), "pending": float64(0)},
		map[string]any{"name": "loyalty_transactions", "primaryKey": "txn_id", "records": float64(0), "pending": float64(0)},
	}, res.array(t))

	res = do(t, "GET", base+"/__emulator/objects/loyalty_members/records", "", nil)
	require.Equal(t, http.StatusOK, res.status)
	recs := res.array(t)
	require.Len(t, recs, 2)
	assert.Equal(t, member("M-1", "tier", "Silver"), recs[0])
	assert.Equal(t, "M-2", recs[1].(map[string]any)["membership_number"])
	assert.Equal(t, []any{}, do(t, "GET", base+"/__emulator/objects/loyalty_transactions/records", "", nil).array(t))

	assert.Equal(t, http.StatusNotFound, do(t, "GET", base+"/__emulator/objects/nope/records", "", nil).status)
	assert.Equal(t, http.StatusNotFound, do(t, "GET", base+"/__emulator/nothing", "", nil).status)

	// faults, calls, flush and token expiry over HTTP
	res = do(t, "POST", base+"/__emulator/faults", "", map[string]any{"kind": "http_429", "count": 1, "operations": []string{"ingest.upsert"}})
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	assert.Equal(t, http.StatusTooManyRequests, do(t, "POST", base+membersPath, tok, data(member("M-3"))).status)
	assert.Equal(t, http.StatusCreated, do(t, "POST", base+"/__emulator/faults", "", map[string]any{"kind": "latency", "latency": "1ms"}).status)
	assert.Equal(t, http.StatusBadRequest, do(t, "POST", base+"/__emulator/faults", "", map[string]any{"kind": "latency", "latency": "soon"}).status)
	assert.Equal(t, http.StatusBadRequest, do(t, "POST", base+"/__emulator/faults", "", map[string]any{"kind": "http_418"}).status)
	faults := do(t, "GET", base+"/__emulator/faults", "", nil).array(t)
	require.Len(t, faults, 1)
	assert.Equal(t, "1ms", faults[0].(map[string]any)["latency"])
	assert.Equal(t, http.StatusNoContent, do(t, "DELETE", base+"/__emulator/faults/"+faults[0].(map[string]any)["id"].(string), "", nil).status)
	assert.Equal(t, http.StatusNotFound, do(t, "DELETE", base+"/__emulator/faults/f99", "", nil).status)
	assert.Equal(t, http.StatusNoContent, do(t, "DELETE", base+"/__emulator/faults", "", nil).status)
	calls := do(t, "GET", base+"/__emulator/calls", "", nil).object(t)
	assert.Equal(t, map[string]any{"core.token": float64(1), "a360.token": float64(1), "ingest.upsert": float64(2)}, calls)
	assert.Equal(t, http.StatusNoContent, do(t, "POST", base+"/__emulator/flush", "", nil).status)
	assert.Equal(t, http.StatusNoContent, do(t, "POST", base+"/__emulator/tokens/expire", "", nil).status)
	assert.Equal(t, http.StatusUnauthorized, do(t, "POST", base+membersPath, tok, data(member("M-3"))).status)
	assert.Len(t, srv.Records("loyalty_members"), 2)
}

// Handler serves without Start; the instance URLs follow the host the client used.
func TestHandlerWithoutStart(t *testing.T) {
	srv, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	res := postForm(t, hs.URL+"/services/oauth2/token", coreForm())
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, hs.URL, res.object(t)["instance_url"])
	res = postForm(t, hs.URL+"/services/a360/token", exchangeForm(res.object(t)["access_token"].(string)))
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, hs.URL, res.object(t)["instance_url"])
	assert.Equal(t, "", srv.URL())
	require.NoError(t, srv.Close())
}

func TestStartTwiceAndClose(t *testing.T) {
	srv, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	u, err := srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u, "http://127.0.0.1:"))
	assert.Equal(t, u, srv.URL())
	_, err = srv.Start("127.0.0.1:0")
	assert.Error(t, err)
	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close())
	_, err = http.PostForm(u+"/services/oauth2/token", url.Values{})
	assert.Error(t, err, "closed")
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*emulator.Config)
		want   string
	}{
		{"no client id", func(c *emulator.Config) { c.ClientID = "" }, "ClientID is required"},
		{"no secret", func(c *emulator.Config) { c.ClientSecret = "" }, "ClientSecret is required"},
		{"no source name", func(c *emulator.Config) { c.SourceName = "" }, "SourceName is required"},
		{"source name with slash", func(c *emulator.Config) { c.SourceName = "a/b" }, `SourceName "a/b" must not contain`},
		{"negative ttl", func(c *emulator.Config) { c.TokenTTL = -1 }, "TokenTTL"},
		{"negative delay", func(c *emulator.Config) { c.ProcessDelay = -time.Second }, "ProcessDelay"},
		{"duplicate object", func(c *emulator.Config) { c.Objects[1].Name = "loyalty_members" }, "Objects[1] (loyalty_members): Name \"loyalty_members\" is also the name of Objects[0]"},
		{"no object name", func(c *emulator.Config) { c.Objects[0].Name = "" }, "Objects[0]: Name is required"},
		{"bad type", func(c *emulator.Config) { c.Objects[0].Fields[5].Type = "decimal" }, "Fields[5] (points_balance): Type \"decimal\""},
		{"duplicate field", func(c *emulator.Config) { c.Objects[1].Fields[2].Name = "txn_id" }, "Fields[2] (txn_id): Name \"txn_id\" is also the name of Fields[0]"},
		{"no primary key", func(c *emulator.Config) { c.Objects[0].Fields[0].PrimaryKey = false }, "exactly one field must be the primary key, found 0"},
		{"two primary keys", func(c *emulator.Config) { c.Objects[0].Fields[1].PrimaryKey = true }, "exactly one field must be the primary key, found 2"},
		{"boolean key", func(c *emulator.Config) {
			c.Objects = []emulator.Object{{Name: "o", Fields: []emulator.Field{{Name: "b", Type: emulator.FieldBoolean, PrimaryKey: true}}}}
		}, "a primary key cannot be a boolean"},
		{"no fields", func(c *emulator.Config) { c.Objects[0].Fields = nil }, "at least one field is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := emulator.DefaultConfig()
			tt.mutate(&cfg)
			_, err := emulator.New(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	// every problem at once
	cfg := emulator.DefaultConfig()
	cfg.ClientID, cfg.SourceName = "", ""
	_, err := emulator.New(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ClientID is required")
	assert.Contains(t, err.Error(), "SourceName is required")

	cfg = emulator.DefaultConfig()
	cfg.TokenTTL = 0
	_, err = emulator.New(cfg)
	assert.NoError(t, err, "a zero TTL takes the default")
}

func TestDefaultConfig(t *testing.T) {
	cfg := emulator.DefaultConfig()
	assert.Equal(t, "loyaltyhub-emulator", cfg.ClientID)
	assert.Equal(t, "emulator-secret", cfg.ClientSecret)
	assert.Equal(t, "loyalty_hub", cfg.SourceName)
	assert.Equal(t, 7199*time.Second, cfg.TokenTTL)
	assert.Zero(t, cfg.ProcessDelay)
	require.Len(t, cfg.Objects, 2)
	assert.Equal(t, "loyalty_members", cfg.Objects[0].Name)
	assert.Equal(t, emulator.Field{Name: "membership_number", Type: "string", PrimaryKey: true}, cfg.Objects[0].Fields[0])
	assert.Equal(t, emulator.Field{Name: "updated_at", Type: "datetime"}, cfg.Objects[0].Fields[7])
	assert.Equal(t, "loyalty_transactions", cfg.Objects[1].Name)
	assert.Equal(t, emulator.Field{Name: "txn_id", Type: "string", PrimaryKey: true}, cfg.Objects[1].Fields[0])
	assert.Equal(t, emulator.Field{Name: "activity_ts", Type: "datetime"}, cfg.Objects[1].Fields[4])
}
