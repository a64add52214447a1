package emulator_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTLSAndSOAPLogin logs in the way simple-salesforce does by default (SOAP login over
// https with password+security token), then uses the session on the REST API.
func TestTLSAndSOAPLogin(t *testing.T) {
	cfg := emulator.DefaultConfig()
	cfg.SecurityToken = "SEC"
	srv, err := emulator.New(cfg)
	require.NoError(t, err)
	base, err := srv.StartTLS("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	require.True(t, strings.HasPrefix(base, "https://"))

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(srv.CertificatePEM()))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	login := func(password string) (*http.Response, []byte) {
		envelope := `<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions><urn:client>simple-salesforce</urn:client></urn:CallOptions></env:Header><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>` +
			emulator.DefaultUsername + `</n1:username><n1:password>` + password + `</n1:password></n1:login></env:Body></env:Envelope>`
		req, _ := http.NewRequest("POST", base+"/services/Soap/u/59.0", strings.NewReader(envelope))
		req.Header.Set("Content-Type", "text/xml")
		req.Header.Set("SOAPAction", "login")
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := login(emulator.DefaultPassword)
	assert.Equal(t, 500, resp.StatusCode, "the security token is missing")
	assert.Contains(t, string(body), "<faultcode>sf:INVALID_LOGIN</faultcode>")

	resp, body = login(emulator.DefaultPassword + "SEC")
	require.Equal(t, 200, resp.StatusCode, string(body))
	var out struct {
		Body struct {
			LoginResponse struct {
				Result struct {
					ServerURL string `xml:"serverUrl"`
					SessionID string `xml:"sessionId"`
					UserInfo  struct {
						OrganizationID string `xml:"organizationId"`
						UserName       string `xml:"userName"`
					} `xml:"userInfo"`
				} `xml:"result"`
			} `xml:"loginResponse"`
		} `xml:"Body"`
	}
	require.NoError(t, xml.Unmarshal(body, &out))
	res := out.Body.LoginResponse.Result
	assert.True(t, strings.HasPrefix(res.ServerURL, base+"/services/Soap/u/59.0/00D"), res.ServerURL)
	assert.Equal(t, emulator.DefaultUsername, res.UserInfo.UserName)

	req, _ := http.NewRequest("GET", base+v+"/sobjects/Contact/describe", nil)
	req.Header.Set("Authorization", "Bearer "+res.SessionID)
	r, err := client.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	assert.Equal(t, 200, r.StatusCode)
}
