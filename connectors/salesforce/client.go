package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	gosf "github.com/k-capehart/go-salesforce/v3"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// maxBody bounds how much of a response body is read.
const maxBody = 64 << 20

// session is one login: the token, the instance it is valid on, and the HTTP
// client go-salesforce configured (timeout, connection pool).
type session struct {
	sf          *gosf.Salesforce
	token       string
	instanceURL string
	httpClient  *http.Client
}

// response is a 2xx answer of the REST API, read in full.
type response struct {
	body []byte
}

// current returns the session, logging in when there is none.
func (c *Connector) current(ctx context.Context, op string) (*session, Config, error) {
	cfg, err := c.config(op)
	if err != nil {
		return nil, Config{}, err
	}
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		return s, cfg, nil
	}
	s, err = c.relogin(ctx, op, nil)
	return s, cfg, err
}

// relogin logs in again unless another caller already replaced stale; it
// returns the session to use.
func (c *Connector) relogin(ctx context.Context, op string, stale *session) (*session, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	s, cfg, closed := c.sess, c.cfg, c.closed
	c.mu.Unlock()
	if closed {
		return nil, errClosed(op)
	}
	if s != nil && s != stale {
		return s, nil
	}
	s, err := login(ctx, cfg)
	if err != nil {
		c.logger.Warn("salesforce login failed", "login_url", cfg.LoginURL, "auth", cfg.Auth, "kind", connectors.KindOf(err), "error", err)
		var ce *connectors.Error
		if errors.As(err, &ce) {
			ce.Op = op
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed(op)
	}
	c.sess = s
	c.logger.Info("salesforce login", "auth", cfg.Auth, "instance_url", s.instanceURL, "relogin", stale != nil)
	return s, nil
}

// failedAuthRE matches go-salesforce's error for a non-200 token answer,
// "400 Bad Request: failed authentication".
var failedAuthRE = regexp.MustCompile(`^([0-9]{3})\b.*failed authentication$`)

// login runs go-salesforce's OAuth flow for cfg. go-salesforce posts the token
// request with Go's default HTTP client (no timeout, no context), so it runs
// in a goroutine bounded by ctx and cfg's timeout; on a timeout that goroutine
// ends when the token request does.
func login(ctx context.Context, cfg Config) (*session, error) {
	const op = "salesforce.login"
	creds := gosf.Creds{Domain: cfg.LoginURL, ConsumerKey: cfg.ClientID, ConsumerSecret: cfg.ClientSecret}
	want := gosf.AuthFlowClientCredentials
	if cfg.Auth == AuthPassword {
		want = gosf.AuthFlowUsernamePassword
		creds.Username = cfg.Username
		creds.Password, creds.SecurityToken = cfg.Password, cfg.SecurityToken
		if creds.SecurityToken == "" {
			// go-salesforce chooses the password flow only with a non-empty
			// security token, and sends password+token as the password: split
			// the password so the concatenation is the password itself.
			n := len(cfg.Password) - 1
			creds.Password, creds.SecurityToken = cfg.Password[:n], cfg.Password[n:]
		}
	}
	opts := []gosf.Option{
		gosf.WithAPIVersion(cfg.APIVersion),
		gosf.WithHTTPTimeout(cfg.timeout),
		gosf.WithBatchSizeMax(cfg.BatchSize),
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	type result struct {
		sf  *gosf.Salesforce
		err error
	}
	done := make(chan result, 1)
	go func() {
		sf, err := gosf.Init(creds, opts...)
		done <- result{sf, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		err := fmt.Errorf("token request to %s/services/oauth2/token: %w", cfg.LoginURL, ctx.Err())
		return nil, connectors.E(op, connectors.Transient, err)
	}

	if r.err != nil {
		f := Failure{Login: true, Message: r.err.Error()}
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		if m := failedAuthRE.FindStringSubmatch(r.err.Error()); m != nil {
			f.HTTPStatus, _ = strconv.Atoi(m[1])
		} else if !errors.As(r.err, &syntaxErr) && !errors.As(r.err, &typeErr) && r.err.Error() != "unknown authentication error" {
			f.Err = r.err // the token request got no answer
		} else {
			f.HTTPStatus = http.StatusOK // an answer, but no token in it
		}
		kind := Classify(f)
		msg := "bad credentials or connected app: check client_id, client_secret"
		if cfg.Auth == AuthPassword {
			msg += ", username, password and security_token"
		}
		if kind != connectors.Auth {
			msg = "token endpoint unreachable or failing"
		}
		return nil, connectors.E(op, kind, fmt.Errorf("%s login to %s (%s): %w", cfg.Auth, cfg.LoginURL, msg, r.err))
	}
	sf := r.sf
	if sf.GetAuthFlow() != want {
		return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("go-salesforce chose the %s flow, not %s: check auth and the credentials given", sf.GetAuthFlow(), want))
	}
	s := &session{
		sf:          sf,
		token:       sf.GetAccessToken(),
		instanceURL: strings.TrimRight(sf.GetInstanceUrl(), "/"),
		httpClient:  sf.GetHTTPClient(),
	}
	if s.instanceURL == "" {
		return nil, connectors.E(op, connectors.Auth, fmt.Errorf("token response from %s has no instance_url: is login_url a Salesforce login endpoint?", cfg.LoginURL))
	}
	return s, nil
}

// call makes one REST call to /services/data/<version><path> (or to path as
// is when it starts with /services/), with one re-login and replay on 401.
// Every HTTP request made is added to *calls. A non-2xx answer or a transport
// failure is returned as a *connectors.Error wrapping an *APIError.
func (c *Connector) call(ctx context.Context, op, method, path string, body []byte, calls *int) (*response, error) {
	return c.callAs(ctx, op, method, path, jsonType, jsonType, body, calls)
}

const (
	jsonType = "application/json"
	csvType  = "text/csv"
)

// callAs is call with the body's content type and the answer's (Accept):
// Bulk API 2.0 sends and returns CSV.
func (c *Connector) callAs(ctx context.Context, op, method, path, contentType, accept string, body []byte, calls *int) (*response, error) {
	s, cfg, err := c.current(ctx, op)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		resp, apiErr := c.do(ctx, s, cfg, method, path, contentType, accept, body)
		*calls++
		if apiErr == nil {
			return resp, nil
		}
		if apiErr.HTTPStatus == http.StatusUnauthorized && attempt == 0 {
			c.logger.Info("salesforce session expired: logging in again", "code", apiErr.Code)
			s, err = c.relogin(ctx, op, s)
			if err != nil {
				return nil, err
			}
			continue
		}
		kind := Classify(apiErr.failure())
		return nil, &connectors.Error{Op: op, Kind: kind, RetryAfter: apiErr.RetryAfter, Err: apiErr}
	}
}

// do makes one HTTP request and reads the whole answer.
func (c *Connector) do(ctx context.Context, s *session, cfg Config, method, path, contentType, accept string, body []byte) (*response, *APIError) {
	url := s.instanceURL + path
	if !strings.HasPrefix(path, "/services/") {
		url = s.instanceURL + "/services/data/" + cfg.APIVersion + path
	}
	shortPath, _, _ := strings.Cut(path, "?")
	apiErr := &APIError{Method: method, Path: shortPath}

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		apiErr.Err = err
		return nil, apiErr
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "loyaltyhub/"+Version+" go-salesforce")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	hr, err := s.httpClient.Do(req)
	if err != nil {
		apiErr.Err = err
		return nil, apiErr
	}
	defer hr.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hr.Body, maxBody))
	c.observeLimitInfo(hr.Header.Get("Sforce-Limit-Info"))
	if err != nil {
		apiErr.Err = fmt.Errorf("reading the %d answer: %w", hr.StatusCode, err)
		return nil, apiErr
	}
	if hr.StatusCode >= 200 && hr.StatusCode < 300 {
		return &response{body: data}, nil
	}
	apiErr.HTTPStatus = hr.StatusCode
	apiErr.RetryAfter = parseRetryAfter(hr.Header.Get("Retry-After"), time.Now())
	apiErr.Code, apiErr.Message, apiErr.Fields = parseErrorBody(data)
	return nil, apiErr
}

