package emulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// packageScopes are the scopes of the emulated installed package: a token request without
// "scope" gets all of them.
var packageScopes = []string{
	"offline", "audiences_read", "audiences_write", "automations_execute", "automations_read", "automations_write",
	"data_extensions_read", "data_extensions_write", "email_read", "email_send", "email_write",
	"journeys_execute", "journeys_read", "journeys_write", "list_and_subscribers_read", "list_and_subscribers_write",
	"tracking_events_read",
}

// oauthErrorURI is the error_uri of token errors. UNVERIFIED: the reference does not show
// a token error body; RFC 6749 shape with SFMC's developer docs link.
const oauthErrorURI = "https://developer.salesforce.com/docs"

// token is an issued access token.
type token struct {
	expires time.Time
	scopes  map[string]bool
}

// allows reports whether the token's scopes permit a data extension read or write.
func (t token) allows(write bool) bool {
	if write {
		return t.scopes["data_extensions_write"]
	}
	return t.scopes["data_extensions_read"] || t.scopes["data_extensions_write"]
}

func oauthError(status int, code, desc string) *reply {
	return jsonReply(status, map[string]string{"error": code, "error_description": desc, "error_uri": oauthErrorURI})
}

// tokenRequest holds the token request's parameters, from a JSON body (as documented) or
// a form body (which some clients send and the auth host also accepts).
type tokenRequest struct {
	grantType, clientID, clientSecret string
	scope                             *string // nil: not given
	accountID                         string
}

func parseTokenRequest(r *http.Request) (*tokenRequest, *reply) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "The request body could not be read.")
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	tr := &tokenRequest{}
	switch mt {
	case "application/x-www-form-urlencoded":
		f, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, oauthError(http.StatusBadRequest, "invalid_request", "The form body is malformed.")
		}
		tr.grantType, tr.clientID, tr.clientSecret, tr.accountID = f.Get("grant_type"), f.Get("client_id"), f.Get("client_secret"), f.Get("account_id")
		if f.Has("scope") {
			sc := f.Get("scope")
			tr.scope = &sc
		}
	case "", "application/json":
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, oauthError(http.StatusBadRequest, "invalid_request", "The request body must be a JSON object with grant_type, client_id and client_secret.")
		}
		str := func(k string) string {
			switch v := body[k].(type) {
			case string:
				return v
			case json.Number: // account_id is documented as a number
				return v.String()
			}
			return ""
		}
		tr.grantType, tr.clientID, tr.clientSecret, tr.accountID = str("grant_type"), str("client_id"), str("client_secret"), str("account_id")
		if v, ok := body["scope"]; ok && v != nil {
			sc := str("scope")
			tr.scope = &sc
		}
	default:
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "Unsupported Content-Type "+mt+": send application/json.")
	}
	return tr, nil
}

// handleToken is POST /v2/token: the server-to-server client-credentials grant.
func (s *Server) handleToken(r *http.Request) *reply {
	if r.Method != http.MethodPost {
		rp := oauthError(http.StatusMethodNotAllowed, "invalid_request", "The token endpoint only accepts POST.")
		rp.header = map[string]string{"Allow": "POST"}
		return rp
	}
	s.countCall("auth")
	if rp := s.requestFaults(r.Context(), "auth"); rp != nil {
		return rp
	}
	tr, rp := parseTokenRequest(r)
	if rp != nil {
		return rp
	}
	if tr.grantType != "client_credentials" {
		// The description is the one the real auth host gives (quoted in a Trailblazer thread).
		return oauthError(http.StatusBadRequest, "unsupported_grant_type",
			`Use "authorization_code" or "refresh_token" or "client_credentials" or "urn:ietf:params:oauth:grant-type:jwt-bearer" as the grant_type.`)
	}
	if tr.clientID != s.cfg.ClientID || !hmac.Equal([]byte(tr.clientSecret), []byte(s.cfg.ClientSecret)) {
		return oauthError(http.StatusUnauthorized, "invalid_client",
			"Client authentication failed. Make sure that the client ID and client secret are valid and that the client is a server-to-server integration.")
	}
	if s.cfg.AccountID != "" && tr.accountID != "" && strings.TrimSpace(tr.accountID) != s.cfg.AccountID {
		// UNVERIFIED: the real status and error code are not documented. 401 was chosen
		// (RFC 6749 reserves 401 for failed client authentication, and a client should
		// treat a wrong MID as a credentials problem, not retry it).
		return oauthError(http.StatusUnauthorized, "unauthorized_client",
			"The client is not authorized to access account_id "+tr.accountID+".")
	}
	scopes := packageScopes
	if tr.scope != nil {
		scopes = strings.Fields(*tr.scope) // an empty scope yields a token without permissions
	}
	tok := token{expires: time.Now().Add(s.cfg.TokenTTL), scopes: map[string]bool{}}
	for _, sc := range scopes {
		tok.scopes[sc] = true
	}
	access := s.issue(tok)
	base := requestBase(r) + "/"
	return jsonReply(http.StatusOK, map[string]any{
		"access_token":      access,
		"token_type":        "Bearer",
		"expires_in":        int(s.cfg.TokenTTL / time.Second),
		"scope":             strings.Join(scopes, " "),
		"soap_instance_url": base,
		"rest_instance_url": base,
	})
}

// requestBase is the emulator's own base URL as the client reached it.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) issue(t token) string {
	var b [48]byte
	_, _ = rand.Read(b[:])
	access := base64.RawURLEncoding.EncodeToString(b[:])
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	now := time.Now()
	for k, old := range s.tokens {
		if now.After(old.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[access] = t
	return access
}

// bearer returns the valid token of the request's "Authorization: Bearer" header.
func (s *Server) bearer(r *http.Request) (token, bool) {
	scheme, access, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return token{}, false
	}
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	t, ok := s.tokens[strings.TrimSpace(access)]
	return t, ok && time.Now().Before(t.expires)
}

// ExpireTokens invalidates every access token issued so far: the next REST call of each
// client gets 401 Not Authorized, and a new token must be requested.
func (s *Server) ExpireTokens() {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	clear(s.tokens)
}
