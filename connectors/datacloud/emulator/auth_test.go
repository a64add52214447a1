package emulator_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCoreToken(t *testing.T) {
	srv, base := start(t, nil)
	res := postForm(t, base+"/services/oauth2/token", coreForm())
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	assert.Contains(t, res.header.Get("Content-Type"), "application/json")
	body := res.object(t)
	assert.NotEmpty(t, body["access_token"])
	assert.Equal(t, base, body["instance_url"])
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, "cdp_ingest_api api", body["scope"])
	assert.Regexp(t, `^[0-9]{13}$`, body["issued_at"])

	// The signature is Salesforce's: HMAC-SHA256 of id + issued_at keyed by the secret.
	mac := hmac.New(sha256.New, []byte(emulator.DefaultClientSecret))
	mac.Write([]byte(body["id"].(string) + body["issued_at"].(string)))
	assert.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), body["signature"])
	assert.Equal(t, 1, srv.Calls()["core.token"])
}

// The client id and secret may come in an HTTP Basic header instead of the body.
func TestCoreTokenBasicAuth(t *testing.T) {
	_, base := start(t, nil)
	req, err := http.NewRequest("POST", base+"/services/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(emulator.DefaultClientID, emulator.DefaultClientSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// The JWT bearer grant the Data Cloud docs use: the issuer must be the client id.
func TestCoreTokenJWTBearer(t *testing.T) {
	_, base := start(t, nil)
	jwt := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
	}
	ask := func(assertion string) result {
		return postForm(t, base+"/services/oauth2/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}})
	}
	exp := time.Now().Add(3 * time.Minute).Unix()
	res := ask(jwt(map[string]any{"iss": emulator.DefaultClientID, "sub": "integration@example.com", "aud": "https://login.salesforce.com", "exp": exp}))
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	assert.NotEmpty(t, res.object(t)["access_token"])

	for name, assertion := range map[string]string{
		"other issuer": jwt(map[string]any{"iss": "someone", "sub": "u", "exp": exp}),
		"expired":      jwt(map[string]any{"iss": emulator.DefaultClientID, "sub": "u", "exp": time.Now().Add(-time.Minute).Unix()}),
		"no subject":   jwt(map[string]any{"iss": emulator.DefaultClientID, "exp": exp}),
		"not a JWT":    "nope",
	} {
		res := ask(assertion)
		assert.Equal(t, http.StatusBadRequest, res.status, name)
		assert.Equal(t, "invalid_grant", res.object(t)["error"], name)
	}
}

func TestCoreTokenErrors(t *testing.T) {
	_, base := start(t, nil)
	change := func(k, v string) url.Values {
		f := coreForm()
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong secret", change("client_secret", "nope"), 400, "invalid_client"},
		{"no secret", change("client_secret", ""), 400, "invalid_client"},
		{"unknown client id", change("client_id", "someone"), 400, "invalid_client_id"},
		{"password grant", change("grant_type", "password"), 400, "unsupported_grant_type"},
		{"no grant type", change("grant_type", ""), 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := postForm(t, base+"/services/oauth2/token", tt.form)
			require.Equal(t, tt.status, res.status, "%s", res.body)
			body := res.object(t)
			assert.Equal(t, tt.code, body["error"])
			assert.NotEmpty(t, body["error_description"])
			assert.Nil(t, body["access_token"])
		})
	}
	t.Run("JSON body", func(t *testing.T) {
		res := do(t, "POST", base+"/services/oauth2/token", "", map[string]string{"grant_type": "client_credentials"})
		require.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_request", res.object(t)["error"])
	})
	t.Run("GET", func(t *testing.T) {
		res := do(t, "GET", base+"/services/oauth2/token", "", nil)
		require.Equal(t, http.StatusMethodNotAllowed, res.status)
		assert.Equal(t, "POST", res.header.Get("Allow"))
	})
}

func TestTokenExchange(t *testing.T) {
	srv, base := start(t, nil)
	res := postForm(t, base+"/services/a360/token", exchangeForm(coreToken(t, base)))
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	body := res.object(t)
	assert.Equal(t, base, body["instance_url"], "the emulator's URL, scheme included")
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, "urn:ietf:params:oauth:token-type:jwt", body["issued_token_type"])
	assert.Equal(t, float64(7199), body["expires_in"])
	tok := body["access_token"].(string)
	assert.Len(t, strings.Split(tok, "."), 3, "a JWT")
	assert.Equal(t, 1, srv.Calls()["a360.token"])

	// The token works on the tenant.
	assert.Equal(t, http.StatusAccepted, do(t, "POST", body["instance_url"].(string)+membersPath, tok, data(member("M-1"))).status)

	// expires_in follows TokenTTL.
	_, base2 := start(t, func(c *emulator.Config) { c.TokenTTL = 90 * time.Second })
	res = postForm(t, base2+"/services/a360/token", exchangeForm(coreToken(t, base2)))
	assert.Equal(t, float64(90), res.object(t)["expires_in"])
}

