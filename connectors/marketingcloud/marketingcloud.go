// Package marketingcloud is the built-in Marketing Cloud (Engagement)
// connector: it upserts rows of data extensions through the synchronous
// rowset API (POST /hub/v1/dataevents/key:{key}/rowset), so marketers get
// loyalty data (segment memberships, member attributes) into the data
// extensions their journeys and sends read.
//
// Authentication is the server-to-server OAuth 2.0 client-credentials flow
// of an installed package (POST /v2/token on the tenant's auth host); the
// token is kept until shortly before it expires (about 20 minutes) and
// renewed once on a 401. Calls go through resty.
//
// A rowset call is all or nothing: when Marketing Cloud refuses it (400),
// the connector splits the rows in halves and sends each again, so that one
// bad row is dead-lettered with Marketing Cloud's message and the others are
// written. A 429 makes every row of the call retryable after the wait
// Marketing Cloud asks for.
//
// Data extension rows have no delete in the REST API: a sync writing to
// Marketing Cloud writes removals as rows (removals: write), with a column
// such as Joined that says the member left.
//
// Lifecycle: New (no I/O) → Configure (validates, no I/O) → Check / Write
// (the first of them gets a token) → Close.
package marketingcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Name is the connector's registered name.
const Name = "marketingcloud"

// Version is the connector's version, reported by Describe.
const Version = "0.1.0"

// MaxBatch is the largest batch Write accepts; it splits a batch into
// rowset calls of Config.BatchSize rows each, or sends it as one
// asynchronous request (Config.AsyncThreshold).
const MaxBatch = 10000

func init() {
	connectors.Register(connectors.Spec{
		Name: Name,
		New:  func(logger *slog.Logger) connectors.Connector { return New(logger) },
	})
}

// Connector is the Marketing Cloud connector. It is safe for concurrent use
// once configured.
type Connector struct {
	logger *slog.Logger

	settings connectors.Settings[settings]

	tokens connectors.TokenCache[token]
}

// token is an access token and where to use it.
type token struct {
	access  string
	restURL string // rest_instance_url, without its trailing slash
}

// New returns an unconfigured connector; it does no I/O. A nil logger
// discards the logs.
func New(logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{logger: logger.With("connector", Name)}
}

// Describe says what the connector is; it needs no configuration.
func (c *Connector) Describe(context.Context) (connectors.Description, error) {
	return connectors.Description{
		Name:    Name,
		Version: Version,
		Summary: "Marketing Cloud Engagement: upserts data extension rows (segment memberships, member attributes) through the rowset API.",
		// Any data extension can be written; these are the example config's.
		MaxBatch:     MaxBatch,
		Objects:      []string{"Loyalty_Segment_Members", "Loyalty_Members"},
		Writes:       []string{"Loyalty_Segment_Members", "Loyalty_Members"},
		Entities:     []string{"segment", "member"},
		ConfigSchema: json.RawMessage(configSchema),
	}, nil
}

// Configure validates the config block (see Config) and keeps it. It reports
// every problem at once and does no I/O. Configuring again drops the token.
func (c *Connector) Configure(_ context.Context, raw json.RawMessage) error {
	const op = "marketingcloud.Configure"
	cfg, err := ParseConfig(raw)
	if err != nil {
		return connectors.E(op, connectors.Permanent, err)
	}
	if cfg.insecureAuthURL() {
		c.logger.Warn("auth_url uses plain http to a non-loopback host: credentials travel in clear text", "auth_url", cfg.AuthURL)
	}
	client := resty.New().SetTimeout(cfg.timeout).SetHeader("User-Agent", "loyaltyhub/"+Version).
		SetHeader("Accept", "application/json")
	if err := c.settings.Set(op, settings{cfg: cfg, client: client}); err != nil {
		return err
	}
	c.tokens.Drop()
	return nil
}

// Check gets a token, proving the credentials, the business unit and that
// the auth host answers.
func (c *Connector) Check(ctx context.Context) error {
	_, err := c.token(ctx, "marketingcloud.Check", true)
	return err
}

// Close drops the token and releases idle connections. The connector is not
// usable afterwards.
func (c *Connector) Close() error {
	if st, ok := c.settings.Close(); ok {
		st.client.GetClient().CloseIdleConnections()
	}
	c.tokens.Drop()
	return nil
}

// state returns the configuration and client, or an error when Configure
// has not succeeded or the connector is closed.
func (c *Connector) state(op string) (Config, *resty.Client, error) {
	st, err := c.settings.Get(op)
	return st.cfg, st.client, err
}

// settings are what Configure builds.
type settings struct {
	cfg    Config
	client *resty.Client
}

