package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenSuccess(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.AccountID = "514000123" })
	res := do(t, "POST", base+"/v2/token", "", map[string]any{
		"grant_type": "client_credentials", "client_id": "loyaltyhub-emulator", "client_secret": "emulator-secret",
		"account_id": 514000123, // documented as a number
	})
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	assert.Contains(t, res.header.Get("Content-Type"), "application/json")
	body := res.object(t)
	assert.NotEmpty(t, body["access_token"])
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, float64(1079), body["expires_in"])
	assert.Contains(t, body["scope"], "data_extensions_write")
	assert.Equal(t, base+"/", body["rest_instance_url"])
	assert.Equal(t, base+"/", body["soap_instance_url"])
}

func TestTokenScopes(t *testing.T) {
	_, base := start(t, nil)
	ask := func(scope string) string {
		res := do(t, "POST", base+"/v2/token", "", map[string]any{"grant_type": "client_credentials",
			"client_id": "loyaltyhub-emulator", "client_secret": "emulator-secret", "scope": scope})
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, scope, res.object(t)["scope"])
		return res.object(t)["access_token"].(string)
	}
	rows := []any{row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Gold"})}

	readOnly := ask("data_extensions_read")
	res := do(t, "POST", base+membersRowset, readOnly, rows)
	assert.Equal(t, http.StatusForbidden, res.status)
	assert.Equal(t, float64(20002), res.object(t)["errorcode"])

	res = do(t, "POST", base+membersRowset, ask("data_extensions_read data_extensions_write"), rows)
	assert.Equal(t, http.StatusOK, res.status, "%s", res.body)
}

// The form-encoded request some clients send is accepted too.
func TestTokenFormBody(t *testing.T) {
	_, base := start(t, nil)
	resp, err := http.PostForm(base+"/v2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"loyaltyhub-emulator"}, "client_secret": {"emulator-secret"},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestTokenErrors(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.AccountID = "514000123" })
	good := func(change map[string]any) map[string]any {
		m := map[string]any{"grant_type": "client_credentials", "client_id": "loyaltyhub-emulator", "client_secret": "emulator-secret"}
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	tests := []struct {
		name   string
		method string
		body   any
		status int
		code   string
	}{
		{"wrong secret", "POST", good(map[string]any{"client_secret": "nope"}), 401, "invalid_client"},
		{"unknown client", "POST", good(map[string]any{"client_id": "someone"}), 401, "invalid_client"},
		{"no credentials", "POST", good(map[string]any{"client_id": nil, "client_secret": nil}), 401, "invalid_client"},
		{"password grant", "POST", good(map[string]any{"grant_type": "password"}), 400, "unsupported_grant_type"},
		{"no grant type", "POST", good(map[string]any{"grant_type": nil}), 400, "unsupported_grant_type"},
		{"other account", "POST", good(map[string]any{"account_id": "999"}), 401, "unauthorized_client"},
		{"not json", "POST", "grant_type=client_credentials&", 400, "invalid_request"},
		{"GET", "GET", nil, 405, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.method, base+"/v2/token", "", tt.body)
			require.Equal(t, tt.status, res.status, "%s", res.body)
			body := res.object(t)
			assert.Equal(t, tt.code, body["error"])
			assert.NotEmpty(t, body["error_description"])
			assert.NotEmpty(t, body["error_uri"])
		})
	}
}

func TestRESTNeedsAValidToken(t *testing.T) {
	srv, base := start(t, nil)
	rows := []any{row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Gold"})}
	check := func(res result) {
		t.Helper()
		require.Equal(t, http.StatusUnauthorized, res.status, "%s", res.body)
		body := res.object(t)
		assert.Equal(t, "Not Authorized", body["message"])
		assert.Equal(t, float64(0), body["errorcode"])
		assert.NotEmpty(t, body["documentation"])
	}
	check(do(t, "POST", base+membersRowset, "", rows))
	check(do(t, "POST", base+membersRowset, "not-a-token", rows))

	tok := token(t, base)
	require.Equal(t, http.StatusOK, do(t, "POST", base+membersRowset, tok, rows).status)
	srv.ExpireTokens()
	check(do(t, "POST", base+membersRowset, tok, rows))
	check(do(t, "GET", base+"/data/v1/async/"+strings.Repeat("0", 8)+"-0000-0000-0000-000000000000/status", tok, nil))
	assert.Equal(t, http.StatusOK, do(t, "POST", base+membersRowset, token(t, base), rows).status)
	assert.Equal(t, 2, srv.Calls()["auth"])
}

func TestTokensExpireAfterTTL(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.TokenTTL = 50 * time.Millisecond })
	tok := token(t, base)
	rows := []any{row(map[string]any{"MembershipNumber": "M-1"}, map[string]any{"Tier": "Gold"})}
	require.Equal(t, http.StatusOK, do(t, "POST", base+membersRowset, tok, rows).status)
	time.Sleep(80 * time.Millisecond)
	assert.Equal(t, http.StatusUnauthorized, do(t, "POST", base+membersRowset, tok, rows).status)
}