func TestTokenExchangeErrors(t *testing.T) {
	srv, base := start(t, nil)
	core := coreToken(t, base)
	dc := dcToken(t, base)
	change := func(k, v string) url.Values {
		f := exchangeForm(core)
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"unknown subject token", change("subject_token", "00DXX!forged"), 401, "invalid_subject_token"},
		{"Data Cloud token as subject", change("subject_token", dc), 401, "invalid_subject_token"},
		{"no subject token", change("subject_token", ""), 400, "invalid_request"},
		{"other subject token type", change("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
		{"no subject token type", change("subject_token_type", ""), 400, "invalid_request"},
		{"token exchange grant", change("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"), 400, "unsupported_grant_type"},
		{"no grant type", change("grant_type", ""), 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := postForm(t, base+"/services/a360/token", tt.form)
			require.Equal(t, tt.status, res.status, "%s", res.body)
			body := res.object(t)
			assert.Equal(t, tt.code, body["error"])
			assert.NotEmpty(t, body["error_description"])
		})
	}
	t.Run("expired core token", func(t *testing.T) {
		srv.ExpireTokens()
		res := postForm(t, base+"/services/a360/token", exchangeForm(core))
		require.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_subject_token", res.object(t)["error"])
		// A new login works again.
		assert.Equal(t, http.StatusOK, postForm(t, base+"/services/a360/token", exchangeForm(coreToken(t, base))).status)
	})
	t.Run("core token past its TTL", func(t *testing.T) {
		_, base := start(t, func(c *emulator.Config) { c.TokenTTL = 50 * time.Millisecond })
		core := coreToken(t, base)
		time.Sleep(80 * time.Millisecond)
		res := postForm(t, base+"/services/a360/token", exchangeForm(core))
		require.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_subject_token", res.object(t)["error"])
	})
	t.Run("GET", func(t *testing.T) {
		res := do(t, "GET", base+"/services/a360/token", "", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	})
}

// Ingest calls need a Data Cloud token: none, a forged one, a core token, an expired one
// are all 401 with the tenant's error body.
func TestIngestNeedsADataCloudToken(t *testing.T) {
	srv, base := start(t, nil)
	body := data(member("M-1"))
	check := func(res result, want string) {
		t.Helper()
		require.Equal(t, http.StatusUnauthorized, res.status, "%s", res.body)
		assert.Equal(t, `Bearer error="invalid_token"`, res.header.Get("WWW-Authenticate"))
		e := res.object(t)
		assert.Equal(t, "Unauthorized", e["error"])
		assert.Contains(t, e["message"], want)
	}
	check(do(t, "POST", base+membersPath, "", body), "Authorization: Bearer")
	check(do(t, "POST", base+membersPath, "forged", body), "invalid or expired")
	core := coreToken(t, base)
	check(do(t, "POST", base+membersPath, core, body), "not a Data Cloud token")
	check(do(t, "DELETE", base+membersPath+"?ids=M-1", core, nil), "not a Data Cloud token")

	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, body).status)
	srv.ExpireTokens()
	check(do(t, "POST", base+membersPath, tok, body), "invalid or expired")
	check(do(t, "DELETE", base+membersPath+"?ids=M-1", tok, nil), "invalid or expired")
	assert.Len(t, srv.Records("loyalty_members"), 1, "refused calls change nothing")
	assert.Equal(t, 5, srv.Calls()["ingest.upsert"])
	assert.Equal(t, 2, srv.Calls()["ingest.delete"])
}

func TestDataCloudTokenExpiresAfterTTL(t *testing.T) {
	_, base := start(t, func(c *emulator.Config) { c.TokenTTL = 60 * time.Millisecond })
	tok := dcToken(t, base)
	require.Equal(t, http.StatusAccepted, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status)
	time.Sleep(90 * time.Millisecond)
	assert.Equal(t, http.StatusUnauthorized, do(t, "POST", base+membersPath, tok, data(member("M-1"))).status)
}