// token returns a valid token, asking for one when there is none, it is
// about to expire, or fresh is true (after a 401).
func (c *Connector) token(ctx context.Context, op string, fresh bool) (*token, error) {
	cfg, client, err := c.state(op)
	if err != nil {
		return nil, err
	}
	return c.tokens.Get(ctx, fresh, func(ctx context.Context) (*token, time.Time, error) {
		return fetchToken(ctx, op, cfg, client)
	})
}

// fetchToken asks the auth host for a token (client-credentials grant).
func fetchToken(ctx context.Context, op string, cfg Config, client *resty.Client) (*token, time.Time, error) {
	body := map[string]string{"grant_type": "client_credentials", "client_id": cfg.ClientID, "client_secret": cfg.ClientSecret}
	if cfg.AccountID != "" {
		body["account_id"] = cfg.AccountID
	}
	if cfg.Scope != "" {
		body["scope"] = cfg.Scope
	}
	var out struct {
		AccessToken     string `json:"access_token"`
		ExpiresIn       int64  `json:"expires_in"`
		RestInstanceURL string `json:"rest_instance_url"`
	}
	resp, err := client.R().SetContext(ctx).SetHeader("Content-Type", "application/json").
		SetBody(body).Post(cfg.AuthURL + "/v2/token")
	if err != nil {
		return nil, time.Time{}, connectors.E(op, connectors.Transient, fmt.Errorf("token request to %s: %w", cfg.AuthURL, err))
	}
	if resp.StatusCode() != http.StatusOK {
		return nil, time.Time{}, connectors.E(op, tokenErrorKind(resp.StatusCode()), fmt.Errorf("token request: %s", describeOAuthError(resp)))
	}
	if err := json.Unmarshal(resp.Body(), &out); err != nil || out.AccessToken == "" || out.RestInstanceURL == "" {
		return nil, time.Time{}, connectors.E(op, connectors.Transient, fmt.Errorf("token request: the answer has no access_token or rest_instance_url: %s", snippet(resp.Body())))
	}
	t := &token{access: out.AccessToken, restURL: strings.TrimRight(out.RestInstanceURL, "/")}
	return t, time.Now().Add(time.Duration(out.ExpiresIn) * time.Second), nil
}

func tokenErrorKind(status int) connectors.Kind {
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return connectors.Transient
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		return connectors.Auth
	}
	return connectors.Permanent
}

// describeOAuthError renders an OAuth error answer: the status, the error
// code and its description, and what to check.
func describeOAuthError(resp *resty.Response) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode())
	if json.Unmarshal(resp.Body(), &e) == nil && e.Error != "" {
		msg += ": " + e.Error
		if e.Description != "" {
			msg += " (" + e.Description + ")"
		}
	} else if b := snippet(resp.Body()); b != "" {
		msg += ": " + b
	}
	if resp.StatusCode() == http.StatusUnauthorized || resp.StatusCode() == http.StatusForbidden {
		msg += ": check client_id, client_secret and account_id against the installed package"
	}
	return msg
}

// mcError is Marketing Cloud's REST error body.
type mcError struct {
	Message          string    `json:"message"`
	ErrorCode        int       `json:"errorcode"`
	RetryAfter       any       `json:"retryAfter"`
	AdditionalErrors []mcError `json:"additionalErrors"`
}

// describe renders an error answer: its message, code and the additional
// errors Marketing Cloud lists.
func describeError(resp *resty.Response) (msg, code string) {
	var e mcError
	if json.Unmarshal(resp.Body(), &e) != nil || (e.Message == "" && len(e.AdditionalErrors) == 0) {
		return fmt.Sprintf("HTTP %d: %s", resp.StatusCode(), snippet(resp.Body())), strconv.Itoa(resp.StatusCode())
	}
	msg = e.Message
	for _, a := range e.AdditionalErrors {
		msg += "; " + a.Message
	}
	return msg, strconv.Itoa(e.ErrorCode)
}

// retryAfter reads the wait a 429 asks for: the Retry-After header (seconds
// or an HTTP date), else the body's retryAfter, else one second.
func retryAfter(resp *resty.Response) time.Duration {
	if h := resp.Header().Get("Retry-After"); h != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(h); err == nil {
			return max(time.Until(t), 0)
		}
	}
	var e mcError
	if json.Unmarshal(resp.Body(), &e) == nil {
		switch v := e.RetryAfter.(type) {
		case float64:
			return time.Duration(v * float64(time.Second))
		case string:
			if s, err := strconv.Atoi(v); err == nil {
				return time.Duration(s) * time.Second
			}
		}
	}
	return time.Second
}

// snippet is the start of a body, for messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Interface guards.
var (
	_ connectors.Connector = (*Connector)(nil)
	_ connectors.Writer    = (*Connector)(nil)
)
