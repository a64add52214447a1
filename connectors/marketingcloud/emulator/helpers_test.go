package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud/emulator"
	"github.com/stretchr/testify/require"
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

// token gets an access token with the documented JSON client-credentials request.
func token(t *testing.T, base string) string {
	t.Helper()
	res := do(t, "POST", base+"/v2/token", "", map[string]any{
		"grant_type": "client_credentials", "client_id": emulator.DefaultClientID, "client_secret": emulator.DefaultClientSecret,
	})
	require.Equal(t, http.StatusOK, res.status, "token: %s", res.body)
	tok, _ := res.object(t)["access_token"].(string)
	require.NotEmpty(t, tok)
	return tok
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

// do sends a request with a bearer token (if tok is set); body may be nil, a string or a
// value to encode as JSON.
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

// row builds a rowset element.
func row(keys, values map[string]any) map[string]any {
	return map[string]any{"keys": keys, "values": values}
}

const (
	segRowset     = "/hub/v1/dataevents/key:Loyalty_Segment_Members/rowset"
	membersRowset = "/hub/v1/dataevents/key:Loyalty_Members/rowset"
)
