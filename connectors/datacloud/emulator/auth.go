package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Grant and token type URNs of the token exchange.
const (
	grantJWTBearer   = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantCDP         = "urn:salesforce:grant-type:external:cdp"
	tokenTypeAccess  = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT     = "urn:ietf:params:oauth:token-type:jwt"
	coreTokenScope   = "cdp_ingest_api api"
	coreTokenPrefix  = orgID + "!"
	bearerChallenge  = `Bearer error="invalid_token"`
	exchangeEndpoint = "/services/a360/token"
)

// tokenKind tells a core Salesforce token from a Data Cloud one.
type tokenKind int

const (
	coreToken tokenKind = iota + 1
	dataCloudToken
)

// token is an issued access token.
type token struct {
	kind    tokenKind
	expires time.Time
}

// handleCoreToken is POST /services/oauth2/token: the org's OAuth 2.0 token endpoint,
// with the client credentials grant (client_id and client_secret in the form body or an
// HTTP Basic header) and the JWT bearer grant the Data Cloud docs show.
func (s *Server) handleCoreToken(r *http.Request) *reply {
	if r.Method != http.MethodPost {
		rp := oauthError(http.StatusMethodNotAllowed, "invalid_request", "must use HTTP POST")
		rp.header = map[string]string{"Allow": "POST"}
		return rp
	}
	s.countCall(OpCoreToken)
	if rp := s.requestFaults(r, OpCoreToken); rp != nil {
		return rp
	}
	f, rp := tokenForm(r)
	if rp != nil {
		return rp
	}
	switch f.Get("grant_type") {
	case "client_credentials":
		id, secret := f.Get("client_id"), f.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok && id == "" && secret == "" {
			id, secret = u, p
		}
		// The two answers Salesforce gives: an unknown consumer key, then a wrong secret.
		if id != s.cfg.ClientID {
			return oauthError(http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
		}
		if !hmac.Equal([]byte(secret), []byte(s.cfg.ClientSecret)) {
			return oauthError(http.StatusBadRequest, "invalid_client", "invalid client credentials")
		}
	case grantJWTBearer:
		if desc := s.checkAssertion(f.Get("assertion")); desc != "" {
			return oauthError(http.StatusBadRequest, "invalid_grant", desc)
		}
	default:
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
	}
	access := s.issue(coreTokenPrefix+randomString(48), coreToken)
	base := requestBase(r)
	issued := strconv.FormatInt(time.Now().UnixMilli(), 10)
	idURL := base + "/id/" + orgID + "/" + userID
	mac := hmac.New(sha256.New, []byte(s.cfg.ClientSecret))
	mac.Write([]byte(idURL + issued))
	return jsonReply(http.StatusOK, map[string]string{
		"access_token": access,
		"instance_url": base,
		"id":           idURL,
		"token_type":   "Bearer",
		"issued_at":    issued,
		"signature":    base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		"scope":        coreTokenScope,
	})
}

// tokenForm parses a token request's parameters: the form body (and, as Salesforce also
// accepts, the query string).
func tokenForm(r *http.Request) (url.Values, *reply) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/x-www-form-urlencoded" {
			return nil, oauthError(http.StatusBadRequest, "invalid_request", "the token request must be application/x-www-form-urlencoded, not "+ct)
		}
	}
	if err := r.ParseForm(); err != nil {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "malformed form body")
	}
	return r.Form, nil
}

