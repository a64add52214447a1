// Package salesforce is the built-in Salesforce connector: it writes batches
// of records to sObjects through the REST API's sObject Collections (upsert by
// external id, insert, update, delete; up to 200 records a call), describes
// sObjects for mapping validation, reads single records by external id for
// previews (GetRecord), and reports the org's API usage.
//
// Login goes through github.com/k-capehart/go-salesforce/v3 (OAuth 2.0
// client-credentials or username-password flow). The data calls are made here
// with the HTTP client go-salesforce configured, so that each call honours its
// context and the connector sees every status code, the Retry-After and
// Sforce-Limit-Info headers and the full error body, which go-salesforce's own
// collection helpers hide. A 401 (INVALID_SESSION_ID) triggers one re-login
// through go-salesforce and one replay of the call.
//
// Lifecycle: New (no I/O) → Configure (validates, no I/O) → Check / Write /
// DescribeObject (the first of them logs in) → Close.
package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Name is the connector's registered name.
const Name = "salesforce"

// Version is the connector's version, reported by Describe.
const Version = "0.1.0"

// MaxBatch is the largest batch Write accepts; it splits a batch into
// sObject Collections calls of Config.BatchSize records each, or writes it
// as one Bulk API 2.0 job (Config.BulkThreshold). 10,000 records is the
// chunk go-salesforce and Salesforce's own tools put in one job.
const MaxBatch = 10000

func init() {
	connectors.Register(connectors.Spec{
		Name: Name,
		New:  func(logger *slog.Logger) connectors.Connector { return New(logger) },
	})
}

// Connector is the Salesforce connector. It is safe for concurrent use once
// configured.
type Connector struct {
	logger *slog.Logger

	mu         sync.Mutex // guards cfg, configured, closed and sess
	cfg        Config
	configured bool
	closed     bool
	sess       *session

	loginMu sync.Mutex // serialises logins, so a stampede logs in once

	schemaMu sync.Mutex
	schemas  map[string]connectors.ObjectSchema

	usageMu   sync.Mutex
	usage     APIUsage
	haveUsage bool
	warnedPct int64
}

// New returns an unconfigured connector; it does no I/O. A nil logger
// discards the logs.
func New(logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{
		logger:  logger.With("connector", Name),
		schemas: map[string]connectors.ObjectSchema{},
	}
}

// Describe says what the connector is; it needs no configuration.
func (c *Connector) Describe(context.Context) (connectors.Description, error) {
	return connectors.Description{
		Name:    Name,
		Version: Version,
		Summary: "Salesforce (Loyalty Management, Sales/Service Cloud): upsert by external id, insert, update and delete through sObject Collections; describes sObjects.",
		// Any sObject can be written; these are the ones loyaltyhub maps to.
		MaxBatch: MaxBatch,
		// External ids match case-insensitively (a unique external id field
		// treats "ABC" and "abc" as one value, the default for unique text
		// fields, and the emulator's behaviour).
		Keys: connectors.KeysCaseInsensitive,
		Objects: []string{
			"Account", "Contact", "LoyaltyProgramMember", "LoyaltyMemberCurrency",
			"LoyaltyMemberTier", "TransactionJournal", "LoyaltyLedger", "Voucher",
		},
		Writes: []string{
			"Account", "Contact", "LoyaltyProgramMember", "LoyaltyMemberCurrency",
			"LoyaltyMemberTier", "TransactionJournal", "LoyaltyLedger", "Voucher",
		},
		Entities:     []string{"member", "transaction", "voucher"},
		ConfigSchema: json.RawMessage(configSchema),
	}, nil
}

// Configure validates the config block (see Config) and keeps it. It reports
// every problem at once and does no I/O: the login happens at the first
// Check, Write or DescribeObject. Configuring again drops the session.
func (c *Connector) Configure(_ context.Context, raw json.RawMessage) error {
	const op = "salesforce.Configure"
	cfg, err := ParseConfig(raw)
	if err != nil {
		return connectors.E(op, connectors.Permanent, err)
	}
	if cfg.insecureLoginURL() {
		c.logger.Warn("login_url uses plain http to a non-loopback host: credentials travel in clear text", "login_url", cfg.LoginURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return connectors.E(op, connectors.Permanent, errors.New("connector is closed"))
	}
	c.cfg = cfg
	c.configured = true
	c.sess = nil
	c.schemaMu.Lock()
	c.schemas = map[string]connectors.ObjectSchema{}
	c.schemaMu.Unlock()
	return nil
}

// Check logs in (when not logged in yet) and calls GET /limits, proving the
// credentials and that the API answers. It also refreshes APIUsage from the
// DailyApiRequests limit.
func (c *Connector) Check(ctx context.Context) error {
	const op = "salesforce.Check"
	var calls int
	resp, err := c.call(ctx, op, "GET", "/limits", nil, &calls)
	if err != nil {
		return err
	}
	var limits map[string]struct {
		Max       *int64 `json:"Max"`
		Remaining *int64 `json:"Remaining"`
	}
	if err := json.Unmarshal(resp.body, &limits); err != nil {
		return connectors.E(op, connectors.Transient, errors.New("GET /limits: the answer is not a JSON object of limits"))
	}
	if d, ok := limits["DailyApiRequests"]; ok && d.Max != nil && d.Remaining != nil && *d.Max > 0 {
		c.recordUsage(*d.Max-*d.Remaining, *d.Max, time.Now())
	}
	return nil
}

// Close ends the session and releases idle connections. The connector is not
// usable afterwards.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sess != nil {
		c.sess.httpClient.CloseIdleConnections()
		c.sess = nil
	}
	return nil
}

// config returns the configuration, or an error when Configure has not
// succeeded or the connector is closed.
func (c *Connector) config(op string) (Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return Config{}, errClosed(op)
	case !c.configured:
		return Config{}, connectors.E(op, connectors.Permanent, errors.New("connector is not configured: call Configure first"))
	}
	return c.cfg, nil
}

// errClosed is the error of a call on a closed connector. It is Transient:
// the connector closes when its process stops (the hub shutting down), which
// is no fault of the records being written, so they are tried again later.
func errClosed(op string) error {
	return connectors.E(op, connectors.Transient, errors.New("connector is closed"))
}

// Interface guards.
var (
	_ connectors.Connector       = (*Connector)(nil)
	_ connectors.Writer          = (*Connector)(nil)
	_ connectors.SchemaDescriber = (*Connector)(nil)
	_ connectors.RecordGetter    = (*Connector)(nil)
)
