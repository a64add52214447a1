// Package connector is the GeoOffers connector: it sends loyalty members and
// their segment memberships to the GeoOffers service, and reads back the
// vouchers the service issues, which enter the hub as loyalty.voucher.upserted
// events. It imports the loyaltyhub plugin SDK and nothing else of the hub.
//
// Objects:
//
//	members              write: upsert (by external_id = the record's key), delete
//	segment_memberships  write: upsert = join, delete = leave; the record's key is
//	                     "SEGMENT:MEMBER_ID" (fields segment and member_external_id,
//	                     when given, win over the key)
//	vouchers             read: the voucher feed; the cursor is the feed's sequence
package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loyaltyhub/loyaltyhub/plugins/sdk"
)

// Version of this connector.
const Version = "0.1.0"

// MaxBatch is the service's own limit per request.
const MaxBatch = 100

// Object names.
const (
	ObjectMembers     = "members"
	ObjectMemberships = "segment_memberships"
	ObjectVouchers    = "vouchers"
)

// Config is the connector's config block.
type Config struct {
	// BaseURL is the service's address (https://api.geooffers.example).
	// Required.
	BaseURL string `json:"base_url"`
	// APIKey is the bearer key the service issued. Required; a secret.
	APIKey string `json:"api_key"`
	// TimeoutMS bounds one HTTP request, in milliseconds. Default 10000.
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

const configSchema = `{
  "type": "object",
  "required": ["base_url", "api_key"],
  "additionalProperties": false,
  "properties": {
    "base_url": {"type": "string", "format": "uri", "description": "The GeoOffers API address."},
    "api_key": {"type": "string", "minLength": 1, "description": "Bearer API key (secret).", "x-secret": true},
    "timeout_ms": {"type": "integer", "minimum": 1, "default": 10000, "description": "Timeout of one HTTP request, in milliseconds."}
  }
}`

// Connector talks to the GeoOffers service.
type Connector struct {
	log *slog.Logger

	mu   sync.RWMutex
	cfg  Config
	base *url.URL
	http *http.Client
}

// New returns an unconfigured connector.
func New(logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{log: logger}
}

// Describe says what the connector is.
func (c *Connector) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:         "geooffers",
		Version:      Version,
		Summary:      "GeoOffers: geolocated offers for loyalty members; issues vouchers back",
		MaxBatch:     MaxBatch,
		Objects:      []string{ObjectMembers, ObjectMemberships, ObjectVouchers},
		Writes:       []string{ObjectMembers, ObjectMemberships},
		Reads:        []string{ObjectVouchers},
		Entities:     []string{"member", "segment", "voucher"},
		ConfigSchema: json.RawMessage(configSchema),
	}, nil
}

// Configure checks and takes the config; it does no I/O.
func (c *Connector) Configure(_ context.Context, raw json.RawMessage) error {
	const op = "geooffers.Configure"
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return sdk.E(op, sdk.Permanent, fmt.Errorf("config: %w (fields: base_url, api_key, timeout_ms)", err))
	}
	var errs []error
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		errs = append(errs, errors.New("base_url is required: the GeoOffers API address, such as https://api.geooffers.example"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("base_url %q is not an http(s) URL", cfg.BaseURL))
	}
	if cfg.APIKey == "" {
		errs = append(errs, errors.New("api_key is required"))
	}
	if cfg.TimeoutMS < 0 {
		errs = append(errs, fmt.Errorf("timeout_ms %d must be positive (milliseconds)", cfg.TimeoutMS))
	}
	if err := errors.Join(errs...); err != nil {
		return sdk.E(op, sdk.Permanent, fmt.Errorf("config: %w", err))
	}
	if cfg.TimeoutMS == 0 {
		cfg.TimeoutMS = 10000
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg, c.base = cfg, u
	c.http = &http.Client{Timeout: time.Duration(cfg.TimeoutMS) * time.Millisecond}
	c.log.Info("geooffers configured", "base_url", cfg.BaseURL)
	return nil
}

// Check calls the service's ping with the key.
func (c *Connector) Check(ctx context.Context) error {
	return c.do(ctx, "geooffers.Check", http.MethodGet, "/v1/ping", nil, nil)
}

// Close releases idle connections.
func (c *Connector) Close() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	return nil
}

var errNotConfigured = errors.New("not configured: Configure must succeed first")