// checkAssertion accepts a JWT bearer assertion whose issuer is the client id, with a
// subject and, when it has one, an expiry in the future. The signature is not verified:
// the emulator has no certificate. It returns the error description of a refused one.
func (s *Server) checkAssertion(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "invalid assertion"
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "invalid assertion"
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Exp json.RawMessage `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return "invalid assertion"
	}
	if claims.Iss != s.cfg.ClientID {
		return "invalid client credentials"
	}
	if claims.Sub == "" {
		return "invalid assertion"
	}
	if exp, err := strconv.ParseFloat(string(claims.Exp), 64); err == nil && time.Now().Unix() > int64(exp) {
		return "expired authorization code"
	}
	return ""
}

// handleExchange is POST /services/a360/token: the exchange of a core token for a Data
// Cloud token.
//
// UNVERIFIED choices: a subject token that is unknown, expired or not a core token is
// answered 401 {"error":"invalid_subject_token",…} (the one error name public reports
// show; status not documented); a missing subject_token or another subject_token_type is
// 400 invalid_request, another grant_type 400 unsupported_grant_type. The optional
// "dataspace" parameter is accepted and ignored. A core token may be exchanged any number
// of times (the one-time limit Salesforce reports applies to password-grant tokens only).
func (s *Server) handleExchange(r *http.Request) *reply {
	if r.Method != http.MethodPost {
		rp := oauthError(http.StatusMethodNotAllowed, "invalid_request", "must use HTTP POST")
		rp.header = map[string]string{"Allow": "POST"}
		return rp
	}
	s.countCall(OpA360Token)
	if rp := s.requestFaults(r, OpA360Token); rp != nil {
		return rp
	}
	f, rp := tokenForm(r)
	if rp != nil {
		return rp
	}
	if g := f.Get("grant_type"); g != grantCDP {
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "grant type not supported: want grant_type="+grantCDP)
	}
	subject := strings.TrimSpace(f.Get("subject_token"))
	if subject == "" {
		return oauthError(http.StatusBadRequest, "invalid_request", "subject_token is required: the Salesforce access token to exchange")
	}
	if tt := f.Get("subject_token_type"); tt != tokenTypeAccess {
		return oauthError(http.StatusBadRequest, "invalid_request", "unsupported subject_token_type "+strconv.Quote(tt)+": want "+tokenTypeAccess)
	}
	t, ok := s.lookupToken(subject)
	switch {
	case !ok:
		return oauthError(http.StatusUnauthorized, "invalid_subject_token", "the subject token is invalid or expired: get a new Salesforce access token and exchange it")
	case t.kind != coreToken:
		return oauthError(http.StatusUnauthorized, "invalid_subject_token", "the subject token is a Data Cloud token: exchange a Salesforce access token")
	}
	access := s.issue(s.dataCloudJWT(requestBase(r)), dataCloudToken)
	return jsonReply(http.StatusOK, map[string]any{
		"access_token": access,
		// The real instance_url is the tenant's host alone ("{tenant}.c360a.salesforce.com",
		// no scheme); the emulator sends its own URL with its http:// scheme, since a client
		// that adds "https://" could not reach a plain-HTTP emulator. Clients should add
		// https:// only when the value has no scheme.
		"instance_url":      requestBase(r),
		"token_type":        "Bearer",
		"issued_token_type": tokenTypeJWT,
		"expires_in":        int64(s.cfg.TokenTTL / time.Second),
	})
}

// dataCloudJWT returns a new Data Cloud token: a JWT (issued_token_type says so), signed
// with a key of its own; clients should treat it as opaque.
func (s *Server) dataCloudJWT(issuer string) string {
	now := time.Now()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "emulator"})
	body := enc(map[string]any{
		"iss": issuer, "sub": userID, "aud": "a360", "orgId": orgID, "scp": coreTokenScope,
		"iat": now.Unix(), "exp": now.Add(s.cfg.TokenTTL).Unix(), "jti": randomString(16),
	})
	mac := hmac.New(sha256.New, []byte(s.cfg.ClientSecret))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// requestBase is the emulator's own base URL as the client reached it.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issue records a new token valid for TokenTTL and returns it.
func (s *Server) issue(access string, kind tokenKind) string {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	now := time.Now()
	for k, old := range s.tokens {
		if now.After(old.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[access] = token{kind: kind, expires: now.Add(s.cfg.TokenTTL)}
	return access
}

// lookupToken returns a token that is issued and not expired.
func (s *Server) lookupToken(access string) (token, bool) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	t, ok := s.tokens[access]
	return t, ok && time.Now().Before(t.expires)
}

// authorize checks the ingest call's "Authorization: Bearer <Data Cloud token>" and
// returns the 401 answer of a missing, unknown, expired or core token.
func (s *Server) authorize(r *http.Request) *reply {
	deny := func(msg string) *reply {
		rp := apiError(r, http.StatusUnauthorized, msg)
		rp.header = map[string]string{"WWW-Authenticate": bearerChallenge}
		return rp
	}
	scheme, access, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	access = strings.TrimSpace(access)
	if !ok || !strings.EqualFold(scheme, "Bearer") || access == "" {
		return deny("Unauthorized: send the Data Cloud access token as Authorization: Bearer <token>")
	}
	t, ok := s.lookupToken(access)
	switch {
	case !ok:
		return deny("Unauthorized: the access token is invalid or expired")
	case t.kind != dataCloudToken:
		return deny("Unauthorized: this is a Salesforce access token, not a Data Cloud token: exchange it at " + exchangeEndpoint)
	}
	return nil
}

// ExpireTokens invalidates every token issued so far, core and Data Cloud alike: the next
// ingest call of each client gets 401, and its next exchange of an old core token 401
// invalid_subject_token, so it must log in again.
func (s *Server) ExpireTokens() {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	clear(s.tokens)
}
