package marketingcloud

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-resty/resty/v2"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// row is one element of a rowset: primary key columns and the others.
type row struct {
	Keys   map[string]any `json:"keys"`
	Values map[string]any `json:"values"`
	id     string         // the row's primary key as Name:Value pairs
}

// Write upserts the batch's records as rows of the data extension whose
// external key is req.Object. Each record's primary key columns (see
// Config.DataExtensions) go in the row's keys, its other fields in values;
// a primary key column the record lacks is taken from Record.Key when it is
// the sync's external id column. Rows have no id of their own: a result's
// TargetID is the row's primary key as Marketing Cloud addresses a row,
// Name:Value, the pairs of a composite key joined by ";"
// ("SegmentId:tier-gold;MembershipNumber:M-1").
func (c *Connector) Write(ctx context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	const op = "marketingcloud.Write"
	cfg, _, err := c.state(op)
	if err != nil {
		return connectors.WriteResponse{}, err
	}
	switch req.Operation {
	case connectors.Upsert:
	case connectors.Delete:
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf(
			"data extension %s: Marketing Cloud's REST API cannot delete data extension rows: set `removals: write` on the sync and map a column that says the row is gone (such as Joined)", req.Object))
	default:
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf(
			"data extension %s: operation %s is not supported: data extension rows are upserted by primary key; set the sync's mode to upsert", req.Object, req.Operation))
	}
	if len(req.Records) > MaxBatch {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf("batch of %d records is over the maximum of %d", len(req.Records), MaxBatch))
	}
	pks := cfg.primaryKeys(req.Object, req.ExternalIDField)
	if len(pks) == 0 {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf(
			"data extension %s has no primary key: list it under data_extensions.%s.primary_keys in the connector config, or set the sync's external_id", req.Object, req.Object))
	}

	results := make([]connectors.Result, len(req.Records))
	rows := make([]row, len(req.Records)) // by record index
	idx := make([]int, 0, len(req.Records))
	for i, r := range req.Records {
		rw, err := toRow(r, pks, req.ExternalIDField, req.Object)
		if err != nil {
			results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "INVALID_ROW", Message: err.Error()}
			continue
		}
		rows[i] = rw
		idx = append(idx, i)
	}

	w := &writer{c: c, key: req.Object, rows: rows, results: results}
	if cfg.AsyncThreshold > 0 && len(idx) >= cfg.AsyncThreshold {
		rest, err := w.async(ctx, cfg, idx)
		if err != nil {
			return connectors.WriteResponse{Calls: w.calls}, err
		}
		idx = rest // what the asynchronous request left to the rowset API
	}
	for start := 0; start < len(idx); start += cfg.BatchSize {
		end := min(start+cfg.BatchSize, len(idx))
		if err := connectors.Isolate(idx[start:end], isolationCalls, results, w.send(ctx)); err != nil {
			if start == 0 {
				// Nothing written: the batch fails as a whole.
				return connectors.WriteResponse{Calls: w.calls}, err
			}
			// Earlier calls were written: the rest is retried.
			for _, i := range idx[start:] {
				results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: "CALL_FAILED", Message: err.Error()}
			}
			break
		}
	}
	return connectors.WriteResponse{Results: results, Calls: w.calls}, nil
}

// toRow splits a record into primary key columns and values, refusing
// values a data extension column cannot hold.
func toRow(r connectors.Record, pks []string, externalID, object string) (row, error) {
	rw := row{Keys: make(map[string]any, len(pks)), Values: make(map[string]any, len(r.Fields))}
	var id strings.Builder
	for i, pk := range pks {
		v, ok := r.Fields[pk]
		switch {
		case ok && v != nil:
		case pk == externalID && r.Key != "":
			v = r.Key
		default:
			return row{}, fmt.Errorf("primary key column %s of data extension %s has no value: map %s in the sync's mapping", pk, object, pk)
		}
		rw.Keys[pk] = v
		if i > 0 {
			id.WriteByte(';')
		}
		fmt.Fprintf(&id, "%s:%v", pk, v)
	}
	rw.id = id.String()
	for name, v := range r.Fields {
		if _, isKey := rw.Keys[name]; isKey {
			continue
		}
		switch v.(type) {
		case map[string]any, []any:
			return row{}, fmt.Errorf("column %s: data extension columns hold text, numbers, booleans and dates, not %s: map it to a single value", name, kindOf(v))
		}
		rw.Values[name] = v
	}
	return rw, nil
}