// do sends one request and decodes a 2xx answer into out. Failures are
// classified: 401/403 Auth, 429 Transient with Retry-After, 5xx and network
// Transient, other 4xx Permanent.
func (c *Connector) do(ctx context.Context, op, method, path string, body, out any) error {
	c.mu.RLock()
	base, client, key := c.base, c.http, c.cfg.APIKey
	c.mu.RUnlock()
	if base == nil {
		return sdk.E(op, sdk.Permanent, errNotConfigured)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return sdk.E(op, sdk.Permanent, err)
		}
		rd = bytes.NewReader(b)
	}
	p, query, _ := strings.Cut(path, "?")
	u := base.JoinPath(p)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return sdk.E(op, sdk.Permanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return sdk.E(op, sdk.Transient, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return sdk.E(op, sdk.Transient, err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return sdk.E(op, sdk.Transient, fmt.Errorf("decoding the answer: %w", err))
		}
		return nil
	}
	var apiErr struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(b, &apiErr)
	msg := fmt.Errorf("%s %s: HTTP %d %s: %s", method, path, resp.StatusCode, apiErr.Error.Code, apiErr.Error.Message)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return sdk.E(op, sdk.Auth, fmt.Errorf("api_key rejected: %w", msg))
	case resp.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &sdk.Error{Op: op, Kind: sdk.Transient, RetryAfter: time.Duration(secs) * time.Second, Err: msg}
	case resp.StatusCode >= 500:
		return sdk.E(op, sdk.Transient, msg)
	}
	return sdk.E(op, sdk.Permanent, msg)
}

// itemResult is the service's answer for one item.
type itemResult struct {
	ID    string `json:"id"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func toResults(items []itemResult, want int) ([]sdk.Result, error) {
	if len(items) != want {
		return nil, fmt.Errorf("the service answered %d results for %d items", len(items), want)
	}
	out := make([]sdk.Result, len(items))
	for i, it := range items {
		switch {
		case it.Error == nil:
			out[i] = sdk.Result{Status: sdk.StatusApplied, TargetID: it.ID}
		case it.Error.Code == "MEMBER_NOT_FOUND":
			// The member is on its way: segment deltas can overtake members.
			out[i] = sdk.Result{Status: sdk.StatusRetryable, Code: it.Error.Code, Message: it.Error.Message, RetryAfter: 5 * time.Second}
		default:
			out[i] = sdk.Result{Status: sdk.StatusPermanent, Code: it.Error.Code, Message: it.Error.Message}
		}
	}
	return out, nil
}

// Write sends a batch to the service in one request.
func (c *Connector) Write(ctx context.Context, req sdk.WriteRequest) (sdk.WriteResponse, error) {
	const op = "geooffers.Write"
	if len(req.Records) == 0 {
		return sdk.WriteResponse{}, nil
	}
	if len(req.Records) > MaxBatch {
		return sdk.WriteResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("%d records; at most %d per batch", len(req.Records), MaxBatch))
	}
	switch req.Object {
	case ObjectMembers:
		return c.writeMembers(ctx, req)
	case ObjectMemberships:
		return c.writeMemberships(ctx, req)
	}
	return sdk.WriteResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("object %q is not writable; writable objects: %s, %s", req.Object, ObjectMembers, ObjectMemberships))
}

func (c *Connector) writeMembers(ctx context.Context, req sdk.WriteRequest) (sdk.WriteResponse, error) {
	const op = "geooffers.Write members"
	var answer struct {
		Results []itemResult `json:"results"`
	}
	switch req.Operation {
	case sdk.Upsert:
		if req.ExternalIDField != "" && req.ExternalIDField != "external_id" {
			return sdk.WriteResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("external_id_field %q: members upsert by external_id only", req.ExternalIDField))
		}
		members := make([]map[string]any, len(req.Records))
		for i, r := range req.Records {
			m := make(map[string]any, len(r.Fields)+1)
			for k, v := range r.Fields {
				m[k] = v
			}
			m["external_id"] = r.Key
			members[i] = m
		}
		if err := c.do(ctx, op, http.MethodPost, "/v1/members:batchUpsert", map[string]any{"members": members}, &answer); err != nil {
			return sdk.WriteResponse{Calls: 1}, err
		}
	case sdk.Delete:
		ids := make([]string, len(req.Records))
		for i, r := range req.Records {
			ids[i] = r.Key
		}
		if err := c.do(ctx, op, http.MethodPost, "/v1/members:batchDelete", map[string]any{"external_ids": ids}, &answer); err != nil {
			return sdk.WriteResponse{Calls: 1}, err
		}
	default:
		return sdk.WriteResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("operation %q: members take upsert or delete", req.Operation))
	}
	results, err := toResults(answer.Results, len(req.Records))
	if err != nil {
		return sdk.WriteResponse{Calls: 1}, sdk.E(op, sdk.Transient, err)
	}
	return sdk.WriteResponse{Results: results, Calls: 1}, nil
}

func (c *Connector) writeMemberships(ctx context.Context, req sdk.WriteRequest) (sdk.WriteResponse, error) {
	const op = "geooffers.Write segment_memberships"
	var verb string
	switch req.Operation {
	case sdk.Upsert, sdk.Insert:
		verb = "add"
	case sdk.Delete:
		verb = "remove"
	default:
		return sdk.WriteResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("operation %q: segment_memberships take upsert (join) or delete (leave)", req.Operation))
	}
	type item struct {
		Segment          string `json:"segment"`
		MemberExternalID string `json:"member_external_id"`
		Op               string `json:"op"`
	}
	items := make([]item, len(req.Records))
	for i, r := range req.Records {
		seg, mem, _ := strings.Cut(r.Key, ":")
		if s, ok := r.Fields["segment"].(string); ok {
			seg = s
		}
		if m, ok := r.Fields["member_external_id"].(string); ok {
			mem = m
		}
		items[i] = item{Segment: seg, MemberExternalID: mem, Op: verb}
	}
	var answer struct {
		Results []itemResult `json:"results"`
	}
	if err := c.do(ctx, op, http.MethodPost, "/v1/segment-memberships:batch", map[string]any{"memberships": items}, &answer); err != nil {
		return sdk.WriteResponse{Calls: 1}, err
	}
	results, err := toResults(answer.Results, len(req.Records))
	if err != nil {
		return sdk.WriteResponse{Calls: 1}, sdk.E(op, sdk.Transient, err)
	}
	return sdk.WriteResponse{Results: results, Calls: 1}, nil
}

// voucher is the service's voucher.
type voucher struct {
	ID        string    `json:"id"`
	Code      string    `json:"code"`
	MemberID  string    `json:"member_id"`
	Segment   string    `json:"segment"`
	Offer     string    `json:"offer"`
	Value     float64   `json:"value"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
	Sequence  int64     `json:"sequence"`
}

