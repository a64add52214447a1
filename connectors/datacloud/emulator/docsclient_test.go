package emulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-resty/resty/v2"
	"github.com/loyaltyhub/loyaltyhub/connectors/datacloud/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client written from the docs' streaming walkthrough, with resty: org login, token
// exchange, insert, delete by query, a re-login after a 401.
func TestDocsWalkthroughWithResty(t *testing.T) {
	srv, loginURL := start(t, nil)
	client := resty.New()

	login := func() (tenant, token string) {
		var core struct {
			AccessToken string `json:"access_token"`
			InstanceURL string `json:"instance_url"`
		}
		resp, err := client.R().SetFormData(map[string]string{
			"grant_type": "client_credentials", "client_id": emulator.DefaultClientID, "client_secret": emulator.DefaultClientSecret,
		}).SetResult(&core).Post(loginURL + "/services/oauth2/token")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode(), "%s", resp.Body())

		var dc struct {
			AccessToken     string `json:"access_token"`
			InstanceURL     string `json:"instance_url"`
			TokenType       string `json:"token_type"`
			IssuedTokenType string `json:"issued_token_type"`
			ExpiresIn       int    `json:"expires_in"`
		}
		resp, err = client.R().SetFormData(map[string]string{
			"grant_type":         "urn:salesforce:grant-type:external:cdp",
			"subject_token":      core.AccessToken,
			"subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
		}).SetResult(&dc).Post(core.InstanceURL + "/services/a360/token")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode(), "%s", resp.Body())
		assert.Equal(t, "Bearer", dc.TokenType)
		assert.Positive(t, dc.ExpiresIn)
		tenant = dc.InstanceURL
		if !strings.Contains(tenant, "://") { // the real tenant host comes without a scheme
			tenant = "https://" + tenant
		}
		return tenant, dc.AccessToken
	}

	tenant, token := login()
	var ok struct {
		Accepted bool `json:"accepted"`
	}
	resp, err := client.R().SetAuthToken(token).SetBody(map[string]any{"data": []any{
		map[string]any{"txn_id": "T-1", "membership_number": "M-001", "points": 50, "amount": 25.90, "activity_ts": "2025-01-02T10:00:00.000Z"},
		map[string]any{"txn_id": "T-2", "membership_number": "M-001", "points": -10, "amount": 0, "activity_ts": "2025-01-03T11:30:00.000Z"},
	}}).SetResult(&ok).Post(tenant + "/api/v1/ingest/sources/" + emulator.DefaultSourceName + "/loyalty_transactions")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode(), "%s", resp.Body())
	assert.True(t, ok.Accepted)

	srv.ExpireTokens()
	resp, err = client.R().SetAuthToken(token).SetQueryParam("ids", "T-2").Delete(tenant + "/api/v1/ingest/sources/loyalty_hub/loyalty_transactions")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode())

	tenant, token = login()
	resp, err = client.R().SetAuthToken(token).SetQueryParam("ids", "T-2").Delete(tenant + "/api/v1/ingest/sources/loyalty_hub/loyalty_transactions")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode(), "%s", resp.Body())

	srv.Flush()
	assert.Equal(t, []map[string]any{{"txn_id": "T-1", "membership_number": "M-001", "points": float64(50), "amount": 25.9, "activity_ts": "2025-01-02T10:00:00.000Z"}},
		srv.Records("loyalty_transactions"))
	assert.Equal(t, map[string]int{"core.token": 2, "a360.token": 2, "ingest.upsert": 1, "ingest.delete": 2}, srv.Calls())
}