func kindOf(v any) string {
	if _, ok := v.([]any); ok {
		return "a list"
	}
	return "an object"
}

// writer sends the rowset calls of one Write and fills its results.
type writer struct {
	c       *Connector
	key     string
	rows    []row // by record index
	results []connectors.Result
	calls   int
}

// isolationCalls bounds the calls one chunk may spend halving a refused
// rowset: a few bad rows are found, but a cause common to every row (a
// column the data extension lacks) does not cost two calls a row.
const isolationCalls = 24

// send returns the call connectors.Isolate makes: it upserts the rows of
// the records at idx in one call and sets their results, returns the
// refusal of a 400 (the rowset is all or nothing), or an error when the
// call failed as a whole (network, 5xx, auth).
func (w *writer) send(ctx context.Context) func(idx []int) (*connectors.Refusal, error) {
	return func(idx []int) (*connectors.Refusal, error) {
		const op = "marketingcloud.Write"
		rows := make([]row, len(idx))
		for k, i := range idx {
			rows[k] = w.rows[i]
		}
		resp, err := w.post(ctx, rows)
		if err != nil {
			return nil, err
		}
		status := resp.StatusCode()
		msg, code := describeError(resp)
		switch {
		case status >= 200 && status < 300:
			for k, i := range idx {
				w.results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: rows[k].id}
			}
			return nil, nil
		case status == http.StatusTooManyRequests:
			wait := retryAfter(resp)
			for _, i := range idx {
				w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: code, Message: msg, RetryAfter: wait}
			}
			return nil, nil
		case status == http.StatusBadRequest:
			return &connectors.Refusal{Code: code, Message: msg}, nil
		case status == http.StatusNotFound:
			return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("data extension %s: %s: check that the sync's object is the data extension's external key", w.key, msg))
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return nil, connectors.E(op, connectors.Auth, fmt.Errorf("data extension %s: HTTP %d: %s: the installed package needs the data_extensions_write scope in this business unit", w.key, status, msg))
		case status >= 500:
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("data extension %s: HTTP %d: %s", w.key, status, msg))
		}
		return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("data extension %s: unexpected HTTP %d: %s", w.key, status, msg))
	}
}

// post makes one rowset call.
func (w *writer) post(ctx context.Context, rows []row) (*resty.Response, error) {
	return w.do(ctx, http.MethodPost, "/hub/v1/dataevents/key:"+url.PathEscape(w.key)+"/rowset", rows)
}

// do makes one REST call (body encoded as JSON when not nil), with a fresh
// token and one replay on a 401.
func (w *writer) do(ctx context.Context, method, path string, body any) (*resty.Response, error) {
	const op = "marketingcloud.Write"
	_, client, err := w.c.state(op)
	if err != nil {
		return nil, err
	}
	for fresh := false; ; fresh = true {
		tok, err := w.c.token(ctx, op, fresh)
		if err != nil {
			return nil, err
		}
		w.calls++
		r := client.R().SetContext(ctx).SetAuthToken(tok.access)
		if body != nil {
			r.SetHeader("Content-Type", "application/json").SetBody(body)
		}
		resp, err := r.Execute(method, tok.restURL+path)
		if err != nil {
			if ctx.Err() != nil {
				return nil, connectors.E(op, connectors.Transient, ctx.Err())
			}
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("data extension %s: %w", w.key, err))
		}
		// A 401: the token expired or was revoked; one new token, one replay.
		if resp.StatusCode() != http.StatusUnauthorized || fresh {
			return resp, nil
		}
	}
}
