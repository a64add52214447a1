package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	"github.com/stretchr/testify/require"
)

const (
	membersPath = "/api/v1/ingest/sources/loyalty_hub/loyalty_members"
	txnsPath    = "/api/v1/ingest/sources/loyalty_hub/loyalty_transactions"
)

// start runs an emulator on a loopback port with the default config, changed by mutate.
func start(t *testing.T, mutate func(*emulator.Config)) (*emulator.Server, string) {
	t.Helper()
	cfg := emulator.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := emulator.New(cfg)
	require.NoError(t, err)
	base, err := srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	return srv, base
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) object(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(r.body, &out), "body: %s", r.body)
	return out
}

func (r result) array(t *testing.T) []any {
	t.Helper()
	var out []any
	require.NoError(t, json.Unmarshal(r.body, &out), "body: %s", r.body)
	return out
}

// postForm posts a form body, as the token endpoints take it.
func postForm(t *testing.T, u string, form url.Values) result {
	t.Helper()
	resp, err := http.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: data}
}

func coreForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {emulator.DefaultClientID}, "client_secret": {emulator.DefaultClientSecret}}
}

func exchangeForm(subject string) url.Values {
	return url.Values{
		"grant_type":         {"urn:salesforce:grant-type:external:cdp"},
		"subject_token":      {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
	}
}

// coreToken logs in to the org with the client credentials grant.
func coreToken(t *testing.T, base string) string {
	t.Helper()
	res := postForm(t, base+"/services/oauth2/token", coreForm())
	require.Equal(t, http.StatusOK, res.status, "core token: %s", res.body)
	tok, _ := res.object(t)["access_token"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// dcToken logs in and exchanges the core token for a Data Cloud token.
func dcToken(t *testing.T, base string) string {
	t.Helper()
	res := postForm(t, base+"/services/a360/token", exchangeForm(coreToken(t, base)))
	require.Equal(t, http.StatusOK, res.status, "exchange: %s", res.body)
	tok, _ := res.object(t)["access_token"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// do sends a request with a bearer token (if tok is set); body may be nil, a string or a
// value to encode as JSON, sent as application/json.
func do(t *testing.T, method, u, tok string, body any) result {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: data}
}

// data wraps records in the ingest envelope.
func data(records ...any) map[string]any { return map[string]any{"data": records} }

// member is a valid loyalty_members record with every field, changed by the pairs given.
func member(id string, kv ...any) map[string]any {
	m := map[string]any{
		"membership_number": id, "email": id + "@example.com", "first_name": "Ann", "last_name": "Lee",
		"tier": "Gold", "points_balance": 120.5, "status": "active", "updated_at": "2025-01-02T10:00:00.000Z",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}
