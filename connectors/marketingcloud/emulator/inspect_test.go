package emulator_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInspectionEndpoints(t *testing.T) {
	srv, base := start(t, nil)
	tok := token(t, base)
	require.Equal(t, http.StatusOK, do(t, "POST", base+membersRowset, tok, []any{
		row(map[string]any{"MembershipNumber": "M-2"}, map[string]any{"Tier": "Gold"}),
		row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Silver"}),
	}).status)

	res := do(t, "GET", base+"/__emulator/dataextensions", "", nil)
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, []any{
		map[string]any{"key": "Loyalty_Members", "name": "Loyalty_Members", "id": emulator.MembersID, "rows": float64(2)},
		map[string]any{"key": "Loyalty_Segment_Members", "name": "Loyalty_Segment_Members", "id": emulator.SegmentMembersID, "rows": float64(0)},
	}, res.array(t))

	res = do(t, "GET", base+"/__emulator/dataextensions/Loyalty_Members/rows", "", nil)
	require.Equal(t, http.StatusOK, res.status)
	rows := res.array(t)
	require.Len(t, rows, 2)
	assert.Equal(t, "M-1", rows[0].(map[string]any)["MembershipNumber"])
	assert.Equal(t, "", rows[0].(map[string]any)["Email"])

	assert.Equal(t, http.StatusNotFound, do(t, "GET", base+"/__emulator/dataextensions/Nope/rows", "", nil).status)
	assert.Equal(t, http.StatusNotFound, do(t, "GET", base+"/__emulator/nothing", "", nil).status)

	// faults, calls and token expiry over HTTP
	res = do(t, "POST", base+"/__emulator/faults", "", map[string]any{"kind": "http_429", "count": 1})
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	assert.Equal(t, http.StatusTooManyRequests, do(t, "POST", base+membersRowset, tok, oneRow).status)
	assert.Equal(t, http.StatusCreated, do(t, "POST", base+"/__emulator/faults", "", map[string]any{"kind": "latency", "latency": "1ms"}).status)
	assert.Len(t, do(t, "GET", base+"/__emulator/faults", "", nil).array(t), 1)
	assert.Equal(t, http.StatusNoContent, do(t, "DELETE", base+"/__emulator/faults", "", nil).status)
	assert.Equal(t, float64(2), do(t, "GET", base+"/__emulator/calls", "", nil).object(t)["rowset.upsert"])
	assert.Equal(t, http.StatusNoContent, do(t, "POST", base+"/__emulator/tokens/expire", "", nil).status)
	assert.Equal(t, http.StatusUnauthorized, do(t, "POST", base+membersRowset, tok, oneRow).status)

	assert.Equal(t, []string{"Loyalty_Members", "Loyalty_Segment_Members"}, srv.DataExtensions())
	assert.Nil(t, srv.Rows("Nope"))
}

// Handler serves without Start; the instance URLs follow the host the client used.
func TestHandlerWithoutStart(t *testing.T) {
	srv, err := emulator.New(emulator.DefaultConfig())
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	res := do(t, "POST", hs.URL+"/v2/token", "", map[string]any{"grant_type": "client_credentials", "client_id": "loyaltyhub-emulator", "client_secret": "emulator-secret"})
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, hs.URL+"/", res.object(t)["rest_instance_url"])
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
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*emulator.Config)
		want   string
	}{
		{"no client id", func(c *emulator.Config) { c.ClientID = "" }, "ClientID is required"},
		{"no secret", func(c *emulator.Config) { c.ClientSecret = "" }, "ClientSecret is required"},
		{"negative ttl", func(c *emulator.Config) { c.TokenTTL = -1 }, "TokenTTL"},
		{"duplicate key", func(c *emulator.Config) { c.DataExtensions[1].Key = "loyalty_segment_members" }, "DataExtensions[1] (loyalty_segment_members): Key"},
		{"bad id", func(c *emulator.Config) { c.DataExtensions[0].ID = "nope" }, "ID \"nope\" is not a GUID"},
		{"bad type", func(c *emulator.Config) { c.DataExtensions[0].Fields[3].Type = "Bool" }, "Fields[3] (Joined): Type \"Bool\""},
		{"duplicate field", func(c *emulator.Config) { c.DataExtensions[1].Fields[2].Name = "email" }, "Fields[2] (email): Name"},
		{"long text", func(c *emulator.Config) { c.DataExtensions[1].Fields[2].Length = 5000 }, "Length 5000"},
		{"no primary key", func(c *emulator.Config) {
			c.DataExtensions = []emulator.DataExtension{{Key: "K", Fields: []emulator.Field{{Name: "A", Type: emulator.FieldText}}}}
		}, "at least one field must be a primary key"},
		{"no key", func(c *emulator.Config) { c.DataExtensions[0].Key = "" }, "DataExtensions[0]: Key is required"},
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
	cfg := emulator.DefaultConfig()
	cfg.TokenTTL = 0
	cfg.DataExtensions[0].ID = ""
	_, err := emulator.New(cfg)
	assert.NoError(t, err, "zero TTL and empty ID take defaults")
}