// VoucherEvent is the hub event type of a voucher change.
const VoucherEvent = "loyalty.voucher.upserted"

// Read returns the page of the voucher feed after the cursor.
func (c *Connector) Read(ctx context.Context, req sdk.ReadRequest) (sdk.ReadResponse, error) {
	const op = "geooffers.Read"
	if req.Object != ObjectVouchers {
		return sdk.ReadResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("object %q is not readable; readable objects: %s", req.Object, ObjectVouchers))
	}
	after := int64(0)
	if req.Cursor != "" {
		n, err := strconv.ParseInt(req.Cursor, 10, 64)
		if err != nil || n < 0 {
			return sdk.ReadResponse{}, sdk.E(op, sdk.Permanent, fmt.Errorf("cursor %q is not a voucher feed sequence", req.Cursor))
		}
		after = n
	}
	limit := req.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var page struct {
		Vouchers []voucher `json:"vouchers"`
		Next     int64     `json:"next"`
		HasMore  bool      `json:"has_more"`
	}
	path := fmt.Sprintf("/v1/vouchers?after=%d&limit=%d", after, limit)
	if err := c.do(ctx, op, http.MethodGet, path, nil, &page); err != nil {
		return sdk.ReadResponse{}, err
	}
	out := sdk.ReadResponse{Cursor: strconv.FormatInt(max(page.Next, after), 10), More: page.HasMore}
	for _, v := range page.Vouchers {
		data, err := json.Marshal(map[string]any{
			"voucher_id": v.ID, "code": v.Code, "member_id": v.MemberID, "segment": v.Segment, "offer": v.Offer,
			"value": v.Value, "currency": v.Currency, "status": v.Status, "issued_at": v.IssuedAt, "expires_at": v.ExpiresAt,
			"source": "geooffers",
		})
		if err != nil {
			return sdk.ReadResponse{}, sdk.E(op, sdk.Permanent, err)
		}
		out.Changes = append(out.Changes, sdk.Change{
			ID: fmt.Sprintf("geooffers:%s:v%d", v.ID, v.Version), Type: VoucherEvent, Subject: v.ID,
			Version: v.Version, Time: v.UpdatedAt, Data: data,
		})
	}
	return out, nil
}

// DescribeObject asks the service for an object's fields.
func (c *Connector) DescribeObject(ctx context.Context, object string) (sdk.ObjectSchema, error) {
	const op = "geooffers.DescribeObject"
	if object == ObjectVouchers {
		return sdk.ObjectSchema{}, sdk.E(op, sdk.Permanent, fmt.Errorf("object %q is read-only: it has no writable fields", object))
	}
	var s struct {
		Name   string `json:"name"`
		Fields []struct {
			Name     string   `json:"name"`
			Type     string   `json:"type"`
			Required bool     `json:"required"`
			Key      bool     `json:"key"`
			Values   []string `json:"values"`
			MaxLen   int      `json:"max_length"`
		} `json:"fields"`
	}
	if err := c.do(ctx, op, http.MethodGet, "/v1/objects/"+url.PathEscape(object)+"/schema", nil, &s); err != nil {
		return sdk.ObjectSchema{}, err
	}
	out := sdk.ObjectSchema{Name: s.Name}
	for _, f := range s.Fields {
		typ := f.Type
		switch typ {
		case "number":
			typ = "double"
		case "enum":
			typ = "picklist"
		}
		out.Fields = append(out.Fields, sdk.FieldSchema{
			Name: f.Name, Type: typ, Length: f.MaxLen, Createable: true, Updateable: !f.Key, Nillable: !f.Required,
			Required: f.Required, ExternalID: f.Key, Unique: f.Key, Picklist: f.Values,
		})
	}
	return out, nil
}

// Interface guards.
var (
	_ sdk.Connector       = (*Connector)(nil)
	_ sdk.Writer          = (*Connector)(nil)
	_ sdk.Reader          = (*Connector)(nil)
	_ sdk.SchemaDescriber = (*Connector)(nil)
)
