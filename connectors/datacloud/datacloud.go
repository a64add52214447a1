// Package datacloud is the built-in Salesforce Data Cloud (CDP) connector:
// it streams records into the objects of an Ingestion API connector
// (POST /api/v1/ingest/sources/{source}/{object}) and deletes them by
// primary key, so member attributes and transactions reach the CDP where
// segments are built.
//
// Authentication takes two tokens: the org's (OAuth 2.0 client-credentials
// flow at the login URL), exchanged at /services/a360/token for a Data
// Cloud token and the tenant's URL. Both are renewed on a 401.
//
// Streaming ingestion is asynchronous: Data Cloud accepts a call (202) and
// processes it minutes later. An accepted record is applied as far as the
// hub can know; a call refused whole (400) is halved until the records at
// fault are alone (connectors.Isolate). Each call stays under 200 KB.
package datacloud

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Name is the connector's registered name; Version its version.
const (
	Name    = "datacloud"
	Version = "0.1.0"
	// MaxBatch is the largest batch Write accepts.
	MaxBatch = 10000
)

func init() {
	connectors.Register(connectors.Spec{
		Name: Name,
		New:  func(logger *slog.Logger) connectors.Connector { return New(logger) },
	})
}

// Connector is the Data Cloud connector, safe for concurrent use once
// configured.
type Connector struct {
	logger *slog.Logger

	settings connectors.Settings[settings]

	tokens connectors.TokenCache[token]
}

// token is a Data Cloud token and the tenant to use it with.
type token struct {
	access, tenantURL string
}

// New returns an unconfigured connector; it does no I/O.
func New(logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{logger: logger.With("connector", Name)}
}

// Describe says what the connector is; it needs no configuration.
func (c *Connector) Describe(context.Context) (connectors.Description, error) {
	return connectors.Description{
		Name:         Name,
		Version:      Version,
		Summary:      "Salesforce Data Cloud: streams records into Ingestion API objects (upsert by primary key, delete).",
		MaxBatch:     MaxBatch,
		Objects:      []string{"loyalty_members", "loyalty_transactions"},
		Writes:       []string{"loyalty_members", "loyalty_transactions"},
		Entities:     []string{"member", "transaction"},
		ConfigSchema: json.RawMessage(configSchema),
	}, nil
}

// Configure validates the config block and keeps it; no I/O.
func (c *Connector) Configure(_ context.Context, raw json.RawMessage) error {
	const op = "datacloud.Configure"
	cfg, err := ParseConfig(raw)
	if err != nil {
		return connectors.E(op, connectors.Permanent, err)
	}
	client := resty.New().SetTimeout(cfg.timeout).SetHeader("User-Agent", "loyaltyhub/"+Version).
		SetHeader("Accept", "application/json")
	if err := c.settings.Set(op, settings{cfg: cfg, client: client}); err != nil {
		return err
	}
	c.tokens.Drop()
	return nil
}

// Check gets a Data Cloud token: it proves the credentials, the scopes and
// that the org has Data Cloud.
func (c *Connector) Check(ctx context.Context) error {
	_, err := c.token(ctx, "datacloud.Check", true)
	return err
}

// Close drops the token; the connector is not usable afterwards.
func (c *Connector) Close() error {
	if st, ok := c.settings.Close(); ok {
		st.client.GetClient().CloseIdleConnections()
	}
	c.tokens.Drop()
	return nil
}

func (c *Connector) state(op string) (Config, *resty.Client, error) {
	st, err := c.settings.Get(op)
	return st.cfg, st.client, err
}

// settings are what Configure builds.
type settings struct {
	cfg    Config
	client *resty.Client
}

// token returns a valid Data Cloud token, getting a new one (the org's
// token, then the exchange) when there is none, it is about to expire, or
// fresh is set (after a 401).
func (c *Connector) token(ctx context.Context, op string, fresh bool) (*token, error) {
	cfg, client, err := c.state(op)
	if err != nil {
		return nil, err
	}
	return c.tokens.Get(ctx, fresh, func(ctx context.Context) (*token, time.Time, error) {
		return fetchToken(ctx, op, cfg, client)
	})
}

