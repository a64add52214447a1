package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/require"
)

const v = "/services/data/v63.0"

// start runs an emulator on a loopback port with the default config, changed by mutate.
func start(t *testing.T, mutate func(*emulator.Config)) (*emulator.Server, string) {
	t.Helper()
	cfg := emulator.DefaultConfig()
	cfg.FaultSeed = 42
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

// token logs in with the client-credentials grant over plain HTTP.
func token(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {emulator.DefaultClientID}, "client_secret": {emulator.DefaultClientSecret},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t *testing.T) any {
	t.Helper()
	var out any
	require.NoError(t, json.Unmarshal(r.body, &out), "body: %s", r.body)
	return out
}

// errs decodes a top-level error array.
func (r result) errs(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &out), "body: %s", r.body)
	return out
}

// do sends a request with a bearer token; body may be nil, a string or a value to encode.
func do(t *testing.T, method, u, tok string, body any) result {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
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

// member returns a valid LoyaltyProgramMember body.
func member(number string, extra ...any) map[string]any {
	m := map[string]any{
		"MembershipNumber": number,
		"ProgramId":        emulator.DefaultProgramID,
		"EnrollmentDate":   "2025-01-02",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func doWithHeader(t *testing.T, u, tok, key, value string) result {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(key, value)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: data}
}