// sfError is one error of a REST error body or of a per-record result.
// Top-level errors name the code errorCode, per-record ones statusCode.
type sfError struct {
	ErrorCode  string   `json:"errorCode"`
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func (e sfError) code() string {
	if e.ErrorCode != "" {
		return e.ErrorCode
	}
	return e.StatusCode
}

// parseErrorBody reads a REST error body: a JSON array of errors (the usual
// form), a single error object, an OAuth error object, or anything else (kept
// as the message, shortened).
func parseErrorBody(data []byte) (code, message string, fields []string) {
	trimmed := bytes.TrimSpace(data)
	var list []sfError
	if err := json.Unmarshal(trimmed, &list); err == nil && len(list) > 0 {
		msgs := make([]string, 0, len(list))
		for i, e := range list {
			if i == 0 {
				msgs = append(msgs, e.Message)
				continue
			}
			msgs = append(msgs, describeError(e.code(), e.Message, e.Fields))
		}
		return list[0].code(), strings.Join(msgs, "; "), list[0].Fields
	}
	var one struct {
		sfError
		OAuthError       string `json:"error"`
		OAuthDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(trimmed, &one); err == nil && (one.code() != "" || one.OAuthError != "" || one.Message != "") {
		if one.code() == "" && one.OAuthError != "" {
			return one.OAuthError, one.OAuthDescription, nil
		}
		return one.code(), one.Message, one.Fields
	}
	text := strings.Join(strings.Fields(string(trimmed)), " ")
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return "", text, nil
}

// parseRetryAfter reads a Retry-After header: delta seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}