// fetchToken gets the org's token and exchanges it for a Data Cloud one.
func fetchToken(ctx context.Context, op string, cfg Config, client *resty.Client) (*token, time.Time, error) {
	var core struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	resp, err := client.R().SetContext(ctx).SetFormData(map[string]string{
		"grant_type": "client_credentials", "client_id": cfg.ClientID, "client_secret": cfg.ClientSecret,
	}).Post(cfg.LoginURL + "/services/oauth2/token")
	if err := tokenAnswer(op, "org login at "+cfg.LoginURL, resp, err, &core); err != nil {
		return nil, time.Time{}, err
	}
	if core.AccessToken == "" || core.InstanceURL == "" {
		return nil, time.Time{}, connectors.E(op, connectors.Transient, fmt.Errorf("org login: the answer has no access_token or instance_url: %s", snippet(resp.Body())))
	}
	var dc struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	resp, err = client.R().SetContext(ctx).SetFormData(map[string]string{
		"grant_type":         "urn:salesforce:grant-type:external:cdp",
		"subject_token":      core.AccessToken,
		"subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
	}).Post(strings.TrimRight(core.InstanceURL, "/") + "/services/a360/token")
	if err := tokenAnswer(op, "Data Cloud token exchange", resp, err, &dc); err != nil {
		return nil, time.Time{}, err
	}
	if dc.AccessToken == "" || dc.InstanceURL == "" {
		return nil, time.Time{}, connectors.E(op, connectors.Transient, fmt.Errorf("Data Cloud token exchange: the answer has no access_token or instance_url: %s", snippet(resp.Body())))
	}
	tenant := strings.TrimRight(dc.InstanceURL, "/")
	if !strings.Contains(tenant, "://") {
		tenant = "https://" + tenant // Data Cloud gives the tenant's host alone
	}
	ttl := time.Duration(dc.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &token{access: dc.AccessToken, tenantURL: tenant}, time.Now().Add(ttl), nil
}

// tokenAnswer decodes a token answer into out, or classifies its failure.
func tokenAnswer(op, what string, resp *resty.Response, err error, out any) error {
	if err != nil {
		return connectors.E(op, connectors.Transient, fmt.Errorf("%s: %w", what, err))
	}
	switch s := resp.StatusCode(); {
	case s == http.StatusOK:
	case s == http.StatusTooManyRequests || s >= 500:
		return connectors.E(op, connectors.Transient, fmt.Errorf("%s: HTTP %d: %s", what, s, snippet(resp.Body())))
	default:
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		msg := snippet(resp.Body())
		if json.Unmarshal(resp.Body(), &e) == nil && e.Error != "" {
			msg = e.Error + " (" + e.Description + ")"
		}
		return connectors.E(op, connectors.Auth, fmt.Errorf("%s: HTTP %d: %s: check client_id, client_secret, the connected app's scopes (cdp_ingest_api, api) and that the org has Data Cloud", what, s, msg))
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		return connectors.E(op, connectors.Transient, fmt.Errorf("%s: the answer is not JSON: %s", what, snippet(resp.Body())))
	}
	return nil
}

// describeError renders an error answer and a code for it. Data Cloud's
// error bodies come as an object or a list of {errorCode, message}.
func describeError(resp *resty.Response) (msg, code string) {
	type apiErr struct {
		ErrorCode string `json:"errorCode"`
		Error     string `json:"error"`
		Message   string `json:"message"`
	}
	var list []apiErr
	var one apiErr
	if json.Unmarshal(resp.Body(), &list) != nil || len(list) == 0 {
		if json.Unmarshal(resp.Body(), &one) == nil && (one.Message != "" || one.ErrorCode != "" || one.Error != "") {
			list = []apiErr{one}
		}
	}
	if len(list) == 0 {
		return fmt.Sprintf("HTTP %d: %s", resp.StatusCode(), snippet(resp.Body())), strconv.Itoa(resp.StatusCode())
	}
	msgs := make([]string, len(list))
	for i, e := range list {
		msgs[i] = strings.TrimSpace(e.Message)
	}
	code = list[0].ErrorCode
	if code == "" {
		code = list[0].Error
	}
	if code == "" {
		code = strconv.Itoa(resp.StatusCode())
	}
	return strings.Join(msgs, "; "), code
}

// retryAfter reads a 429's Retry-After (seconds), one second by default.
func retryAfter(resp *resty.Response) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header().Get("Retry-After"))); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return time.Second
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// ingestPath is the streaming ingestion path of an object.
func ingestPath(source, object string) string {
	return "/api/v1/ingest/sources/" + url.PathEscape(source) + "/" + url.PathEscape(object)
}

// Interface guards.
var (
	_ connectors.Connector = (*Connector)(nil)
	_ connectors.Writer    = (*Connector)(nil)
)
