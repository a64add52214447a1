package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// handleToken is POST /services/oauth2/token: the OAuth 2.0 token endpoint.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.writeOAuthError(w, r, http.StatusMethodNotAllowed, "invalid_request", "must use HTTP POST")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "the token request must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	f := r.PostForm
	s.countCall("auth")
	if resp := s.authFaults(r); resp != nil {
		s.write(w, r, resp, false)
		return
	}
	switch grant := f.Get("grant_type"); grant {
	case "password":
		if !s.checkClient(w, r, f.Get("client_id"), f.Get("client_secret")) {
			return
		}
		pw := f.Get("password")
		okPassword := hmac.Equal([]byte(pw), []byte(s.cfg.Password+s.cfg.SecurityToken))
		if f.Get("username") != s.cfg.Username || !okPassword {
			s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", "authentication failure")
			return
		}
	case "client_credentials":
		if !s.checkClient(w, r, f.Get("client_id"), f.Get("client_secret")) {
			return
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		if !s.checkJWT(f.Get("assertion")) {
			s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", "user hasn't approved this consumer")
			return
		}
	case "":
		s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "grant type not supported")
		return
	default:
		s.writeOAuthError(w, r, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	}
	token := s.newSession()
	base := s.instanceURL(r)
	issued := strconv.FormatInt(time.Now().UnixMilli(), 10)
	idURL := base + "/id/" + s.orgID + "/" + s.userID
	mac := hmac.New(sha256.New, []byte(s.cfg.ClientSecret))
	mac.Write([]byte(idURL + issued))
	s.statsMu.Lock()
	s.stats.TokensIssued++
	s.statsMu.Unlock()
	s.write(w, r, jsonResp(http.StatusOK, map[string]any{
		"access_token": token,
		"instance_url": base,
		"id":           idURL,
		"token_type":   "Bearer",
		"issued_at":    issued,
		"signature":    base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		"scope":        "api",
	}), false)
}

func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	s.write(w, r, jsonResp(status, map[string]string{"error": code, "error_description": desc}), false)
}

// checkClient verifies the connected app's consumer key and secret.
func (s *Server) checkClient(w http.ResponseWriter, r *http.Request, id, secret string) bool {
	if id != s.cfg.ClientID {
		s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
		return false
	}
	if !hmac.Equal([]byte(secret), []byte(s.cfg.ClientSecret)) {
		s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_client", "invalid client credentials")
		return false
	}
	return true
}

// checkJWT accepts a jwt-bearer assertion whose issuer is the client id and whose subject
// is the org user. The signature is not verified: the emulator has no certificate.
func (s *Server) checkJWT(assertion string) bool {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return false
	}
	return claims.Iss == s.cfg.ClientID && claims.Sub == s.cfg.Username
}

func (s *Server) newSession() string {
	var b [48]byte
	_, _ = rand.Read(b[:])
	token := s.orgID[:15] + "!" + base64.RawURLEncoding.EncodeToString(b[:])
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	now := time.Now()
	for t, exp := range s.sessions {
		if now.After(exp) {
			delete(s.sessions, t)
		}
	}
	s.sessions[token] = now.Add(s.cfg.TokenTTL)
	return token
}

// validSession checks the Authorization header ("Bearer <token>" or "OAuth <token>").
func (s *Server) validSession(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return false
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	exp, ok := s.sessions[strings.TrimSpace(token)]
	return ok && time.Now().Before(exp)
}

// ExpireSessions invalidates every access token issued so far: the next data call of each
// client gets 401 INVALID_SESSION_ID.
func (s *Server) ExpireSessions() {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	clear(s.sessions)
}
